// Shared helpers of the CUDA backend tests: a fixture that skips without a GPU, random tensors put on
// both the CUDA and the ref backend, random quantized weights, and a relative-error comparison that
// reports the worst element.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"
#include "util/gpu.h"

namespace g4::test {

// Skips the test when no CUDA device can be used (fails instead under G4_REQUIRE_GPU=1, util/gpu.h);
// otherwise provides fast and precise backends.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  std::unique_ptr<CudaBackend> fast_, precise_;
  RefBackend ref_;
  std::mt19937 rng_{1234};
};

std::vector<float> randn(std::mt19937& rng, size_t n, float scale = 1.f);
Tensor to_device(Backend& be, const std::vector<float>& v, std::vector<int64_t> shape);
std::vector<float> to_host(Backend& be, const Tensor& t);

// A random quantized weight whose storage lives in this object.
struct RandomQuant {
  QuantWeight q;
  std::vector<uint8_t> codes, scales, zeros;
  RandomQuant(std::mt19937& rng, QuantKind kind, int64_t rows, int64_t cols, int64_t gs, DType sdt, bool asym);
  WeightView view() const { return WeightView{"test.weight", DType::kF32, {q.rows, q.cols}, nullptr, &q}; }
};

// ||got - want|| / ||want||, and a gtest failure naming the worst element if it exceeds bound.
double expect_close(const std::vector<float>& got, const std::vector<float>& want, double bound, const std::string& what);

// Directory of the test data (G4_TEST_DATA, overridable by the environment variable of that name so a
// binary built elsewhere finds the data on the GPU machine).
std::string test_data_dir();

}  // namespace g4::test
