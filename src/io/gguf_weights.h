// The tensors of a gemma4 GGUF under g4's canonical (Hugging Face, unprefixed) names, for WeightStore.
// F32/F16/BF16 tensors are served in place from the mapping as TensorInfo; quantized tensors (Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K) are converted to QuantWeight when asked: convert() hands the copy
// to the caller (the model loader packs it and drops it, so a GGUF costs no second copy in memory).
// Unknown tensor names and unsupported types are refused, never silently skipped.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "quant/format.h"

namespace g4 {

// Maps a llama.cpp gemma4 tensor name to its canonical name:
//   token_embd.weight -> embed_tokens.weight, output_norm.weight -> norm.weight, output.weight -> lm_head.weight,
//   blk.N.attn_q.weight -> layers.N.self_attn.q_proj.weight, ... (table in gguf_weights.cc, docs/GGUF.md).
// Returns false for names that are not model weights (rope_freqs.weight, checked by the ModelSpec
// reader instead) and throws g4::Error for names it does not know.
bool gguf_canonical_name(const std::string& gguf_name, std::string* out, const std::string& file);

// The inverse: the llama.cpp gemma4 name of a canonical weight name (embed_tokens.weight -> token_embd.weight,
// layers.N.mlp.up_proj.weight -> blk.N.ffn_up.weight, layers.N.layer_scalar -> blk.N.layer_output_scale.weight).
// Throws g4::Error for a name with no gemma4 GGUF counterpart.
std::string gguf_tensor_name(const std::string& canonical);

class GgufWeights {
 public:
  // Opens and validates the file and every tensor name and type. Throws g4::Error.
  explicit GgufWeights(const std::string& path);

  const GgufFile& file() const { return *file_; }
  // Plain (float or integer) tensors, canonical name -> info pointing into the mapping.
  const std::map<std::string, TensorInfo>& plain_tensors() const { return plain_; }
  // The quantized tensor with this canonical name converted (threads over the blocks), owned by the
  // caller; nullptr when there is no such quantized tensor.
  std::unique_ptr<OwnedQuantWeight> convert(const std::string& canonical_name) const;
  // The stored quantized tensor with this canonical name, or nullptr.
  const GgufTensor* quant_tensor(const std::string& canonical_name) const;
  // Canonical names of all quantized tensors.
  std::vector<std::string> quant_names() const;

 private:
  std::unique_ptr<GgufFile> file_;
  std::map<std::string, TensorInfo> plain_;
  std::map<std::string, const GgufTensor*> quant_src_;
  std::vector<float> ones_;  // backing store for synthesized layer_scalar = 1 (see .cc)
};

}  // namespace g4
