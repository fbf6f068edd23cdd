// Shared-memory staging helpers shared by the tensor-core kernels (gemv_q8_tc.cu, attn_decode_tc.cu,
// attn_prefill.cu) and the one-token GEMVs through shared memory (gemv_q8_ring.cu, gemv_q8_bulk.cu): the shared
// address of a pointer, cp.async copies from global memory with their commit groups, ldmatrix, and (compute
// capability 9.0) bulk copies that complete on an mbarrier.
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

// --- Bulk copies (the tensor memory accelerator, TMA, of compute capability 9.0) and the mbarriers they
// complete on ---
// One thread issues a copy of up to ~1 MB (16-byte aligned ends, a multiple of 16 bytes); the barrier's phase
// completes when its expected arrivals have arrived and the bytes announced with mbar_arrive_expect_tx have
// landed. Waiting on parity p returns once the phase of parity p is complete (a barrier's first phase is 0).
// On older GPUs these compile to nothing: callers check the GPU on the host first (gemv_q8_bulk.cu's
// bulk_layout_ok).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define G4_BULK_COPY_ARCH 1
#endif

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t arrivals) {
#ifdef G4_BULK_COPY_ARCH
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(arrivals) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");  // visible to the TMA
#endif
}
// One arrival that also announces `bytes` more to land before the phase completes.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#ifdef G4_BULK_COPY_ARCH
  asm volatile("{\n .reg .b64 state;\n mbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}" ::"r"(bar),
               "r"(bytes)
               : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#ifdef G4_BULK_COPY_ARCH
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred ready;\n mbarrier.try_wait.parity.shared::cta.b64 ready, [%1], %2;\n selp.u32 %0, 1, 0, ready;\n}"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
#endif
}
// `bytes` from global src to shared dst by the TMA, counted on barrier bar.
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#ifdef G4_BULK_COPY_ARCH
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#endif
}
// Orders this thread's (and, after a __syncwarp or barrier, its peers') earlier shared-memory accesses
// before the TMA's later writes to the same bytes (a buffer refilled after it was read).
__device__ __forceinline__ void fence_async_shared() {
#ifdef G4_BULK_COPY_ARCH
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

}  // namespace g4::cuda
