#include "model/model.h"

#include <cmath>

#include "base/error.h"
#include "model/weight_loader.h"

namespace g4 {

namespace {

float round_to_dtype(float x, DType t) {
  if (t == DType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  if (t == DType::kF16) return f16_to_f32(f32_to_f16(x));
  return x;
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, Backend& backend) {
  return load(path, backend, LoadOptions{});
}

std::unique_ptr<Model> Model::load(const std::string& path, Backend& backend, const LoadOptions& opts) {
  auto m = std::unique_ptr<Model>(new Model());
  m->spec_ = load_model_config(path);
  m->backend_ = &backend;
  const ModelSpec& s = m->spec_;
  WeightLoader wl(path, backend, opts, s.n_layers(), "loading");
  const WeightStore* ws = &wl.store();
  const int64_t H = s.hidden_size, V = s.vocab_size, F = s.intermediate_size, Hq = s.n_heads;
  const Recipe* rp = wl.recipe();
  auto pack = [&](const std::string& name, std::vector<int64_t> shape, WeightRole role) { return wl.pack(name, shape, role); };

  const StoredWeight& emb = ws->get_weight("embed_tokens.weight");
  m->embed_ = pack("embed_tokens.weight", {V, H}, WeightRole::kEmbedding);
  // transformers multiplies by sqrt(H) in the model dtype; a quantized embedding carries it as its scale dtype,
  // except in a GGUF file, where llama.cpp multiplies a quantized embedding by the f32 value.
  m->embed_scale_ = round_to_dtype(float(std::sqrt(double(H))), emb.gguf    ? DType::kF32
                                                                 : emb.quant ? emb.quant->scale_dtype
                                                                             : emb.plain->dtype);
  m->final_norm_ = pack("norm.weight", {H}, WeightRole::kNorm);
  if (ws->find_weight("lm_head.weight")) m->lm_head_ = pack("lm_head.weight", {V, H}, WeightRole::kLinear);
  else if (!s.tie_embeddings) ws->get_weight("lm_head.weight");  // throws: untied but absent
  else if (rp && rp->untie_lm_head() && emb.plain)
    m->lm_head_ = wl.pack_as("lm_head.weight", "embed_tokens.weight", {V, H}, WeightRole::kLinear);

  for (int i = 0; i < s.n_layers(); ++i) {
    const LayerSpec& L = s.layers[size_t(i)];
    const std::string p = "layers." + std::to_string(i) + ".";
    const int64_t D = L.head_dim, Hkv = L.n_kv_heads;
    LayerWeights w;
    w.input_norm = pack(p + "input_layernorm.weight", {H}, WeightRole::kNorm);
    w.post_attn_norm = pack(p + "post_attention_layernorm.weight", {H}, WeightRole::kNorm);
    w.pre_ffn_norm = pack(p + "pre_feedforward_layernorm.weight", {H}, WeightRole::kNorm);
    w.post_ffn_norm = pack(p + "post_feedforward_layernorm.weight", {H}, WeightRole::kNorm);
    w.q = pack(p + "self_attn.q_proj.weight", {Hq * D, H}, WeightRole::kLinear);
    w.k = pack(p + "self_attn.k_proj.weight", {Hkv * D, H}, WeightRole::kLinear);
    if (!L.k_eq_v) w.v = pack(p + "self_attn.v_proj.weight", {Hkv * D, H}, WeightRole::kLinear);
    w.o = pack(p + "self_attn.o_proj.weight", {H, Hq * D}, WeightRole::kLinear);
    w.q_norm = pack(p + "self_attn.q_norm.weight", {D}, WeightRole::kNorm);
    w.k_norm = pack(p + "self_attn.k_norm.weight", {D}, WeightRole::kNorm);
    w.gate = pack(p + "mlp.gate_proj.weight", {F, H}, WeightRole::kLinear);
    w.up = pack(p + "mlp.up_proj.weight", {F, H}, WeightRole::kLinear);
    w.down = pack(p + "mlp.down_proj.weight", {H, F}, WeightRole::kLinear);
    w.layer_scalar = wl.scalar(p + "layer_scalar");
    m->layers_.push_back(std::move(w));
  }
  wl.finish();
  return m;
}

}  // namespace g4
