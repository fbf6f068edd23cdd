// Reads a transformers reference case (expected.safetensors: prompt, greedy_tokens, prompt_logits,
// greedy_step_logits, as tools/fixtures and shared/oracle write them) for the whole-model tests.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/safetensors.h"

namespace g4::testing_util {

// Tensor `name` of f as a vector of T (I32 -> int32_t, F32 -> float); throws g4::Error when absent or of
// another element size.
template <class T>
std::vector<T> read_tensor(const SafetensorsFile& f, const char* name) {
  const TensorInfo* t = f.find(name);
  if (!t) throw Error(std::string("fixture has no tensor '") + name + "'");
  if (t->nbytes != size_t(t->numel()) * sizeof(T)) throw Error(std::string("fixture tensor '") + name + "' has another dtype");
  std::vector<T> v(size_t(t->numel()));
  if (!v.empty()) std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

struct Expected {
  std::vector<int32_t> prompt, greedy;
  std::vector<float> prompt_logits, step_logits;
};

// dir holds expected.safetensors.
inline Expected read_expected(const std::string& dir) {
  const SafetensorsFile f(dir + "/expected.safetensors");
  Expected e;
  e.prompt = read_tensor<int32_t>(f, "prompt");
  e.greedy = read_tensor<int32_t>(f, "greedy_tokens");
  e.prompt_logits = read_tensor<float>(f, "prompt_logits");
  e.step_logits = read_tensor<float>(f, "greedy_step_logits");
  return e;
}

}  // namespace g4::testing_util
