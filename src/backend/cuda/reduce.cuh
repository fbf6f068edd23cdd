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
template <int kWarps = 0>
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[32];
  v = warp_sum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  const int nw = kWarps > 0 ? kWarps : int(blockDim.x >> 5);
  float t = 0.f;
  for (int i = 0; i < nw; ++i) t += part[i];
  return t;
}
template <int kWarps = 0>
__device__ __forceinline__ float block_max(float v) {
  __shared__ float part[32];
  v = warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  const int nw = kWarps > 0 ? kWarps : int(blockDim.x >> 5);
  float t = -FLT_MAX;
  for (int i = 0; i < nw; ++i) t = fmaxf(t, part[i]);
  return t;
}

}  // namespace g4::cuda
