// Test helper: writes a Hugging Face Gemma 4 checkpoint as a gemma4 GGUF the way llama.cpp's
// converter lays it out (spec 5.4): same tensor bytes (BF16/F16/F32 kept), llama.cpp names, gemma4.*
// metadata, rope_freqs for full layers. Options let tests break one thing at a time.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "io/weight_store.h"
#include "model/model_spec.h"
#include "util/gguf_builder.h"

namespace g4::test {

struct HfToGgufOptions {
  bool write_layer_scale = true;
  bool write_rope_freqs = true;
  // Called before tensors are added, to add or replace metadata (later keys do not override:
  // tests that want a different value skip the default through `skip_key`).
  std::function<void(GgufBuilder&)> extra_metadata;
  std::string skip_key;
  std::string extra_tensor;  // a name the reader must refuse
  bool q4_0 = false;  // store the layers' matrices whose rows are whole 32-blocks as Q4_0
  bool q4_0_as_f32 = false;  // the same matrices as F32 holding the Q4_0 values (dequantized here)
};

// ggml's Q4_0 of one row (cols % 32 == 0): per block of 32, d = m / -8 with m the value of largest
// magnitude, codes q = min(15, int(x / d + 8.5)) stored as f16 d then 16 bytes, element j in the low
// nibble of byte j and element j + 16 in its high nibble; x = (q - 8) * d. Written from the format's
// description (ggml-quants.c, quantize_row_q4_0_ref), not from g4's converter.
inline void q4_0_row(const float* x, int64_t cols, std::vector<uint8_t>& out) {
  for (int64_t b = 0; b < cols; b += 32) {
    float amax = 0, m = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[b + j]) > amax) amax = std::fabs(x[b + j]), m = x[b + j];
    const float d = m / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const uint16_t h = f32_to_f16(d);
    out.push_back(uint8_t(h & 0xff));
    out.push_back(uint8_t(h >> 8));
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(x[b + j] * id + 8.5f)), hi = std::min(15, int(x[b + j + 16] * id + 8.5f));
      out.push_back(uint8_t(lo | (hi << 4)));
    }
  }
}

inline uint32_t ggml_type_of(DType t) {
  return t == DType::kBF16 ? 30u : t == DType::kF16 ? 1u : 0u;
}

