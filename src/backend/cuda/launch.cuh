// Kernel launches with programmatic dependent launch (PDL, compute capability 9.0+).
//
// A decode step is ~800 small kernels in a row; between two of them the GPU normally drains the first
// grid completely, then launches the second and ramps its memory traffic up again. With PDL the next
// kernel is launched while the previous one is still running: its blocks take whatever SM room is free,
// may do work that does not depend on the previous kernel (a GEMV prefetches its weights into L2), and
// then wait in grid_dependency_sync() until the previous grid has finished and its writes are visible.
//
// The rule that keeps this correct: every kernel in src/backend/cuda calls grid_dependency_sync() before
// it reads anything an earlier kernel wrote and before it writes anything (an earlier kernel may still be
// reading it), and before any early return. Before it a kernel may only issue L2 prefetches (prefetch_l2:
// nothing is read into registers, and L2 is where writes land), read weights (written by the load, never
// by a kernel) into its own registers or shared memory, and read what was written before the kernel's
// predecessor began: while a kernel runs before its wait, its predecessor has passed its own wait (each
// kernel lets its dependents launch only after it), so every kernel before that one is complete (decode
// attention may copy the KV cache rows of positions before the step's this way: this step's kernels write
// only the slots of its own positions). Since each kernel waits for its
// predecessor to complete, and that one waited for its own predecessor, "complete" is transitive along the
// stream. Launched without the attribute (older GPUs, G4_CUDA_PDL=0) the wait is a no-op and launches are
// ordinary.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env.h"

namespace g4::cuda {

// Waits for the previous kernel in the stream (complete, writes visible), then lets the next kernel's
// blocks be scheduled as SM room frees up.
__device__ __forceinline__ void grid_dependency_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The same, for a kernel that rounds the input of the integer GEMV after it (the residual norm pair, the
// GELU): with next_first that GEMV may launch at this kernel's start instead of after its wait, so that its
// blocks take SM room as the GEMV before this kernel drains and begin copying their first weights. This
// breaks the rule above for that one successor (its predecessor's predecessor may still run while it runs
// before its wait), which is safe because a GEMV reads nothing but weights before its wait.
__device__ __forceinline__ void grid_dependency_sync(bool next_first) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (next_first) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  grid_dependency_sync();
}

// Whether those kernels pass next_first: G4_CUDA_EARLY_GEMV=1, off (with the register GEMV: -1.2% a token on
// the H100, thirty-first session, docs/PERF.md; for the bulk-copy GEMV, whose early rounds land in shared
// memory and stay there, not yet measured).
inline bool early_gemv_launch() {
  static const bool on = env_switch("G4_CUDA_EARLY_GEMV", false);
  return on;
}

// True when kernels are launched with PDL: a GPU of compute capability 9.0 or later, and G4_CUDA_PDL is
// not "0" (for comparisons).
inline bool pdl_enabled() {
  static const bool on = [] {
    if (!env_switch("G4_CUDA_PDL", true)) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major >= 9;
  }();
  return on;
}

// Kernels launched so far through launch() (the host's count): a value that holds between two host points
// means no kernel ran in between (CudaBackend's pending int8 input, cuda_backend.h).
inline uint64_t launch_count = 0;

// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute where enabled; checks the launch.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  G4_CUDA(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
  ++launch_count;
}

}  // namespace g4::cuda
