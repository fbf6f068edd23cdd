// WeightLoader: packs a checkpoint's tensors for one backend, checking each one's presence, dtype and shape
// and quantizing plain 2-D weights on the fly with a recipe (LoadOptions::quantize). Shared by the target
// model (model/model.h) and the assistant drafter (model/assistant.h), so both load and quantize alike.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/progress.h"
#include "io/weight_store.h"
#include "quant/recipe.h"

namespace g4 {

struct LoadOptions;

class WeightLoader {
 public:
  // Opens the weights at `path`; the recipe of opts.quantize is built for n_layers. Throws g4::Error.
  WeightLoader(const std::string& path, Backend& backend, const LoadOptions& opts, int n_layers, const std::string& what);

  const WeightStore& store() const { return *ws_; }
  const Recipe* recipe() const { return recipe_ ? &*recipe_ : nullptr; }
  // Packs tensor `name` of the given shape (plain or quantized; NaN/Inf refused, file and tensor named).
  std::unique_ptr<PackedWeight> pack(const std::string& name, const std::vector<int64_t>& shape, WeightRole role);
  // Packs a linear `name` from the stored tensor `source_name` (a tied lm_head quantized on its own).
  std::unique_ptr<PackedWeight> pack_as(const std::string& name, const std::string& source_name,
                                        const std::vector<int64_t>& shape, WeightRole role);
  // A plain float tensor of the given shape, as a view (norms, scalars).
  WeightView fetch(const std::string& name, const std::vector<int64_t>& shape) const;
  // A one-element float tensor's value (layer_scalar); throws when it is not finite.
  float scalar(const std::string& name) const;
  void finish() { progress_.finish(); }

 private:
  std::unique_ptr<WeightStore> ws_;
  Backend& backend_;
  std::optional<Recipe> recipe_;
  Progress progress_;
};

}  // namespace g4
