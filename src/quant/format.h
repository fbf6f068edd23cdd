// The backend-neutral quantized weight, as the g4 checkpoint stores it and as every loader (g4
// checkpoint, GGUF, ExecuTorch/torchao) presents it to backends. Backends pack it into their own
// layout at load time (Backend::pack); nothing here is backend-specific.
//
// A quantized linear or embedding W [out, in] is split along `in` into groups of `group_size`
// consecutive elements (group_size == in means per-row). Element (n, k) dequantizes as
//     w[n, k] = (q[n, k] - z[n, k / gs]) * s[n, k / gs]
// - kInt4: codes uint8 [out, in/2]; element 2j of a row in the LOW nibble of byte j, 2j+1 in the HIGH
//   nibble; codes unsigned 0..15. Symmetric: z = 8 implied (zeros == nullptr).
// - kInt8: codes int8 [out, in], signed -128..127. Symmetric: z = 0 implied (zeros == nullptr).
// Scales and zero points are [out, in/gs] in scale_dtype (F32, F16 or BF16); zero points are real
// numbers in code units (HQQ and GGUF K-quants give non-integer ones).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bulk_memory.h"
#include "base/dtype.h"

namespace g4 {

enum class QuantKind { kInt4, kInt8 };

struct QuantWeight {
  QuantKind kind = QuantKind::kInt4;
  int64_t rows = 0, cols = 0;  // logical [out, in]
  int64_t group_size = 32;
  const uint8_t* codes = nullptr;
  DType scale_dtype = DType::kBF16;
  const void* scales = nullptr;  // [rows, cols / group_size]
  const void* zeros = nullptr;   // same shape and dtype as scales; nullptr = symmetric

  int64_t groups_per_row() const { return cols / group_size; }
  size_t code_bytes() const { return size_t(rows) * size_t(kind == QuantKind::kInt4 ? cols / 2 : cols); }
  std::string describe() const;  // "int4 g32 asym (bf16 scales)"
};

// A QuantWeight together with the storage it points into (quantizer output, converted GGUF blocks).
struct OwnedQuantWeight {
  BulkBytes codes, scales, zeros;  // not zero-filled by resize: the writer fills every byte
  QuantWeight q;  // points into the vectors above; do not copy the struct after filling
};

// Throws g4::Error when the geometry is inconsistent (group size not dividing cols, odd int4 cols, ...).
void validate(const QuantWeight& q, const std::string& name);

// Dequantizes row r into dst[cols] (f32). The plain reference every packed kernel is tested against.
void dequantize_row(const QuantWeight& q, int64_t r, float* dst);

}  // namespace g4
