// Writes a tiny random-weight gemma4 GGUF (F32 tensors, llama.cpp names and metadata, "no_vocab"
// tokenizer so llama.cpp accepts it without a vocabulary): 2 layers (sliding with attn_v, then full with
// K=V and proportional RoPE through rope_freqs), hidden 256, 4 heads (head size 64 sliding, 128 full), FFN 256, vocab 256 — every input
// width a multiple of 256, so llama-quantize can make K-quants of all matrices. Built against g4's
// test GgufBuilder only (no llama.cpp code); see tests/data/gguf-llamacpp/README.md.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "util/gguf_builder.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.gguf\n", argv[0]);
    return 2;
  }
  using g4::test::GgufBuilder;
  const int H = 256, F = 256, V = 256, NH = 4, D_SWA = 64, D_FULL = 128, KV_SWA = 1, KV_FULL = 1, WINDOW = 8;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto mat = [&](int rows, int cols, float sd) {
    std::vector<float> v(size_t(rows) * size_t(cols));
    for (auto& x : v) x = sd * nd(rng);
    return v;
  };
  auto norm = [&](int n, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = u(rng);
    return v;
  };
  GgufBuilder b;
  const std::string p = "gemma4.";
  b.kv_str("general.architecture", "gemma4");
  b.kv_str("general.name", "g4 tiny gemma4 test model");
  b.kv_u32(p + "block_count", 2);
  b.kv_u32(p + "context_length", 4096);
  b.kv_u32(p + "embedding_length", H);
  b.kv_u32(p + "feed_forward_length", F);
  b.kv_u32(p + "attention.head_count", NH);
  b.kv_arr_i32(p + "attention.head_count_kv", {KV_SWA, KV_FULL});
  b.kv_u32(p + "attention.key_length", D_FULL);
  b.kv_u32(p + "attention.value_length", D_FULL);
  b.kv_u32(p + "attention.key_length_swa", D_SWA);
  b.kv_u32(p + "attention.value_length_swa", D_SWA);
  b.kv_u32(p + "attention.sliding_window", WINDOW);
  b.kv_arr_bool(p + "attention.sliding_window_pattern", {true, false});
  b.kv_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f);
  b.kv_u32(p + "attention.shared_kv_layers", 0);
  b.kv_u32(p + "embedding_length_per_layer_input", 0);
  b.kv_f32(p + "rope.freq_base", 1e6f);
  b.kv_f32(p + "rope.freq_base_swa", 1e4f);
  b.kv_u32(p + "rope.dimension_count", D_FULL);
  b.kv_u32(p + "rope.dimension_count_swa", D_SWA);
  b.kv_f32(p + "final_logit_softcapping", 30.0f);
  b.kv_u32(p + "vocab_size", V);
  b.kv_str("tokenizer.ggml.model", "no_vocab");
  b.kv_u32("general.file_type", 0);

  auto add = [&](const std::string& name, int rows, int cols, const std::vector<float>& v) {
    if (rows == 0) b.tensor_of<float>(name, 0, {uint64_t(cols)}, v);
    else b.tensor_of<float>(name, 0, {uint64_t(cols), uint64_t(rows)}, v);
  };
  add("token_embd.weight", V, H, mat(V, H, 0.05f));
  add("output_norm.weight", 0, H, norm(H, 0.5f, 1.5f));
  std::vector<float> freqs(D_FULL / 2, 1e30f);
  for (int k = 0; k < D_FULL / 8; ++k) freqs[size_t(k)] = 1.0f;  // partial_rotary_factor 0.25
  add("rope_freqs.weight", 0, D_FULL / 2, freqs);
  for (int i = 0; i < 2; ++i) {
    const bool full = i == 1;
    const int D = full ? D_FULL : D_SWA, KV = full ? KV_FULL : KV_SWA;
    const std::string lp = "blk." + std::to_string(i) + ".";
    const float sd = 1.0f / std::sqrt(float(H));
    add(lp + "attn_norm.weight", 0, H, norm(H, 0.5f, 1.5f));
    add(lp + "attn_q.weight", NH * D, H, mat(NH * D, H, sd));
    add(lp + "attn_k.weight", KV * D, H, mat(KV * D, H, sd));
    if (!full) add(lp + "attn_v.weight", KV * D, H, mat(KV * D, H, sd));
    add(lp + "attn_output.weight", H, NH * D, mat(H, NH * D, 1.0f / std::sqrt(float(NH * D))));
    add(lp + "attn_q_norm.weight", 0, D, norm(D, 0.5f, 1.5f));
    add(lp + "attn_k_norm.weight", 0, D, norm(D, 0.5f, 1.5f));
    add(lp + "post_attention_norm.weight", 0, H, norm(H, 0.5f, 1.5f));
    add(lp + "ffn_norm.weight", 0, H, norm(H, 0.5f, 1.5f));
    add(lp + "ffn_gate.weight", F, H, mat(F, H, sd));
    add(lp + "ffn_up.weight", F, H, mat(F, H, sd));
    add(lp + "ffn_down.weight", H, F, mat(H, F, 1.0f / std::sqrt(float(F))));
    add(lp + "post_ffw_norm.weight", 0, H, norm(H, 0.5f, 1.5f));
    add(lp + "layer_output_scale.weight", 0, 1, {full ? 0.75f : 1.25f});
  }
  GgufBuilder::write(argv[1], b.bytes());
  return 0;
}
