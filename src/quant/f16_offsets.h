// Scales and zero points that export exactly: a group `w = (q - z) * s` is `w = s * q_u + b` in the unsigned
// code q_u = q + c of MLX and GGUF (c = 0 for int4, 128 for int8) with the offset b = -s * (z + c). GGUF Q4_1
// stores d = s and m = b as f16, MLX's default export scale and bias as f16. A bf16 scale times a bf16 zero
// point has up to 16 significant bits, f16 holds 11, so an arbitrary pair is rounded on export. The pairs
// found here have s and s * (z + c) exactly representable in f16 (normal or subnormal), so the export
// holds the source's numbers bit for bit. Only the 16-bit scale dtypes (bf16, f16) are searched.
#pragma once

#include "base/dtype.h"
#include "quant/format.h"

namespace g4 {

// True when v is a finite f16 number (its f16 rounding is v itself).
bool f16_exact(double v);

// True when s and s * (z + c) are both f16 numbers (c: 0 for int4, 128 for int8).
bool offset_f16_exact(QuantKind k, float s, float z);

// The value of dtype t (bf16 or f16) one step above (dir = 1) or below (dir = -1) v, itself of dtype t.
float dtype_step(DType t, float v, int dir);

// The value z of dtype t nearest to `target` with lo <= z <= hi and offset_f16_exact(k, s, z), looking at
// most `max_steps` values of t away from target on either side (and at 0, always exact when in range).
// Returns false when there is none.
bool nearest_exact_zero(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, float* z);
// Both sides at once, sharing the work: z[0] as nearest_exact_zero finds it in [lo, target], z[1] in
// [target, hi]; bit i of the result says whether z[i] was found.
int nearest_exact_zeros(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, float z[2]);

}  // namespace g4
