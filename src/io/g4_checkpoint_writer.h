// Streams a g4 quantized checkpoint file (io/g4_checkpoint.h): the plan (every logical tensor, plain or
// with its quantization scheme) fixes the header, then data arrives in row chunks in any order.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/g4_checkpoint.h"
#include "io/quantize_stored.h"
#include "io/safetensors_stream.h"

namespace g4 {

struct PlannedTensor {
  std::string name;
  DType dtype = DType::kBF16;  // plain tensors only
  std::vector<int64_t> shape;  // logical; [rows, cols] for quantized ones
  std::optional<QuantScheme> quant;
};

class G4CheckpointWriter {
 public:
  G4CheckpointWriter(const std::string& path, const std::vector<PlannedTensor>& plan,
                     std::map<std::string, std::string> extra_metadata = {});
  // Bytes [offset, offset + n) of a plain tensor.
  void write_plain(const std::string& name, uint64_t offset, const void* data, size_t n);
  // Rows [c.row0, c.row0 + c.rows) of a quantized tensor.
  void write_quant(const std::string& name, const QuantChunk& c);
  void finish() { w_->finish(); }
  uint64_t total_bytes() const { return w_->total_bytes(); }

 private:
  std::unique_ptr<SafetensorsStreamWriter> w_;
  std::map<std::string, QuantTensorSpec> quant_;
};

}  // namespace g4
