// Writes a safetensors file: used for logits dumps and, later, quantized checkpoints. Tensors are
// written in the order given, 8-byte aligned, with an optional string->string __metadata__.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace g4 {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes
};

// Writes to path + ".tmp" then renames, so a failed write never leaves a half file under the real name.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace g4
