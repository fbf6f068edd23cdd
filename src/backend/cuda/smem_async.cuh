// Shared-memory staging helpers shared by the tensor-core kernels (gemv_q8_tc.cu, attn_decode_tc.cu,
// attn_prefill.cu): the shared address of a pointer, cp.async copies from global memory with their commit
// groups, ldmatrix.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace g4::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// N bytes from global src to shared dst, asynchronously (16: through L2 only; 8: through L1 too).
template <int N>
__device__ __forceinline__ void cp_async(uint32_t dst, const void* src) {
  static_assert(N == 8 || N == 16, "cp.async of 8 or 16 bytes");
  if constexpr (N == 16) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
  else asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(src));
}
// 16 bytes through L1 too (data other rounds read again, such as a GEMV's activations).
__device__ __forceinline__ void cp_async_ca16(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}
// 16 bytes as cp_async<16>, or 16 zero bytes when !valid (src is then not read, but must be a valid address).
__device__ __forceinline__ void cp_async16_or_zero(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
// Waits until at most N of this thread's commit groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N));
}

// Four 8 x 8 matrices of 16-bit values; lanes 8j .. 8j + 7 give the row addresses of matrix j, and lane l
// receives row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1 of each (kTrans: column l / 4, rows 2 (l % 4)
// and 2 (l % 4) + 1), as words x, y, z, w.
template <bool kTrans = false>
__device__ __forceinline__ uint4 ldmatrix_x4(uint32_t addr) {
  uint4 r;
  if constexpr (kTrans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "r"(addr));
  return r;
}

__device__ __forceinline__ uint16_t lds16(uint32_t addr) {
  uint16_t r;
  asm volatile("ld.shared.u16 %0, [%1];" : "=h"(r) : "r"(addr));
  return r;
}

__device__ __forceinline__ uint2 lds64(uint32_t addr) {
  uint2 r;
  asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "r"(addr));
  return r;
}

__device__ __forceinline__ uint4 lds128(uint32_t addr) {
  uint4 r;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "r"(addr));
  return r;
}

}  // namespace g4::cuda
