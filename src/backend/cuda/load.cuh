// Device-side loads and a launch helper shared by the GEMV kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env.h"
#include "backend/cuda/grid.h"
#include "backend/cuda/kernels.h"

namespace g4::cuda {

// Blocks of `threads` threads (and `smem` bytes of dynamic shared memory) that `kernel` keeps resident on
// the whole GPU: the grid size of a one-wave, grid-striding launch. Callers cache it per kernel instantiation.
template <class Kernel>
int64_t resident_blocks(Kernel kernel, int threads, size_t smem = 0) {
  int dev = 0, n_sm = 0, per_sm = 0;
  G4_CUDA(cudaGetDevice(&dev));
  G4_CUDA(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
  G4_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  return int64_t(n_sm) * (per_sm > 1 ? per_sm : 1);
}

// A quantized weight's scale type S (float, __half, __nv_bfloat16) and whether it has zero points, as types.
template <class S, bool kAsym>
struct ScaleLayout {
  using Scale = S;
  static constexpr bool asym = kAsym;
};

// Calls f(ScaleLayout<S, kAsym>{}) for the weight's layout: the one dispatch from a WeightDesc to the quantized
// kernels' templates (the CUDA sources are C++17: a generic lambda reads the types from its argument).
template <class F>
void with_scale_layout(const WeightDesc& w, F&& f) {
  const bool asym = w.zeros != nullptr;
  switch (w.stype) {
    case SType::kF32: asym ? f(ScaleLayout<float, true>{}) : f(ScaleLayout<float, false>{}); break;
    case SType::kF16: asym ? f(ScaleLayout<__half, true>{}) : f(ScaleLayout<__half, false>{}); break;
    case SType::kBF16: asym ? f(ScaleLayout<__nv_bfloat16, true>{}) : f(ScaleLayout<__nv_bfloat16, false>{}); break;
  }
}

// 32-value chunks in a row of an int4 weight (the integer kernels' unit: one group or part of one).
inline int int4_chunks(const WeightDesc& w) { return int(w.cols / 32); }

// A scale or zero point of type S (float, __half or __nv_bfloat16) as f32, through the read-only path.
template <class S>
__device__ __forceinline__ float ld_scale(const void* p, int64_t i) {
  if constexpr (sizeof(S) == 4) return __ldg(static_cast<const float*>(p) + i);
  else if constexpr (std::is_same_v<S, __half>) return __half2float(__ldg(static_cast<const __half*>(p) + i));
  else return __bfloat162float(__ldg(static_cast<const __nv_bfloat16*>(p) + i));
}

// 16 bytes of weights that are read once: not kept in L1.
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// Asks for the 128-byte line at p to be brought into L2 (no register written, no wait).
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

}  // namespace g4::cuda
