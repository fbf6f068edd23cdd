#include "model/model.h"

#include <cmath>

#include "base/error.h"
#include "base/progress.h"
#include "io/finite_check.h"
#include "io/quantize_stored.h"
#include "quant/recipe.h"

namespace g4 {

namespace {

// Fetches a plain float tensor by canonical name and checks its shape (norms, scalars).
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

// Packs a linear or embedding weight, plain or quantized; quantizes plain ones on the fly when the
// recipe says so (the quantized copy lives only until the backend has packed it).
std::unique_ptr<PackedWeight> pack_matrix(Backend& backend, const WeightStore& ws, const std::string& name,
                                          const std::vector<int64_t>& shape, WeightRole role, const Recipe* recipe,
                                          const std::string& source_name = "") {
  const std::string& src = source_name.empty() ? name : source_name;
  const StoredWeight& w = ws.get_weight(src);
  if (w.shape != shape)
    throw Error(w.file + ": tensor '" + src + "' has shape " + shape_to_string(w.shape) + " but the config implies " +
                shape_to_string(shape));
  if (is_quantized(w)) {
    const QuantData d = ws.quant_data(w);  // a GGUF tensor is converted here and dropped after packing
    if (w.gguf) check_finite(w, *d.q);
    return backend.pack(WeightView{name, d.q->scale_dtype, w.shape, nullptr, d.q}, role);
  }
  const std::optional<QuantScheme> scheme = recipe ? recipe->choose(name) : std::nullopt;
  if (!scheme) return backend.pack(fetch(ws, src, shape), role);
  OwnedQuantWeight q;
  quantize_stored(*w.plain, src, *scheme, &q);
  return backend.pack(WeightView{name, q.q.scale_dtype, w.shape, nullptr, &q.q}, role);
}

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
  auto ws = WeightStore::open(path);
  const int64_t H = s.hidden_size, V = s.vocab_size, F = s.intermediate_size, Hq = s.n_heads;

  std::optional<Recipe> recipe;
  if (opts.quantize == "int4") recipe = Recipe::make("default", s.n_layers(), opts.group_size, QuantMethod::kMinMax);
  else if (opts.quantize == "int8") recipe = Recipe::make("int8", s.n_layers(), opts.group_size, QuantMethod::kMinMax);
  else if (!opts.quantize.empty()) throw Error("--quantize: '" + opts.quantize + "' is not int4 or int8");
  const Recipe* rp = recipe ? &*recipe : nullptr;

  // Progress in stored bytes: every weight is read (and packed) once.
  uint64_t total = 0;
  for (const auto& [name, w] : ws->weights()) total += stored_bytes(w);
  Progress progress("loading", total, "B", opts.progress);
  auto pack = [&](const std::string& name, std::vector<int64_t> shape, WeightRole role) {
    if (const StoredWeight* w = ws->find_weight(name)) check_finite(*w);  // NaN/Inf: refused, file and tensor named
    auto packed = role == WeightRole::kNorm ? backend.pack(fetch(*ws, name, shape), role)
                                            : pack_matrix(backend, *ws, name, shape, role, rp);
    if (const StoredWeight* w = ws->find_weight(name)) progress.add(stored_bytes(*w));
    // The backend has its own copy now (or reads the mapping again when it needs it): unmap the file pages
    // read so far, so that peak memory is the packed model plus one tensor, not the packed model plus the
    // whole checkpoint (the pages stay in the page cache; a backend that views the mapping re-faults them).
    if (role != WeightRole::kNorm) ws->release_pages();
    return packed;
  };

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
    m->lm_head_ = pack_matrix(backend, *ws, "lm_head.weight", {V, H}, WeightRole::kLinear, rp, "embed_tokens.weight");

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
  progress.finish();
  return m;
}

}  // namespace g4
