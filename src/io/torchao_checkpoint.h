// Reader for the torchao-serialized safetensors that ExecuTorch's quantize_and_save.py writes (spec 5.1):
// metadata "tensor_names" lists logical names; each logical name maps to a JSON {"_type", "_data",
// "_tensor_data_names"}; a subclass tensor P.weight stores its parts as P._weight_<part>.
//  - Int4Tensor: qdata U8 [N, K/2] (our nibble order, used in place), scale/zero_point [K/gs, N]
//    (transposed here into [N, K/gs] heap copies: 1/8 byte per weight for bf16 scale + zero).
//  - IntxUnpackedToInt8Tensor: qdata I8 [N, K] (used in place as int8 codes, also for target int4),
//    scale [N, K/gs], zero_point I8 [N, K/gs] (converted to the scale dtype; omitted when all zero).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "quant/format.h"

namespace g4 {

struct TorchaoWeight {
  std::string name;                    // logical name, e.g. layers.0.mlp.up_proj.weight
  std::shared_ptr<const void> owner;   // keeps converted scales / zeros alive
  QuantWeight q;
};

// True when f's metadata looks like torchao's ("tensor_names" present).
bool is_torchao(const SafetensorsFile& f);

// Reads the subclass tensors; adds their stored part names to *parts. Plain entries ("_type": "Tensor")
// are left to the caller. Throws g4::Error naming the file and tensor on anything inconsistent.
std::vector<TorchaoWeight> read_torchao(const SafetensorsFile& f, std::set<std::string>* parts);

}  // namespace g4