inline GgufBuilder hf_to_gguf(const std::string& hf_dir, const HfToGgufOptions& o = {}) {
  const ModelSpec s = load_model_config(hf_dir);
  auto ws = WeightStore::open(hf_dir);
  GgufBuilder b;
  const std::string p = "gemma4.";
  auto want = [&](const std::string& k) { return k != o.skip_key; };
  if (want("general.architecture")) b.kv_str("general.architecture", "gemma4");
  const int n = s.n_layers();
  int d_full = 0, d_swa = 0, full_pairs = 0;
  std::vector<int32_t> kv;
  std::vector<bool> pattern;
  for (const LayerSpec& L : s.layers) {
    (L.sliding ? d_swa : d_full) = L.head_dim;
    if (!L.sliding) full_pairs = L.rope_pairs;
    kv.push_back(L.n_kv_heads);
    pattern.push_back(L.sliding);
  }
  if (d_swa == 0) d_swa = d_full;
  if (d_full == 0) d_full = d_swa;
  float theta_full = 1e6f, theta_swa = 1e4f;
  for (const LayerSpec& L : s.layers) (L.sliding ? theta_swa : theta_full) = L.rope_theta;
  int window = 0;
  for (const LayerSpec& L : s.layers) window = std::max(window, L.window);
  if (want(p + "block_count")) b.kv_u32(p + "block_count", uint32_t(n));
  if (want(p + "context_length")) b.kv_u32(p + "context_length", uint32_t(s.max_position));
  if (want(p + "embedding_length")) b.kv_u32(p + "embedding_length", uint32_t(s.hidden_size));
  if (want(p + "feed_forward_length")) b.kv_u32(p + "feed_forward_length", uint32_t(s.intermediate_size));
  if (want(p + "attention.head_count")) b.kv_u32(p + "attention.head_count", uint32_t(s.n_heads));
  if (want(p + "attention.head_count_kv")) b.kv_arr_i32(p + "attention.head_count_kv", kv);
  if (want(p + "attention.key_length")) b.kv_u32(p + "attention.key_length", uint32_t(d_full));
  if (want(p + "attention.value_length")) b.kv_u32(p + "attention.value_length", uint32_t(d_full));
  if (want(p + "attention.key_length_swa")) b.kv_u32(p + "attention.key_length_swa", uint32_t(d_swa));
  if (want(p + "attention.value_length_swa")) b.kv_u32(p + "attention.value_length_swa", uint32_t(d_swa));
  if (want(p + "attention.sliding_window")) b.kv_u32(p + "attention.sliding_window", uint32_t(window));
  if (want(p + "attention.sliding_window_pattern")) b.kv_arr_bool(p + "attention.sliding_window_pattern", pattern);
  if (want(p + "attention.layer_norm_rms_epsilon")) b.kv_f32(p + "attention.layer_norm_rms_epsilon", s.rms_eps);
  if (want(p + "attention.shared_kv_layers")) b.kv_u32(p + "attention.shared_kv_layers", 0);
  if (want(p + "embedding_length_per_layer_input")) b.kv_u32(p + "embedding_length_per_layer_input", 0);
  if (want(p + "rope.freq_base")) b.kv_f32(p + "rope.freq_base", theta_full);
  if (want(p + "rope.freq_base_swa")) b.kv_f32(p + "rope.freq_base_swa", theta_swa);
  if (want(p + "rope.dimension_count")) b.kv_u32(p + "rope.dimension_count", uint32_t(d_full));
  if (want(p + "rope.dimension_count_swa")) b.kv_u32(p + "rope.dimension_count_swa", uint32_t(d_swa));
  if (s.final_softcap > 0 && want(p + "final_logit_softcapping"))
    b.kv_f32(p + "final_logit_softcapping", s.final_softcap);
  b.kv_u32("tokenizer.ggml.bos_token_id", uint32_t(s.bos_id));
  b.kv_u32("tokenizer.ggml.eos_token_id", uint32_t(s.eos_ids.at(0)));
  if (o.extra_metadata) o.extra_metadata(b);

  auto add = [&](const std::string& gguf_name, const std::string& canon) {
    const TensorInfo& t = ws->get(canon);
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    if (o.q4_0 && gguf_name.rfind("blk.", 0) == 0 && t.shape.size() == 2 && t.shape[1] % 32 == 0) {
      const int64_t rows = t.shape[0], cols = t.shape[1];
      std::vector<float> row(static_cast<size_t>(cols));
      std::vector<uint8_t> q;
      for (int64_t r = 0; r < rows; ++r) {
        convert_to_f32(t.dtype, t.data + size_t(r * cols) * dtype_size(t.dtype), size_t(cols), row.data());
        q4_0_row(row.data(), cols, q);
      }
      b.tensor(gguf_name, 2u, ne, q);  // GGML_TYPE_Q4_0
      return;
    }
    if (o.q4_0_as_f32 && gguf_name.rfind("blk.", 0) == 0 && t.shape.size() == 2 && t.shape[1] % 32 == 0) {
      const int64_t rows = t.shape[0], cols = t.shape[1];
      std::vector<float> row(static_cast<size_t>(cols)), all;
      for (int64_t r = 0; r < rows; ++r) {
        convert_to_f32(t.dtype, t.data + size_t(r * cols) * dtype_size(t.dtype), size_t(cols), row.data());
        std::vector<uint8_t> q;
        q4_0_row(row.data(), cols, q);
        for (int64_t blk = 0; blk < cols / 32; ++blk) {
          const uint8_t* p = q.data() + blk * 18;
          const float d = f16_to_f32(uint16_t(p[0] | (p[1] << 8)));
          for (int j = 0; j < 32; ++j) {
            const int code = j < 16 ? (p[2 + j] & 15) : (p[2 + j - 16] >> 4);
            all.push_back(float(code - 8) * d);
          }
        }
      }
      b.tensor_of<float>(gguf_name, 0u, ne, all);
      return;
    }
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    b.tensor(gguf_name, ggml_type_of(t.dtype), ne, bytes);
  };
  add("token_embd.weight", "embed_tokens.weight");
  add("output_norm.weight", "norm.weight");
  if (!s.tie_embeddings) add("output.weight", "lm_head.weight");
  if (o.write_rope_freqs && d_full > 0) {
    std::vector<float> f(size_t(d_full / 2), 1e30f);
    for (int k = 0; k < full_pairs; ++k) f[size_t(k)] = 1.0f;
    b.tensor_of<float>("rope_freqs.weight", 0, {uint64_t(d_full / 2)}, f);
  }
  const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "input_layernorm.weight"}, {"attn_q", "self_attn.q_proj.weight"},
      {"attn_k", "self_attn.k_proj.weight"}, {"attn_v", "self_attn.v_proj.weight"},
      {"attn_output", "self_attn.o_proj.weight"}, {"attn_q_norm", "self_attn.q_norm.weight"},
      {"attn_k_norm", "self_attn.k_norm.weight"}, {"post_attention_norm", "post_attention_layernorm.weight"},
      {"ffn_norm", "pre_feedforward_layernorm.weight"}, {"ffn_gate", "mlp.gate_proj.weight"},
      {"ffn_up", "mlp.up_proj.weight"}, {"ffn_down", "mlp.down_proj.weight"},
      {"post_ffw_norm", "post_feedforward_layernorm.weight"}, {"layer_output_scale", "layer_scalar"}};
  for (int i = 0; i < n; ++i) {
    const std::string lp = "layers." + std::to_string(i) + ".";
    for (const auto& [g, c] : names) {
      if (!ws->find(lp + c)) continue;  // v_proj on K=V layers
      if (!o.write_layer_scale && std::string(g) == "layer_output_scale") continue;
      add("blk." + std::to_string(i) + "." + g + ".weight", lp + c);
    }
  }
  if (!o.extra_tensor.empty()) b.tensor_of<float>(o.extra_tensor, 0, {1}, {1.0f});
  return b;
}

}  // namespace g4::test
