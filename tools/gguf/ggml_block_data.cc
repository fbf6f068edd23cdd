// Writes tests/data/gguf-llamacpp/blocks.gguf and expected.gguf with llama.cpp's own ggml library:
// deterministic f32 matrices quantized by ggml_quantize_chunk (Q8_0, Q4_0, Q4_K, Q6_K, Q4_1, Q5_0,
// Q5_1) or converted
// (F16, BF16), written by ggml's gguf writer, and the values ggml's to_float dequantizers compute from
// those bytes (expected.gguf, F32, same names). Not part of the g4 build: it links llama.cpp's
// libggml-base; see tests/data/gguf-llamacpp/README.md for the exact commands.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ggml.h"
#include "gguf.h"

namespace {

// A small deterministic generator (xorshift) and roughly normal values with a few outliers, so the
// quantizers pick varied scales; one 32-element run of zeros exercises K-quant sub-blocks of scale 0.
struct Rng {
  uint64_t s;
  double uniform() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return double(s >> 11) / double(uint64_t(1) << 53);
  }
  float normal() { return float(std::sqrt(-2.0 * std::log(uniform() + 1e-12)) * std::cos(6.283185307 * uniform())); }
};

std::vector<float> values(int64_t rows, int64_t cols, uint64_t seed, bool constant_group) {
  Rng r{seed * 0x9E3779B97F4A7C15ull + 1};
  std::vector<float> v(size_t(rows * cols));
  for (auto& x : v) x = 0.02f * r.normal();
  for (int k = 0; k < 4; ++k) v[size_t(r.uniform() * double(v.size()))] = 0.5f * r.normal();
  if (cols >= 64)
    for (int k = 32; k < 64; ++k) v[size_t(k)] = 0.0f;  // row 0, second 32-element group
  if (rows >= 2)
    for (int64_t k = 0; k < cols; ++k) v[size_t(cols + k)] = std::fabs(v[size_t(cols + k)]) + 0.01f;  // row 1 > 0
  // A constant non-zero 32-group (row 2, group 0): Q4_1 / Q5_1 quantize it with d = 0 and m = the value.
  if (constant_group && rows >= 3)
    for (int64_t k = 0; k < 32; ++k) v[size_t(2 * cols + k)] = -0.03f;
  return v;
}

struct Spec {
  const char* name;
  ggml_type type;
  int64_t rows, cols;
  bool constant_group;  // added with the Q4_1 / Q5_0 / Q5_1 tensors; false keeps the earlier tensors' bytes
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_BLOCKS.gguf OUT_EXPECTED.gguf\n", argv[0]);
    return 2;
  }
  const Spec specs[] = {
      {"q8_0", GGML_TYPE_Q8_0, 5, 96, false},  {"q4_0", GGML_TYPE_Q4_0, 3, 160, false},
      {"q4_k", GGML_TYPE_Q4_K, 3, 512, false}, {"q6_k", GGML_TYPE_Q6_K, 5, 768, false},
      {"f16", GGML_TYPE_F16, 2, 33, false},    {"bf16", GGML_TYPE_BF16, 2, 33, false},
      {"f32", GGML_TYPE_F32, 3, 7, false},     {"q4_1", GGML_TYPE_Q4_1, 4, 96, true},
      {"q5_0", GGML_TYPE_Q5_0, 3, 224, true},  {"q5_1", GGML_TYPE_Q5_1, 5, 160, true},
  };
  ggml_init_params ip = {size_t(64) << 20, nullptr, false};
  ggml_context* ctx = ggml_init(ip);
  gguf_context* blocks = gguf_init_empty();
  gguf_context* expected = gguf_init_empty();
  gguf_set_val_str(blocks, "general.description", "g4 test data: ggml-quantized blocks");
  gguf_set_val_str(expected, "general.description", "g4 test data: ggml to_float of blocks.gguf");
  uint64_t seed = 1;
  for (const Spec& s : specs) {
    const std::vector<float> src = values(s.rows, s.cols, seed++, s.constant_group);
    ggml_tensor* q = ggml_new_tensor_2d(ctx, s.type, s.cols, s.rows);
    ggml_set_name(q, s.name);
    if (s.type == GGML_TYPE_F32) {
      std::memcpy(q->data, src.data(), src.size() * 4);
    } else {
      ggml_quantize_chunk(s.type, src.data(), q->data, 0, s.rows, s.cols, nullptr);
    }
    ggml_tensor* e = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, s.cols, s.rows);
    ggml_set_name(e, s.name);
    const ggml_type_traits* tr = ggml_get_type_traits(s.type);
    if (s.type == GGML_TYPE_F32) {
      std::memcpy(e->data, q->data, src.size() * 4);
    } else {
      for (int64_t r = 0; r < s.rows; ++r)
        tr->to_float(static_cast<const char*>(q->data) + r * ggml_row_size(s.type, s.cols),
                     static_cast<float*>(e->data) + r * s.cols, s.cols);
    }
    gguf_add_tensor(blocks, q);
    gguf_add_tensor(expected, e);
  }
  if (!gguf_write_to_file(blocks, argv[1], false) || !gguf_write_to_file(expected, argv[2], false)) {
    std::fprintf(stderr, "write failed\n");
    return 1;
  }
  gguf_free(blocks);
  gguf_free(expected);
  ggml_free(ctx);
  return 0;
}
