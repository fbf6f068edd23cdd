#include "model/model.h"

#include <cmath>

#include "base/error.h"

namespace g4 {

namespace {

// Fetches a float tensor by canonical name and checks its shape.
WeightView fetch(const WeightStore& ws, const std::string& name, const std::vector<int64_t>& shape) {
  if (const QuantWeight* q = ws.find_quant(name)) {
    if (shape.size() != 2 || q->rows != shape[0] || q->cols != shape[1])
      throw Error(ws.source() + ": quantized tensor '" + name + "' has shape [" + std::to_string(q->rows) + ", " +
                  std::to_string(q->cols) + "] but the config implies " + shape_to_string(shape));
    return WeightView{name, DType::kF32, shape, nullptr, q};
  }
  const TensorInfo& t = ws.get(name);
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    throw Error(t.file + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) + "; expected BF16, F16 or F32");
  if (t.shape != shape)
    throw Error(t.file + ": tensor '" + name + "' has shape " + t.shape_str() + " but the config implies " +
                shape_to_string(shape));
  return WeightView{name, t.dtype, t.shape, t.data, nullptr};
}

float round_to_dtype(float x, DType t) {
  if (t == DType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  if (t == DType::kF16) return f16_to_f32(f32_to_f16(x));
  return x;
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, Backend& backend) {
  auto m = std::unique_ptr<Model>(new Model());
  m->spec_ = load_model_config(path);
  m->backend_ = &backend;
  const ModelSpec& s = m->spec_;
  auto ws = WeightStore::open(path);
  const int64_t H = s.hidden_size, V = s.vocab_size, F = s.intermediate_size, Hq = s.n_heads;

  auto pack = [&](const std::string& name, std::vector<int64_t> shape, WeightRole role) {
    return backend.pack(fetch(*ws, name, shape), role);
  };

  const WeightView emb = fetch(*ws, "embed_tokens.weight", {V, H});
  m->embed_ = backend.pack(emb, WeightRole::kEmbedding);
  m->embed_scale_ = round_to_dtype(float(std::sqrt(double(H))), emb.dtype);
  m->final_norm_ = pack("norm.weight", {H}, WeightRole::kNorm);
  if (!s.tie_embeddings) m->lm_head_ = pack("lm_head.weight", {V, H}, WeightRole::kLinear);

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
    const WeightView ls = fetch(*ws, p + "layer_scalar", {1});
    convert_to_f32(ls.dtype, ls.data, 1, &w.layer_scalar);
    if (!std::isfinite(w.layer_scalar))
      throw Error(ws->get(p + "layer_scalar").file + ": tensor '" + p + "layer_scalar' is not finite");
    m->layers_.push_back(std::move(w));
  }
  return m;
}

}  // namespace g4
