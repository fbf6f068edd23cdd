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

// The x layout of the integer GEMV (gemv_q8.cu): per token, x_chunks_padded(K) chunks (K / 32 rounded up to
// whole blocks of 32 chunks, the padding zero), two 16-byte slots each, 32 slots apart (x_slot: words 0-3,
// then x_slot + 32: words 4-7); after all tokens' words, one {d, d * sum(q)} per padded chunk.
__host__ __device__ inline int x_chunks_padded(int64_t cols) { return int((cols / 32 + 31) / 32 * 32); }
__device__ __forceinline__ uint4* x_slot(uint4* xq, int nch_pad, int64_t t, int c) {
  return xq + t * nch_pad * 2 + (c >> 5) * 64 + (c & 31);
}
// The {d, d * sum(q)} pairs after the words of `rows` tokens, one per padded chunk (token t's chunk c at
// t * nch_pad + c).
__host__ __device__ inline float2* x_scales(uint4* xq, int nch_pad, int64_t rows) {
  return reinterpret_cast<float2*>(xq + rows * nch_pad * 2);
}
// A padding chunk of token t (c past K / 32): zero words and scales.
__device__ __forceinline__ void zero_chunk(uint4* xq, float2* xd, int nch_pad, int64_t t, int c) {
  uint4* slot = x_slot(xq, nch_pad, t, c);
  slot[0] = slot[32] = make_uint4(0, 0, 0, 0);
  xd[t * nch_pad + c] = make_float2(0.f, 0.f);
}

// A chunk's scale d = max|x| / 127 and the factor each value is rounded with (q = x * inv, half to even;
// 0 for an all-zero chunk): the one rule of every rounding below, which the GEMV's and the fused kernels'
// copies must share byte for byte.
struct ChunkScale {
  float d, inv;
};
__device__ __forceinline__ ChunkScale chunk_scale(float amax) { return {amax / 127.f, amax > 0.f ? 127.f / amax : 0.f}; }

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
  const auto [d, inv] = chunk_scale(amax);
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

// The same rounding by 8 lanes of a warp that hold a chunk's 32 values as one float4 each (lane l & 7 holds
// values 4 (l & 7) .. + 3; every lane of the warp calls it, `live` false where its group holds no chunk):
// the chunk's words go to slot (slot[0] words 0-3, slot[32] words 4-7, as quantize_chunk32 and the x layout
// of gemv_q8.cu place them) and its {d, d * sum(q)} to *dd. Bit for bit quantize_chunk32's result: the
// maximum and the integer sum do not depend on the order, and each value rounds alone.
__device__ __forceinline__ void quantize_chunk_lanes(float4 v, bool live, uint4* slot, float2* dd) {
  const int l = threadIdx.x & 7;
  if (!live) v = make_float4(0.f, 0.f, 0.f, 0.f);
  float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 4));
  const auto [d, inv] = chunk_scale(amax);
  const int q0 = __float2int_rn(v.x * inv), q1 = __float2int_rn(v.y * inv), q2 = __float2int_rn(v.z * inv),
            q3 = __float2int_rn(v.w * inv);
  // Lane pair (2j, 2j + 1) holds values 8j .. 8j + 7: the even lane writes A(j) = its q0, q2 and the odd
  // lane's q0, q2; the odd lane B(j) = the even lane's q1, q3 and its own. Word l of the chunk either way.
  const bool odd = l & 1;
  const uint32_t give = odd ? (uint32_t(q0) & 0xFFu) | (uint32_t(q2) & 0xFFu) << 8
                            : (uint32_t(q1) & 0xFFu) | (uint32_t(q3) & 0xFFu) << 8;
  const uint32_t got = __shfl_xor_sync(0xffffffffu, give, 1);
  const uint32_t word = odd ? got | pack_s8x4(0, 0, q1, q3) : pack_s8x4(q0, q2, 0, 0) | got << 16;
  int sum = q0 + q1 + q2 + q3;
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  sum += __shfl_xor_sync(0xffffffffu, sum, 4);
  if (!live) return;
  reinterpret_cast<uint32_t*>(slot + (l >> 2) * 32)[l & 3] = word;
  if (l == 0) *dd = make_float2(d, d * float(sum));
}

// The same rounding by a whole warp holding a chunk's 32 values one a lane (lane l: value l; every lane
// calls it): lanes 0-7 write word l (values 8 (l >> 1) + (l & 1) + {0, 2, 4, 6}, gathered by shuffles) to
// the slot, lane 0 the {d, d * sum(q)}. Bit for bit quantize_chunk32's result, as above.
__device__ __forceinline__ void quantize_chunk_warp(float v, uint4* slot, float2* dd) {
  const int l = threadIdx.x & 31;
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const auto [d, inv] = chunk_scale(amax);
  const int q = __float2int_rn(v * inv);
  int sum = q;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const int base = 8 * ((l & 7) >> 1) + (l & 1);
  const int b0 = __shfl_sync(0xffffffffu, q, base), b1 = __shfl_sync(0xffffffffu, q, base + 2),
            b2 = __shfl_sync(0xffffffffu, q, base + 4), b3 = __shfl_sync(0xffffffffu, q, base + 6);
  if (l < 8) reinterpret_cast<uint32_t*>(slot + (l >> 2) * 32)[l & 3] = pack_s8x4(b0, b1, b2, b3);
  if (l == 0) *dd = make_float2(d, d * float(sum));
}

}  // namespace g4::cuda
