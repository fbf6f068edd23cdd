// ggml's tensor element types as GGUF files store them (block geometry per type), a plain reference
// dequantizer per supported block format, and the lossless conversion of a GGUF tensor into the
// backend-neutral QuantWeight of quant/format.h. Block layouts are in spec section 5.4.
// Invariant: callers hand in exactly rows * row_bytes(type, cols) bytes; geometry is validated here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quant/format.h"

namespace g4 {

// Numbering fixed by the GGUF format (ggml's enum); gaps are types that were removed from ggml.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kIQ2_XXS = 16, kIQ2_XS = 17, kIQ3_XXS = 18, kIQ1_S = 19, kIQ4_NL = 20, kIQ3_S = 21, kIQ2_S = 22,
  kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kIQ1_M = 29, kBF16 = 30,
  kTQ1_0 = 34, kTQ2_0 = 35, kMXFP4 = 39,
};

struct GgmlTypeInfo {
  const char* name;      // "Q4_K"; nullptr for numbers that are not a known type
  int64_t block_elems;   // elements per block (1 for plain types)
  int64_t block_bytes;   // bytes per block
};

// Geometry of a type number read from a file; name == nullptr when the number is unknown.
GgmlTypeInfo ggml_type_info(uint32_t type);
std::string ggml_type_name(uint32_t type);  // "Q4_K", or "type 77" when unknown

// True for the block formats this file can dequantize and convert: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q6_K. llama.cpp's quantizer falls back from Q4_K to Q5_0 and from Q5_K to Q5_1 for rows that are not
// a multiple of 256 (and from Q6_K to Q8_0); Q4_1 is the legacy asymmetric 4-bit format.
bool gguf_quant_supported(GgmlType t);

// Block byte sizes (spec 5.4).
constexpr int64_t kQ8_0Bytes = 34, kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24,
                  kQ4_KBytes = 144, kQ6_KBytes = 210;

// The plain reference: dequantizes one row of `cols` elements stored in `type` at `row` into dst.
// Follows the block formulas of spec 5.4 operation by operation (d*sc first, then *q, then -dmin*m;
// Q4_1 / Q5_1: q*d, then +m), which is also the order llama.cpp's scalar dequantizers use, so results
// are bit-identical to them.
// Supports F32, F16, BF16 and the quantized formats above. cols must be a multiple of the block size.
void dequantize_gguf_row(GgmlType type, const uint8_t* row, int64_t cols, float* dst);

// A QuantWeight together with the buffers it points to (the codes are reordered, so they are copied).

// Converts a quantized GGUF tensor [rows, cols] (cols = ggml ne0) to the format.h form:
//   Q8_0 -> int8  g32 symmetric, F16 scales (the block's d, bit for bit)         : exact
//   Q4_0 -> int4  g32 symmetric, F16 scales (nibbles reordered to format.h order) : exact
//   Q5_0 -> int8  g32 symmetric, F16 scales (the block's d), codes q-16           : exact
//   Q4_1 -> int4  g32 asymmetric, F32 scales d, F32 zeros -m/d (nibbles reordered) : within f32 rounding
//   Q5_1 -> int8  g32 asymmetric, F32 scales d, F32 zeros -m/d, codes q (0..31)   : within f32 rounding
//   Q6_K -> int8  g16 symmetric, F32 scales d*sc (exact in f32), codes q-32      : exact
//   Q4_K -> int4  g32 asymmetric, F32 scales d*sc, F32 zeros dmin*m/(d*sc)        : within f32 rounding
// `name` is used in error messages. Throws g4::Error for unsupported types or bad geometry.
std::unique_ptr<OwnedQuantWeight> convert_gguf_quant(GgmlType type, const uint8_t* data, int64_t rows,
                                                     int64_t cols, const std::string& name);

}  // namespace g4
