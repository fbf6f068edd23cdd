// Shared helpers for the CPU backend tests: random data, running one op on the ref and CPU backends,
// and an element-wise comparison against a per-element bound that reports the worst offender.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "util/compare.h"

namespace g4::test {

inline std::vector<float> randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline Tensor make(Backend& be, std::vector<int64_t> shape, const std::vector<float>& host) {
  Tensor t = be.empty(std::move(shape));
  be.upload(t, host.data());
  return t;
}

inline std::vector<float> fetch(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.download(t, v.data());
  return v;
}

// Passes when |got - want| <= bound[i] everywhere; otherwise names the worst element (largest excess).
inline ::testing::AssertionResult within(const std::vector<float>& got, const std::vector<float>& want,
                                         const std::vector<double>& bound) {
  return testing_util::all_close_each(got, want, [&bound](size_t i) { return bound[i]; });
}

inline std::vector<double> uniform_bound(size_t n, double b) { return std::vector<double>(n, b); }

// Every kernel table this CPU runs, as CpuBackends with 2 threads.
inline std::vector<const cpu::KernelTable*> tables() { return cpu::available_kernels(); }

constexpr double kF32Eps = 1.1920929e-7;

}  // namespace g4::test
