#include "model/weight_loader.h"

#include <cmath>

#include "base/error.h"
#include "io/finite_check.h"
#include "io/quantize_stored.h"
#include "model/model.h"

namespace g4 {

namespace {

uint64_t total_bytes(const WeightStore& ws) {
  uint64_t total = 0;
  for (const auto& [name, w] : ws.weights()) total += stored_bytes(w);
  return total;
}

}  // namespace

WeightLoader::WeightLoader(const std::string& path, Backend& backend, const LoadOptions& opts, int n_layers,
                           const std::string& what)
    : ws_(WeightStore::open(path)), backend_(backend), progress_(what, total_bytes(*ws_), "B", opts.progress) {
  if (opts.quantize == "int4") recipe_ = Recipe::make("default", n_layers, opts.group_size, QuantMethod::kMinMax);
  else if (opts.quantize == "int8") recipe_ = Recipe::make("int8", n_layers, opts.group_size, QuantMethod::kMinMax);
  else if (!opts.quantize.empty()) throw Error("--quantize: '" + opts.quantize + "' is not int4 or int8");
}

WeightView WeightLoader::fetch(const std::string& name, const std::vector<int64_t>& shape) const {
  const TensorInfo& t = ws_->get(name);  // a quantized tensor here is one clear error naming its storage
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    throw Error(t.file + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) + "; expected BF16, F16 or F32");
  if (t.shape != shape)
    throw Error(t.file + ": tensor '" + name + "' has shape " + t.shape_str() + " but the config implies " +
                shape_to_string(shape));
  return WeightView{name, t.dtype, t.shape, t.data, nullptr};
}

std::unique_ptr<PackedWeight> WeightLoader::pack_as(const std::string& name, const std::string& src,
                                                    const std::vector<int64_t>& shape, WeightRole role) {
  const StoredWeight& w = ws_->get_weight(src);
  if (w.shape != shape)
    throw Error(w.file + ": tensor '" + src + "' has shape " + shape_to_string(w.shape) + " but the config implies " +
                shape_to_string(shape));
  if (is_quantized(w)) {
    const QuantData d = ws_->quant_data(w);  // a GGUF tensor is converted here and dropped after packing
    if (w.gguf) check_finite(w, *d.q);
    return backend_.pack(WeightView{name, d.q->scale_dtype, w.shape, nullptr, d.q}, role);
  }
  const std::optional<QuantScheme> scheme = recipe_ ? recipe_->choose(name) : std::nullopt;
  if (!scheme) return backend_.pack(fetch(src, shape), role);
  // The quantized copy lives only until the backend has packed it.
  OwnedQuantWeight q;
  quantize_stored(*w.plain, src, *scheme, &q);
  return backend_.pack(WeightView{name, q.q.scale_dtype, w.shape, nullptr, &q.q}, role);
}

std::unique_ptr<PackedWeight> WeightLoader::pack(const std::string& name, const std::vector<int64_t>& shape,
                                                 WeightRole role) {
  const StoredWeight* w = ws_->find_weight(name);
  if (w) check_finite(*w);  // NaN/Inf: refused, file and tensor named
  auto packed = role == WeightRole::kNorm ? backend_.pack(fetch(name, shape), role) : pack_as(name, name, shape, role);
  if (w) progress_.add(stored_bytes(*w));
  // The backend has its own copy now (or reads the mapping again when it needs it): unmap the file pages
  // read so far, so that peak memory is the packed model plus one tensor, not the packed model plus the
  // whole checkpoint (the pages stay in the page cache; a backend that views the mapping re-faults them).
  if (role != WeightRole::kNorm) ws_->release_pages();
  return packed;
}

float WeightLoader::scalar(const std::string& name) const {
  const WeightView v = fetch(name, {1});
  float x = 0;
  convert_to_f32(v.dtype, v.data, 1, &x);
  if (!std::isfinite(x)) throw Error(ws_->get(name).file + ": tensor '" + name + "' is not finite");
  return x;
}

}  // namespace g4
