// ModelSpec from the metadata of a gemma4 GGUF file (spec section 5.4), the counterpart of
// parse_model_config for config.json. Per-layer KV heads, head sizes and the sliding pattern come from
// the gemma4.* keys; K=V from the absence of blk.N.attn_v on full layers; the proportional RoPE of full
// layers from rope_freqs.weight, which must be n ones followed by "infinite" divisors (>= 1e20).
#pragma once

#include "io/gguf.h"
#include "model/model_spec.h"

namespace g4 {

// Throws g4::Error naming the file and key for anything missing, malformed or not supported.
ModelSpec model_spec_from_gguf(const GgufFile& f);

}  // namespace g4
