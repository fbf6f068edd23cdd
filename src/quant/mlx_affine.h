// MLX's affine quantization as mlx-lm stores it (mlx/ops.cpp affine_quantize / pack_and_quantize):
// a quantized W [rows, cols] with `bits` bits and groups of `group_size` consecutive elements of a row is
//   NAME.weight  U32    [rows, cols * bits / 32]  packed unsigned codes q in 0 .. 2^bits - 1
//   NAME.scales  float  [rows, cols / group_size]
//   NAME.biases  float  [rows, cols / group_size]   (same dtype as scales)
// and element (r, j) is w = scales[r, j / gs] * q[r, j] + biases[r, j / gs]. Packing (bits 4 or 8, the two
// g4 uses): element j of a row goes into word j / (32 / bits) at bit offset (j % (32 / bits)) * bits.
// MLX accepts group sizes 32, 64, 128 and bits 2, 3, 4, 5, 6, 8; g4 reads and writes 4 and 8.
//
// g4 int4 codes (0..15) are MLX's 4-bit codes as they are; g4 int8 codes (-128..127) are MLX's 8-bit
// codes minus 128. So w = (q - z) * s becomes scale = s, bias = -s * z (int4) and bias = -s * (z + 128) (int8).
#pragma once

#include <cstdint>

#include "quant/format.h"

namespace g4 {

inline bool mlx_group_size_supported(int64_t gs) { return gs == 32 || gs == 64 || gs == 128; }
inline int mlx_bits(QuantKind k) { return k == QuantKind::kInt4 ? 4 : 8; }
// The offset between g4's code and MLX's unsigned code: q_mlx = q_g4 + offset.
inline int mlx_code_offset(QuantKind k) { return k == QuantKind::kInt4 ? 0 : 128; }

// Packs row r of q into words[cols * bits / 32] (MLX unsigned codes).
void mlx_pack_row(const QuantWeight& q, int64_t r, uint32_t* words);

// Unpacks `cols` MLX codes of `bits` (4 or 8) bits from words into unsigned codes out[cols].
void mlx_unpack_row(int bits, const uint32_t* words, int64_t cols, uint8_t* out);

}  // namespace g4
