// g4 export: a g4 quantized checkpoint -> an MLX-LM model directory or a llama.cpp GGUF file, without
// re-quantizing: the codes are kept, only the scales / zero points are re-expressed in the target's form
// (docs/EXPORT.md). Both stream tensor by tensor and report the largest change any weight suffers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace g4 {

struct ExportOptions {
  std::string model, out;
  std::string format;                // mlx | gguf
  std::string scale_dtype = "f16";  // mlx only: bf16 | f16 | f32 (scales and biases of asymmetric tensors)
  bool progress = true;
};

struct ExportReport {
  int quantized = 0, plain = 0;
  double max_change = 0;        // largest |exported weight - source weight|, exact arithmetic
  std::string max_change_tensor;
  double max_change_steps = 0;  // largest change as a fraction of its group's scale (one code step)
  std::map<std::string, int> types;  // stored form -> tensor count ("Q4_1", "mlx 4-bit g32", "BF16", ...)
  uint64_t bytes_out = 0;
};

// Throws g4::Error (one line naming the tensor or file) on anything the target cannot express: a float
// (unquantized) checkpoint, unsupported group sizes, asymmetric int8 for GGUF, an fp16 overflow.
ExportReport export_mlx(const ExportOptions& o);
ExportReport export_gguf(const ExportOptions& o);

}  // namespace g4
