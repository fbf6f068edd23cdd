// Shared by the export tests: run the g4 binary, quantize the shipped model once per process, logits of a
// checkpoint on the ref backend.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/model.h"
#include "model/session.h"
#include "util/compare.h"
#include "util/run_g4.h"
#include "util/temp_dir.h"

namespace g4::export_test {

inline const std::string kData = G4_TEST_DATA;
inline const std::string kTinyKjv = kData + "/../../models/tiny-kjv";

using testing_util::run_g4;  // export and quantize report on standard error

inline std::vector<int32_t> read_i32(const std::string& file, const std::string& name) {
  SafetensorsFile f(file);
  const TensorInfo& t = *f.find(name);
  std::vector<int32_t> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

inline std::vector<float> ref_logits(const std::string& model, const std::vector<int32_t>& tokens) {
  auto be = make_backend("ref");
  auto m = Model::load(model, *be);
  Session s(*m, int64_t(tokens.size()));
  return s.forward(tokens, LogitsMode::kAll);
}

// NaN-safe (tests/util/compare.h): a NaN anywhere is an infinite difference.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return testing_util::max_abs_diff(a, b).max;
}

}  // namespace g4::export_test
