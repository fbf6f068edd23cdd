// g4 quantize: a Hugging Face bf16 checkpoint -> the g4 quantized checkpoint, tensor by tensor in row
// chunks (source pages released after use), so peak memory is a few chunks whatever the model size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace g4 {

struct QuantizeOptions {
  std::string model, out;
  std::string recipe = "default";  // default | sensitive | int8
  int64_t group_size = 32;
  std::string method = "minmax";   // minmax | hqq (for the recipe's int4 rules)
  std::string int4 = "asym";       // asym | sym (zero point 8 implied) for the recipe's int4 rules
  std::string scale_dtype = "bf16";  // bf16 | f16 | f32: scales (and zero points) of the int4 rules
  std::string offsets = "f16";     // f16 | free: asymmetric offsets s*z exact in f16 (exact exports) or any
  std::vector<std::string> rules;  // 'REGEX=int8|int4|bf16', first match wins, ahead of the recipe
  bool progress = true;
};

struct QuantizeSummary {
  uint64_t bytes_in = 0;   // the source tensors read, each counted once
  uint64_t bytes_out = 0;  // the written model.safetensors
  int quantized = 0, kept = 0;
};

QuantizeSummary quantize_checkpoint(const QuantizeOptions& o);

}  // namespace g4
