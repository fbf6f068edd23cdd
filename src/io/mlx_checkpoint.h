// Reader for MLX-LM's quantized model directories (mlx-community/*-4bit, g4 export --format mlx): config.json
// holds a "quantization" object {"group_size", "bits", "mode"?, MODULE_PATH: {"group_size", "bits"} | false};
// a quantized module P stores P.weight (U32 packed codes), P.scales and P.biases (quant/mlx_affine.h).
// Each becomes a QuantWeight under the logical name P.weight:
//  - groups whose bias is exactly -2^(bits-1) * scale (symmetric data, as g4 exports int8 and symmetric int4)
//    use the scales in place with the implied zero point; 4-bit codes are used in place (MLX's 4-bit words
//    are g4's nibble order on a little-endian host); 8-bit codes are copied and shifted by -128;
//  - otherwise F32 scales and zero points z = -bias / scale (within f32 rounding); a group with scale 0 is
//    the constant `bias` (its codes are rewritten).
// Bits other than 4 and 8, modes other than "affine" and inconsistent shapes are errors naming the tensor.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "quant/format.h"

namespace g4 {

struct MlxQuantParams {
  int64_t group_size = 64;
  int bits = 4;
};

struct MlxQuantConfig {
  MlxQuantParams defaults;
  // Per-module overrides: module path -> params, or nullopt for a module the config keeps unquantized.
  std::map<std::string, std::optional<MlxQuantParams>> modules;
  std::string source;  // config.json path, for messages
};

// The "quantization" block of DIR/config.json, or nullopt when the directory is not an MLX quantized model
// (no config.json or no "quantization" object). Throws g4::Error when the block is malformed.
std::optional<MlxQuantConfig> read_mlx_quant_config(const std::string& dir);

struct MlxWeight {
  std::string name;                   // stored name of the packed weight, e.g. model.layers.0.mlp.up_proj.weight
  std::shared_ptr<const void> owner;  // keeps converted codes / scales / zeros alive
  QuantWeight q;
};

// Reads every quantized module of f (those with a .scales tensor) and adds their stored names to *parts.
std::vector<MlxWeight> read_mlx_quant(const SafetensorsFile& f, const MlxQuantConfig& c, std::set<std::string>* parts);

}  // namespace g4
