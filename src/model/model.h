// Model: a loaded Gemma 4 text model, its spec and its weights packed by one backend. Loading checks
// every tensor's presence, dtype and shape against the spec and names the offender when wrong.
// Canonical tensor names are listed in spec section 3.2 (Hugging Face names without prefix).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/weight_store.h"
#include "model/model_spec.h"

namespace g4 {

struct LayerWeights {
  std::unique_ptr<PackedWeight> input_norm, post_attn_norm, pre_ffn_norm, post_ffn_norm;
  std::unique_ptr<PackedWeight> q, k, v, o;  // v is null on K=V layers
  std::unique_ptr<PackedWeight> q_norm, k_norm;
  std::unique_ptr<PackedWeight> gate, up, down;
  float layer_scalar = 1.0f;
};

struct LoadOptions {
  // "" keeps weights as stored; "int4" / "int8" quantizes plain 2-D weights while loading, streaming
  // tensor by tensor with the recipe of the same name in quant/recipe.h ("int4" = recipe "default").
  std::string quantize;
  int64_t group_size = 32;
  bool progress = false;  // a progress bar on stderr (bytes packed, rate, ETA)
};

class Model {
 public:
  // Loads config.json and the safetensors weights at `path` (a directory or .safetensors file) and packs
  // them with `backend`, which must outlive the model. Throws g4::Error.
  // Weights may be plain or quantized (g4 checkpoint); a stored lm_head.weight is used even when the
  // config ties it to the embedding (quantized checkpoints untie it).
  static std::unique_ptr<Model> load(const std::string& path, Backend& backend);
  static std::unique_ptr<Model> load(const std::string& path, Backend& backend, const LoadOptions& opts);

  const ModelSpec& spec() const { return spec_; }
  Backend& backend() const { return *backend_; }
  const PackedWeight& embedding() const { return *embed_; }
  const PackedWeight& lm_head() const { return lm_head_ ? *lm_head_ : *embed_; }
  const PackedWeight& final_norm() const { return *final_norm_; }
  const LayerWeights& layer(int i) const { return layers_[size_t(i)]; }
  // sqrt(hidden_size) rounded to the embedding's stored dtype, as transformers does (73.5 for the 31B in bf16).
  float embed_scale() const { return embed_scale_; }

 private:
  ModelSpec spec_;
  Backend* backend_ = nullptr;
  std::unique_ptr<PackedWeight> embed_, lm_head_, final_norm_;
  std::vector<LayerWeights> layers_;
  float embed_scale_ = 1.0f;
};

}  // namespace g4
