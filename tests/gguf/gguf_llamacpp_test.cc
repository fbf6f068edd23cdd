// Against llama.cpp itself: tests/data/gguf-llamacpp/blocks.gguf was quantized and written by ggml
// (llama.cpp's library), expected.gguf holds ggml's own dequantization of those bytes (README there).
// g4's reader must accept ggml's file, its reference dequantizer must reproduce ggml's values bit for
// bit, and the QuantWeight conversion must too (Q4_K, Q4_1, Q5_1: within f32 rounding of their zero
// points).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "io/gguf.h"
#include "model/model.h"
#include "model/session.h"
#include "quant/gguf_blocks.h"
#include "util/compare.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::kLlamacppGgufDir;

TEST(GgufLlamaCpp, DequantizationMatchesGgml) {
  GgufFile blocks(kLlamacppGgufDir + "/blocks.gguf");
  GgufFile expected(kLlamacppGgufDir + "/expected.gguf");
  ASSERT_EQ(blocks.tensors().size(), 10u);
  // The file's types, so a regenerated file cannot silently drop a format.
  const std::map<std::string, GgmlType> types = {
      {"q8_0", GgmlType::kQ8_0}, {"q4_0", GgmlType::kQ4_0}, {"q4_k", GgmlType::kQ4_K}, {"q6_k", GgmlType::kQ6_K},
      {"f16", GgmlType::kF16},   {"bf16", GgmlType::kBF16}, {"f32", GgmlType::kF32},   {"q4_1", GgmlType::kQ4_1},
      {"q5_0", GgmlType::kQ5_0}, {"q5_1", GgmlType::kQ5_1}};
  std::map<GgmlType, int> zero_scale_groups;  // groups converted through the scale-0 path
  for (const GgufTensor& t : blocks.tensors()) {
    const GgufTensor* e = expected.find_tensor(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    ASSERT_EQ(e->ne, t.ne) << t.name;
    ASSERT_EQ(e->type, uint32_t(GgmlType::kF32));
    ASSERT_TRUE(types.count(t.name)) << t.name;
    ASSERT_EQ(t.ggml_type(), types.at(t.name)) << t.name;
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
        if (q->q.zeros == nullptr) {  // symmetric conversions (Q8_0, Q4_0, Q5_0, Q6_K) are exact
          ASSERT_EQ(w, g) << t.name << " row " << r << " col " << k;
          continue;
        }
        // Asymmetric (Q4_K, Q4_1, Q5_1): (q - z) * s with a rounded quotient z; a few roundings on values
        // up to code_max*|s| + |z*s|.
        const double code_max = q->q.kind == QuantKind::kInt4 ? 15.0 : 31.0;
        const int64_t gi = r * q->q.groups_per_row() + k / 32;
        const float s = reinterpret_cast<const float*>(q->q.scales)[gi];
        const float z = reinterpret_cast<const float*>(q->q.zeros)[gi];
        const size_t code_bytes = q->q.kind == QuantKind::kInt4 ? 16 : 32;
        if (k % 32 == 0 && z == 1.0f &&
            std::all_of(&q->codes[size_t(gi) * code_bytes], &q->codes[size_t(gi + 1) * code_bytes],
                        [](uint8_t c) { return c == 0; }))
          ++zero_scale_groups[t.ggml_type()];
        const double bound = 8.0 * std::ldexp(1.0, -24) * (code_max * std::fabs(s) + std::fabs(double(z) * s));
        ASSERT_LE(std::fabs(double(w) - double(g)), bound) << t.name << " row " << r << " col " << k;
      }
    }
  }
  std::printf("[ ggml ] groups taking the scale-0 path: Q4_K %d, Q4_1 %d, Q5_1 %d\n",
              zero_scale_groups[GgmlType::kQ4_K], zero_scale_groups[GgmlType::kQ4_1],
              zero_scale_groups[GgmlType::kQ5_1]);
  // The data holds a 32-run of zeros (d = m = 0) and a constant -0.03 group (d = 0, m != 0) in both
  // Q4_1 and Q5_1 (tools/gguf/ggml_block_data.cc), so their scale-0 path was taken and checked above.
  EXPECT_GE(zero_scale_groups[GgmlType::kQ4_1], 2);
  EXPECT_GE(zero_scale_groups[GgmlType::kQ5_1], 2);
}

}  // namespace
}  // namespace g4

