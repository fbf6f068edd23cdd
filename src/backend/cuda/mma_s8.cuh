// Register-level helpers shared by the integer tensor-core kernels (gemm_mma.cu, gemv_q8.cu, gemv_q8_tc.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace g4::cuda {

// Lane t of each group of 4 holds words 0..3 of chunk 4q + t; returns word t of chunks 4q + 0..3.
// (A 4 x 4 transpose of M[lane][word] in two exchanges: the off-diagonal 2 x 2 blocks between lanes t and
// t ^ 2, then the off-diagonal elements of each block between lanes t and t ^ 1.) Every lane of the warp
// must call it together.
__device__ __forceinline__ uint4 quad_transpose(uint4 w, int t) {
  const bool hi = t & 2, odd = t & 1;
  const uint32_t r0 = __shfl_xor_sync(0xffffffffu, hi ? w.x : w.z, 2);
  const uint32_t r1 = __shfl_xor_sync(0xffffffffu, hi ? w.y : w.w, 2);
  // Columns c = t & 2 and c + 1 of rows (t & 1) and (t & 1) + 2.
  const uint32_t u0 = hi ? r0 : w.x, u1 = hi ? r1 : w.y, u2 = hi ? w.z : r0, u3 = hi ? w.w : r1;
  const uint32_t q0 = __shfl_xor_sync(0xffffffffu, odd ? u0 : u1, 1);
  const uint32_t q1 = __shfl_xor_sync(0xffffffffu, odd ? u2 : u3, 1);
  const uint32_t k0 = odd ? u1 : u0, k1 = odd ? u3 : u2;
  return make_uint4(odd ? q0 : k0, odd ? k0 : q0, odd ? q1 : k1, odd ? k1 : q1);
}

// Word j (0..3, known after unrolling) of a 16-byte load.
__device__ __forceinline__ uint32_t word(const uint4& v, int j) { return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w; }

// float(i) for |i| < 2^22 (every chunk dot product of int4 codes and int8 activations: at most
// 32 * 15 * 128) with an integer add and a float subtract, both full-rate, instead of the quarter-rate
// conversion instruction: 1.5 * 2^23 + i is exact in f32 (its ulp is 1), and so is taking 1.5 * 2^23 away.
// A dp4a chain can start at kFloatBias instead of 0 and save the add (biased_to_float); the mma kernels keep
// zero accumulators (starting their C at the bias made the 8-token GEMV 2% slower on the H200). On sm_90 the
// conversion itself (__int2float_rn) compiles to one I2FP.F32.S32, which the 2-8-token GEMV takes instead
// (gemv_q8_tc.cu: the same exact value, one instruction instead of two).
constexpr int kFloatBias = 0x4B400000;
__device__ __forceinline__ float biased_to_float(int biased) { return __int_as_float(biased) - 12582912.f; }
__device__ __forceinline__ float small_int_to_float(int i) { return biased_to_float(kFloatBias + i); }

}  // namespace g4::cuda
