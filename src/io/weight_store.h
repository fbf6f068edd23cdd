// WeightStore: a read-only, format-neutral view of a checkpoint, name -> tensor. Source names are
// mapped once onto canonical names, the Hugging Face text names without prefix:
//   model.language_model.layers.0.mlp.up_proj.weight -> layers.0.mlp.up_proj.weight
//   model.layers.0.mlp.up_proj.weight (text-only export) -> the same
// Vision and audio tensors are skipped. Opens a single .safetensors file, a directory holding
// model.safetensors, a directory with model.safetensors.index.json and its shards, or a gemma4 GGUF
// file (io/gguf_weights.h maps its names; its quantized tensors are served by find_quant).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf_weights.h"
#include "io/safetensors.h"

namespace g4 {

class WeightStore {
 public:
  // path: a directory or a .safetensors file. Throws g4::Error naming what is missing or malformed.
  static std::unique_ptr<WeightStore> open(const std::string& path);

  const TensorInfo* find(const std::string& canonical_name) const;
  // Like find, but throws g4::Error "missing tensor NAME in DIR" when absent.
  const TensorInfo& get(const std::string& canonical_name) const;
  const std::map<std::string, const TensorInfo*>& tensors() const { return by_name_; }
  const std::string& source() const { return source_; }
  // A quantized tensor (GGUF block formats converted to quant/format.h), or nullptr.
  const QuantWeight* find_quant(const std::string& canonical_name) const;
  // The GGUF file when the store was opened from one (metadata, tokenizer), else nullptr.
  const GgufFile* gguf() const { return gguf_ ? &gguf_->file() : nullptr; }

  // Maps a source name to its canonical name; returns false for tensors that are not part of the text model.
  static bool canonical_name(const std::string& source_name, std::string* out);

 private:
  void add_file(const std::string& path);

  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
  std::unique_ptr<GgufWeights> gguf_;
};

// Reads tensor t as f32 values (any float or small int dtype). Result has t.numel() elements.
std::vector<float> tensor_to_f32(const TensorInfo& t);

}  // namespace g4
