// Quantizes a plain stored 2-D tensor by row chunks: each chunk is converted to f32, quantized and handed
// to a sink, then its source pages are released, so memory stays at a few chunks whatever the tensor size.
// Shared by `g4 quantize` (sink: a file) and on-the-fly quantization at load (sink: memory).
#pragma once

#include <cstdint>
#include <functional>

#include "io/safetensors.h"
#include "quant/quantizer.h"

namespace g4 {

struct QuantChunk {
  int64_t row0 = 0, rows = 0;
  const uint8_t* codes = nullptr;  // quant_code_bytes(kind, rows, cols)
  const void* scales = nullptr;    // quant_scale_bytes(scheme, rows, cols)
  const void* zeros = nullptr;     // same size; null when symmetric
};

// name: for error messages. Throws g4::Error for non-2-D or non-float tensors and bad group sizes.
void quantize_stored(const TensorInfo& t, const std::string& name, const QuantScheme& s,
                     const std::function<void(const QuantChunk&)>& sink);

// The same into memory: out->q describes the result.
void quantize_stored(const TensorInfo& t, const std::string& name, const QuantScheme& s, OwnedQuantWeight* out);

}  // namespace g4
