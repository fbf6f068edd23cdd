// Against llama.cpp itself: tests/data/gguf-llamacpp/blocks.gguf was quantized and written by ggml
// (llama.cpp's library), expected.gguf holds ggml's own dequantization of those bytes (README there).
// g4's reader must accept ggml's file, its reference dequantizer must reproduce ggml's values bit for
// bit, and the QuantWeight conversion must too (Q4_K: within f32 rounding of its zero point).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "io/gguf.h"
#include "quant/gguf_blocks.h"

namespace g4 {
namespace {

const std::string kDir = std::string(G4_TEST_DATA) + "/gguf-llamacpp";

TEST(GgufLlamaCpp, DequantizationMatchesGgml) {
  GgufFile blocks(kDir + "/blocks.gguf");
  GgufFile expected(kDir + "/expected.gguf");
  ASSERT_EQ(blocks.tensors().size(), 7u);
  int q4k_zero_scale_groups = 0;
  for (const GgufTensor& t : blocks.tensors()) {
    const GgufTensor* e = expected.find_tensor(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    ASSERT_EQ(e->ne, t.ne) << t.name;
    ASSERT_EQ(e->type, uint32_t(GgmlType::kF32));
    const int64_t rows = t.ne[1], cols = t.ne[0];
    const size_t row_bytes = t.nbytes / size_t(rows);
    const float* want = reinterpret_cast<const float*>(e->data);
    std::vector<float> ref(static_cast<size_t>(cols)), conv(static_cast<size_t>(cols));
    const bool quant = gguf_quant_supported(t.ggml_type());
    std::unique_ptr<OwnedQuantWeight> q;
    if (quant) q = convert_gguf_quant(t.ggml_type(), t.data, rows, cols, t.name);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_gguf_row(t.ggml_type(), t.data + size_t(r) * row_bytes, cols, ref.data());
      for (int64_t k = 0; k < cols; ++k)
        ASSERT_EQ(std::memcmp(&ref[size_t(k)], &want[r * cols + k], 4), 0)
            << t.name << " row " << r << " col " << k << ": g4 " << ref[size_t(k)] << " ggml " << want[r * cols + k];
      if (!quant) continue;
      dequantize_row(q->q, r, conv.data());
      for (int64_t k = 0; k < cols; ++k) {
        const float w = want[r * cols + k], g = conv[size_t(k)];
        if (t.ggml_type() != GgmlType::kQ4_K) {
          ASSERT_EQ(w, g) << t.name << " row " << r << " col " << k;
          continue;
        }
        const int64_t gi = r * q->q.groups_per_row() + k / 32;
        const float s = reinterpret_cast<const float*>(q->q.scales)[gi];
        const float z = reinterpret_cast<const float*>(q->q.zeros)[gi];
        if (k % 32 == 0 && z == 1.0f && q->codes[size_t(gi) * 16] == 0) ++q4k_zero_scale_groups;
        const double bound = 8.0 * std::ldexp(1.0, -24) * (15.0 * std::fabs(s) + std::fabs(double(z) * s));
        ASSERT_LE(std::fabs(double(w) - double(g)), bound) << t.name << " row " << r << " col " << k;
      }
    }
  }
  std::printf("[ ggml Q4_K ] groups taking the scale-0 path: %d\n", q4k_zero_scale_groups);
}

}  // namespace
}  // namespace g4