namespace g4 {
namespace {

// A tiny random-weight gemma4 model (tools/gguf/tiny_gemma4_gguf.cc) quantized to Q4_K_M by llama.cpp's
// llama_model_quantize (Q4_K and Q6_K tensors), and llama.cpp's own logits for a 20-token prompt (CPU,
// f32 KV cache). llama.cpp's CPU matmuls quantize activations to 8 bits (Q8_K) and its GELU uses an f16
// table, so equality is not expected. Bounds, from one measured run (docs/GGUF.md): llama.cpp's own
// Q4_K_M-vs-F32 logits differ by 0.245 on average, g4-vs-llama.cpp on the same Q4_K_M file by 0.035
// (max 0.35, max KL 0.0068). A misread block format moves logits by the former, not the latter.
struct LlamaBounds {
  double mean_abs, max_abs, max_kl;
};

// g4 (ref backend) on a GGUF file written by llama.cpp against libllama's logits for the same prompt
// (files made as tests/data/gguf-llamacpp/README.md says): same top-1 at every position, and the bounds.
void expect_matches_llama(const std::string& model_file, const std::string& logits_file, const LlamaBounds& bound,
                          const char* what) {
  GgufFile ref(kLlamacppGgufDir + "/" + logits_file);
  const GgufTensor& lt = *ref.find_tensor("logits");
  const GgufTensor& pt = *ref.find_tensor("prompt");
  std::vector<int32_t> prompt(size_t(pt.numel()));
  std::memcpy(prompt.data(), pt.data, pt.nbytes);
  const float* want = reinterpret_cast<const float*>(lt.data);
  auto be = make_backend("ref");
  auto model = Model::load(kLlamacppGgufDir + "/" + model_file, *be);
  const int64_t V = model->spec().vocab_size, T = int64_t(prompt.size());
  ASSERT_EQ(lt.ne[0], V);
  ASSERT_EQ(lt.ne[1], T);
  Session s(*model, T);
  const std::vector<float> got = s.forward(prompt, LogitsMode::kAll);
  double sum_abs = 0, max_abs = 0, max_kl = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* a = want + t * V;
    const float* b = got.data() + t * V;
    int64_t ia = 0, ib = 0;
    double ma = a[0], mb = b[0];
    for (int64_t v = 0; v < V; ++v) {
      if (a[v] > a[ia]) ia = v;
      if (b[v] > b[ib]) ib = v;
      ma = std::max(ma, double(a[v]));
      mb = std::max(mb, double(b[v]));
      const double d = testing_util::abs_diff(a[v], b[v]);  // NaN counts as an infinite difference
      sum_abs += d;
      max_abs = std::max(max_abs, d);
    }
    EXPECT_EQ(ia, ib) << what << ": top-1 differs at position " << t;
    double za = 0, zb = 0;
    for (int64_t v = 0; v < V; ++v) {
      za += std::exp(double(a[v]) - ma);
      zb += std::exp(double(b[v]) - mb);
    }
    double kl = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double la = double(a[v]) - ma - std::log(za), lb = double(b[v]) - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    max_kl = std::max(max_kl, std::isnan(kl) ? INFINITY : kl);
  }
  const double mean_abs = sum_abs / double(T * V);
  EXPECT_LE(mean_abs, bound.mean_abs) << what;
  EXPECT_LE(max_abs, bound.max_abs) << what;
  EXPECT_LE(max_kl, bound.max_kl) << what;
  std::printf("[ %s vs llama.cpp ] mean |diff| %.3g, max |diff| %.3g, max KL %.3g\n", what, mean_abs, max_abs, max_kl);
}

TEST(GgufLlamaCpp, Q4KMModelLogitsMatchLlamaCpp) {
  expect_matches_llama("tiny-q4_k_m.gguf", "tiny-q4_k_m.llama-logits.gguf", {0.07, 0.7, 0.02}, "Q4_K_M");
}

// The same tiny model as Q4_0 (token_embd falls back to Q6_K, as llama.cpp does for its output tensor),
// Q6_K and F16, each file and its logits written by llama.cpp (README.md). Bounds: about twice the values
// measured on 2026-12-01 (mean / max |diff|, max KL: Q4_0 0.0203 / 0.201 / 0.00171, Q6_K 0.0328 / 0.253 /
// 0.00361, F16 0.00095 / 0.0095 / 1.0e-5), far below what a misread format gives (Q4_K_M vs F32: 0.245 mean).
TEST(GgufLlamaCpp, Q4_0ModelLogitsMatchLlamaCpp) {
  expect_matches_llama("tiny-q4_0.gguf", "tiny-q4_0.llama-logits.gguf", {0.04, 0.4, 0.0035}, "Q4_0");
}

TEST(GgufLlamaCpp, Q6KModelLogitsMatchLlamaCpp) {
  expect_matches_llama("tiny-q6_k.gguf", "tiny-q6_k.llama-logits.gguf", {0.066, 0.5, 0.0075}, "Q6_K");
}

TEST(GgufLlamaCpp, F16ModelLogitsMatchLlamaCpp) {
  expect_matches_llama("tiny-f16.gguf", "tiny-f16.llama-logits.gguf", {0.002, 0.02, 2e-5}, "F16");
}

}  // namespace
}  // namespace g4
