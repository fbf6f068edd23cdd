#include "model/tensor_list.h"

namespace g4 {

std::vector<ModelTensor> model_tensors(const ModelSpec& s, bool with_lm_head) {
  const int64_t H = s.hidden_size, V = s.vocab_size, F = s.intermediate_size, Hq = s.n_heads;
  std::vector<ModelTensor> t;
  t.push_back({"embed_tokens.weight", {V, H}, TensorKind::kEmbedding});
  for (int i = 0; i < s.n_layers(); ++i) {
    const LayerSpec& L = s.layers[size_t(i)];
    const std::string p = "layers." + std::to_string(i) + ".";
    const int64_t D = L.head_dim, Hkv = L.n_kv_heads;
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm"})
      t.push_back({p + n + ".weight", {H}, TensorKind::kNorm});
    t.push_back({p + "layer_scalar", {1}, TensorKind::kScalar});
    t.push_back({p + "self_attn.q_proj.weight", {Hq * D, H}, TensorKind::kMatrix});
    t.push_back({p + "self_attn.k_proj.weight", {Hkv * D, H}, TensorKind::kMatrix});
    if (!L.k_eq_v) t.push_back({p + "self_attn.v_proj.weight", {Hkv * D, H}, TensorKind::kMatrix});
    t.push_back({p + "self_attn.o_proj.weight", {H, Hq * D}, TensorKind::kMatrix});
    t.push_back({p + "self_attn.q_norm.weight", {D}, TensorKind::kNorm});
    t.push_back({p + "self_attn.k_norm.weight", {D}, TensorKind::kNorm});
    t.push_back({p + "mlp.gate_proj.weight", {F, H}, TensorKind::kMatrix});
    t.push_back({p + "mlp.up_proj.weight", {F, H}, TensorKind::kMatrix});
    t.push_back({p + "mlp.down_proj.weight", {H, F}, TensorKind::kMatrix});
  }
  t.push_back({"norm.weight", {H}, TensorKind::kNorm});
  if (with_lm_head || !s.tie_embeddings) t.push_back({"lm_head.weight", {V, H}, TensorKind::kMatrix});
  return t;
}

}  // namespace g4
