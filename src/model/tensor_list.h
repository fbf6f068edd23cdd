// The canonical text-model tensors a ModelSpec implies (spec section 3.2), in checkpoint order, with
// their shapes. Used by tools that write checkpoints (synth, quantize) so they agree with Model::load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model_spec.h"

namespace g4 {

enum class TensorKind { kMatrix, kEmbedding, kNorm, kScalar };

struct ModelTensor {
  std::string name;
  std::vector<int64_t> shape;
  TensorKind kind;
};

// with_lm_head: include lm_head.weight [V, H] (always when the spec is untied).
std::vector<ModelTensor> model_tensors(const ModelSpec& s, bool with_lm_head);

}  // namespace g4
