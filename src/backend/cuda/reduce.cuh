// Sums and maxima across a warp and across a block, in one fixed order (so a kernel's result does not
// depend on timing).
#pragma once

#include <cfloat>
#include <cuda_runtime.h>

namespace g4::cuda {

// Every lane gets the sum (max) of the warp's 32 values: a butterfly of xor shuffles, offsets 16 .. 1.
// Every lane of the warp must call it together.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread gets the sum (max) of the block's values: each warp's butterfly, then the warps' results in
// warp order from 0 (-FLT_MAX), through 32 floats of shared memory (one array per function and kernel); the
// barrier before writing them lets calls follow each other. kWarps: the block's warps when known at compile
// time (0: blockDim.x / 32). Every thread of the block must call it together.
struct SumOp {
  static constexpr float kInit = 0.f;
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  static constexpr float kInit = -FLT_MAX;
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
template <int kWarps, class Op>
__device__ __forceinline__ float block_reduce(float warp_result) {
  __shared__ float part[32];
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = warp_result;
  __syncthreads();
  const int nw = kWarps > 0 ? kWarps : int(blockDim.x >> 5);
  float t = Op::kInit;
  for (int i = 0; i < nw; ++i) t = Op()(t, part[i]);
  return t;
}
template <int kWarps = 0>
__device__ __forceinline__ float block_sum(float v) { return block_reduce<kWarps, SumOp>(warp_sum(v)); }
template <int kWarps = 0>
__device__ __forceinline__ float block_max(float v) { return block_reduce<kWarps, MaxOp>(warp_max(v)); }

}  // namespace g4::cuda
