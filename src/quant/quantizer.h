// Quantizers: f32 rows -> the backend-neutral QuantWeight layout of quant/format.h, written into
// caller-provided buffers so callers can stream a tensor in row chunks. Scales and zero points are
// chosen so that, after rounding them to scale_dtype, every element still maps inside the code range
// up to half a step: min-max then guarantees |w - dequant(w)| <= scale / 2 per group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/format.h"

namespace g4 {

enum class QuantMethod { kMinMax, kHqq };

struct QuantScheme {
  QuantKind kind = QuantKind::kInt4;
  int64_t group_size = 32;  // 0 = per-row (group_size = cols)
  bool symmetric = false;
  QuantMethod method = QuantMethod::kMinMax;
  DType scale_dtype = DType::kBF16;
  // Asymmetric, bf16 or f16 scales: pick only pairs (s, z) with s and the offset s * z (s * (z + 128) for int8) f16
  // numbers (quant/f16_offsets.h), so GGUF Q4_1 and MLX f16 exports hold them exactly; of the candidate pairs the
  // lowest squared error. The min-max half-step bound still holds. false: the zero point nearest the min-max one.
  bool f16_offsets = true;

  int64_t group_for(int64_t cols) const { return group_size > 0 ? group_size : cols; }
  std::string describe() const;  // "int4 g32 asym minmax"
};

// Parses "minmax" / "hqq"; throws g4::Error naming `flag` otherwise.
QuantMethod parse_quant_method(const std::string& s, const std::string& flag);

// Bytes of codes / of one scales (or zeros) array for a block of `rows` rows.
size_t quant_code_bytes(QuantKind kind, int64_t rows, int64_t cols);
size_t quant_scale_bytes(const QuantScheme& s, int64_t rows, int64_t cols);

// Quantizes w [rows, cols] (f32). codes: quant_code_bytes; scales, zeros: quant_scale_bytes each
// (zeros unused and may be null when symmetric). Throws g4::Error if the group size does not divide cols.
void quantize_rows(const QuantScheme& s, const float* w, int64_t rows, int64_t cols, uint8_t* codes, void* scales,
                   void* zeros, const std::string& name);

// A quantized tensor with its own storage (on-the-fly quantization, tests).
// Points out->q at the storage in out (codes, scales, zeros) and fills in the geometry of scheme s.
void bind_quant_weight(const QuantScheme& s, int64_t rows, int64_t cols, OwnedQuantWeight* out);
void quantize_tensor(const QuantScheme& s, const float* w, int64_t rows, int64_t cols, OwnedQuantWeight* out,
                     const std::string& name);

// HQQ per-group optimisation (half-quadratic proximal iterations on the zero point, then a least-squares
// scale refit), exposed for tests. Inputs: the group's values and an initial min-max (scale, zero);
// returns the optimised pair in code units of `kind`. Never returns a pair with higher squared error.
void hqq_optimize_group(const float* w, int64_t n, QuantKind kind, float* scale, float* zero);

}  // namespace g4
