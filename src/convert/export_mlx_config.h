// The text-model keys of an MLX export's config.json: mlx-lm's gemma4_text.ModelArgs has its own defaults for
// keys a config may leave out, several unlike the ones g4 (and transformers) assume: num_kv_shared_layers 20,
// hidden_size_per_layer_input 256, final_logit_softcapping 30, a full layer every 5th (sliding_window_pattern 5).
// The export writes every key mlx-lm reads with the value g4 read the checkpoint with, so both run one model.
#pragma once

#include <nlohmann/json.hpp>

#include "model/model_spec.h"

namespace g4 {

// Fills the keys of `text` (text_config, or the top level of a gemma4_text config) that are missing with the
// values in `spec`, and replaces a per_layer_config (which mlx-lm does not read) by the flat keys. Throws
// g4::Error when the layers differ in a way mlx-lm's flat keys cannot express.
void complete_mlx_text_config(nlohmann::ordered_json& text, const ModelSpec& spec);

}  // namespace g4
