// WeightStore: a read-only, format-neutral view of a checkpoint, name -> tensor. Source names are
// mapped once onto canonical names, the Hugging Face text names without prefix:
//   model.language_model.layers.0.mlp.up_proj.weight -> layers.0.mlp.up_proj.weight
//   model.layers.0.mlp.up_proj.weight (text-only export) -> the same
// Vision and audio tensors are skipped. Opens a single .safetensors file, a directory holding
// model.safetensors, a directory with model.safetensors.index.json and its shards, or a gemma4 GGUF
// file (io/gguf_weights.h maps its names and converts its block formats), or an MLX-LM quantized
// directory (io/mlx_checkpoint.h: config.json "quantization", packed U32 weights with scales and biases).
// A canonical name resolves to a plain float tensor or to a QuantWeight (quant/format.h); quantized
// tensors come from g4 checkpoints (io/g4_checkpoint.h) or torchao/ExecuTorch files
// (io/torchao_checkpoint.h) and are presented by their logical name.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf_weights.h"
#include "io/mlx_checkpoint.h"
#include "io/safetensors.h"
#include "quant/format.h"

namespace g4 {

// One logical weight: exactly one of plain / quant / gguf is set. shape is the logical shape ([out, in]
// for quantized weights).
struct StoredWeight {
  std::string name, file;
  std::vector<int64_t> shape;
  const TensorInfo* plain = nullptr;
  const QuantWeight* quant = nullptr;  // owned by the WeightStore
  const GgufTensor* gguf = nullptr;    // a GGUF block-format tensor: WeightStore::quant_data converts it
};

// A quantized weight's codes and scales: the stored QuantWeight, or a GGUF tensor converted for the caller
// and freed with this object (the loader packs each weight and drops the copy).
struct QuantData {
  const QuantWeight* q = nullptr;
  std::unique_ptr<OwnedQuantWeight> owned;
};

bool is_quantized(const StoredWeight& w);
// Bytes the checkpoint stores for w (codes, scales and zeros; a GGUF tensor's blocks).
uint64_t stored_bytes(const StoredWeight& w);
// "BF16", "int4 g32 asym (bf16 scales)", "GGUF Q4_0".
std::string storage_name(const StoredWeight& w);

class WeightStore {
 public:
  // path: a directory or a .safetensors file. Throws g4::Error naming what is missing or malformed.
  static std::unique_ptr<WeightStore> open(const std::string& path);

  const TensorInfo* find(const std::string& canonical_name) const;
  // Like find, but throws g4::Error "missing tensor NAME in DIR" when absent.
  const TensorInfo& get(const std::string& canonical_name) const;
  // Plain tensors only (quantized tensors' stored parts are not listed).
  const std::map<std::string, const TensorInfo*>& tensors() const { return by_name_; }
  // Every logical weight, plain or quantized.
  const std::map<std::string, StoredWeight>& weights() const { return weights_; }
  const StoredWeight* find_weight(const std::string& canonical_name) const;
  const StoredWeight& get_weight(const std::string& canonical_name) const;
  const std::string& source() const { return source_; }
  // The codes and scales of a quantized weight (is_quantized(w)); throws g4::Error for a plain one.
  QuantData quant_data(const StoredWeight& w) const;
  // The GGUF file when the store was opened from one (metadata, tokenizer), else nullptr.
  const GgufFile* gguf() const { return gguf_ ? &gguf_->file() : nullptr; }
  // Drops the resident pages of every mapped file. Streaming passes call it between tensors: the kernel
  // maps whole large folios around each fault, so page-granular releases alone leave pages behind.
  void release_pages() const;

  // Maps a source name to its canonical name; returns false for tensors that are not part of the text model.
  static bool canonical_name(const std::string& source_name, std::string* out);

 private:
  void add_file(const std::string& path);

  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
  std::map<std::string, StoredWeight> weights_;
  std::vector<std::unique_ptr<QuantWeight>> quants_;
  std::unique_ptr<GgufWeights> gguf_;
  std::unique_ptr<MlxQuantConfig> mlx_;  // set for an MLX quantized directory (config.json "quantization")
  std::vector<std::shared_ptr<const void>> owned_;  // converted scales/zeros of imported formats
};

// Parses model.safetensors.index.json text: canonical-free source name -> shard file name. Shard names
// must be plain file names (no directories, no "..").  `path` names the file in errors. Throws g4::Error.
std::map<std::string, std::string> parse_shard_index(const std::string& json_text, const std::string& path);

// Reads tensor t as f32 values (any float or small int dtype). Result has t.numel() elements.
std::vector<float> tensor_to_f32(const TensorInfo& t);

}  // namespace g4
