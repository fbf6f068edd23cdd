// Activations rounded to int8 per 32 values for the integer int4 kernels (gemv_q8.cu, gemm_mma.cu).
//
// Nibble k of an int4 code word j (bits 4k..4k+3) holds value 8j + k of its 32-value chunk (quant/format.h:
// low nibble first), so (word & 0x0F0F0F0F) has values 8j + {0, 2, 4, 6} in its bytes and
// ((word >> 4) & 0x0F0F0F0F) values 8j + {1, 3, 5, 7}. The 32 int8 activations of a chunk are written in
// that order, as 8 words A(0) B(0) A(1) B(1) A(2) B(2) A(3) B(3) with A(j) = x[8j + {0, 2, 4, 6}] and
// B(j) = x[8j + {1, 3, 5, 7}], so code word j meets A(j) and B(j) in two 4-byte integer dot products.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace g4::cuda {

__device__ __forceinline__ uint32_t pack_s8x4(int a, int b, int c, int d) {
  return (uint32_t(a) & 0xFFu) | (uint32_t(b) & 0xFFu) << 8 | (uint32_t(c) & 0xFFu) << 16 | uint32_t(d) << 24;
}

// 32 f32 values at src (16-byte aligned) -> words 0-3 in lo, 4-7 in hi (order above) and
// dd = {d, d * sum(q)} with x ~ d q, d = max|x| / 127, q rounded half to even.
__device__ __forceinline__ void quantize_chunk32(const float* __restrict__ src, uint4& lo, uint4& hi, float2& dd) {
  float v[32];
  const float4* s4 = reinterpret_cast<const float4*>(src);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float4 f = s4[j];
    v[4 * j] = f.x, v[4 * j + 1] = f.y, v[4 * j + 2] = f.z, v[4 * j + 3] = f.w;
  }
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(v[j]));
  const float d = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
  int q[32], sum = 0;
#pragma unroll
  for (int j = 0; j < 32; ++j) q[j] = __float2int_rn(v[j] * inv), sum += q[j];
  uint32_t w[8];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    w[2 * j] = pack_s8x4(q[8 * j], q[8 * j + 2], q[8 * j + 4], q[8 * j + 6]);
    w[2 * j + 1] = pack_s8x4(q[8 * j + 1], q[8 * j + 3], q[8 * j + 5], q[8 * j + 7]);
  }
  lo = make_uint4(w[0], w[1], w[2], w[3]);
  hi = make_uint4(w[4], w[5], w[6], w[7]);
  dd = make_float2(d, d * float(sum));
}

}  // namespace g4::cuda
