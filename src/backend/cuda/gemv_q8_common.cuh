// What the integer GEMV kernels share (gemv_q8.cu: one token and the dp4a fallback of several;
// gemv_q8_tc.cu: 2-8 tokens on the tensor cores; gemv_q8_ring.cu and gemv_q8_bulk.cu: one token through shared
// memory): the block size, the rounded activation's layout, the weights of one launch as segments of row groups,
// a chunk's dp4a dot product, a staged scale, and the entries of the tensor-core, ring and bulk kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/grid.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/mma_s8.cuh"
#include "backend/cuda/q8_act.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda::q8 {

constexpr int kWarps = 8;

inline int n_chunks_padded(const WeightDesc& w) { return x_chunks_padded(w.cols); }
// Per token: 2 slots of 16 bytes per padded chunk, then (after all tokens) a float2 per padded chunk.
inline int64_t xq_slots(const WeightDesc& w) { return int64_t(n_chunks_padded(w)) * 2; }

// Up to kMaxSegs weights sharing x (q/k/v, gate/up) in one launch. Rows are taken R at a time; row
// group g belongs to the first segment whose group_end exceeds it, so the small k/v matrices ride along
// with q instead of filling the GPU on their own.
constexpr int kMaxSegs = 3;
struct Segments {
  int n = 0;
  const void* codes[kMaxSegs] = {};
  const void* scales[kMaxSegs] = {};
  const void* zeros[kMaxSegs] = {};
  float* y[kMaxSegs] = {};
  int64_t rows[kMaxSegs] = {};
  int64_t group_end[kMaxSegs] = {};  // cumulative row groups through segment i
};

template <class T>
__device__ __forceinline__ T pick(int s, const T (&a)[kMaxSegs]) {
  return s == 0 ? a[0] : s == 1 ? a[1] : a[2];  // no dynamic indexing into the parameter block
}

// The segment of row group gi (groups of R rows) and the group's first row in it.
__device__ __forceinline__ int locate_group(const Segments& segs, int64_t gi, int R, int64_t& row0) {
  int s = 0;
  while (s + 1 < segs.n && gi >= pick(s, segs.group_end)) ++s;
  row0 = (gi - (s ? pick(s - 1, segs.group_end) : 0)) * R;
  return s;
}

// A position in a warp's sequence of rounds (the kernels that stream rounds through shared memory, each warp
// taking row groups w, w + warps, ...): row group g (past the last: none left), round k of it.
struct RoundCursor {
  int64_t g;
  int k;
  __device__ void next(int rounds, int64_t warps) {
    if (++k == rounds) k = 0, g += warps;
  }
};

// A warp's sums of its row group g (R rows; KS sums a lane and row, chunk c's in sum (c / 32) % KS), stored by
// lane 0 for the rows the segment has, then zeroed for the next group. Each row's KS butterflies are added in
// order after 0, as the register kernel adds the sums of KS warps splitting K (KS = 1: the butterfly alone, as
// its shapes with K unsplit store it).
template <int R, int KS>
__device__ __forceinline__ void store_group_sums(const Segments& segs, int64_t g, int lane, float (&acc)[R][KS]) {
  int64_t row0;
  const int s = locate_group(segs, g, R, row0);
  const int64_t rows = pick(s, segs.rows);
  float* y = pick(s, segs.y);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v;
    if constexpr (KS == 1) {
      v = warp_sum(acc[r][0]);
    } else {
      v = 0.f;
#pragma unroll
      for (int k = 0; k < KS; ++k) v += warp_sum(acc[r][k]);
    }
    if (lane == 0 && row0 + r < rows) y[row0 + r] = v;
#pragma unroll
    for (int k = 0; k < KS; ++k) acc[r][k] = 0.f;
  }
}

// kFloatBias + the chunk's integer dot product (biased_to_float gives it as a float).
__device__ __forceinline__ int dot_chunk(const uint4& w, const uint4& a, const uint4& b) {
  constexpr uint32_t kLo = 0x0F0F0F0Fu;
  int s = __dp4a(int(w.x & kLo), int(a.x), kFloatBias);
  s = __dp4a(int((w.x >> 4) & kLo), int(a.y), s);
  s = __dp4a(int(w.y & kLo), int(a.z), s);
  s = __dp4a(int((w.y >> 4) & kLo), int(a.w), s);
  s = __dp4a(int(w.z & kLo), int(b.x), s);
  s = __dp4a(int((w.z >> 4) & kLo), int(b.y), s);
  s = __dp4a(int(w.w & kLo), int(b.z), s);
  s = __dp4a(int((w.w >> 4) & kLo), int(b.w), s);
  return s;
}

// A 16-bit scale (f16 or bf16) in shared memory, as f32 (the kernels that stage weights there: gemv_q8_ring.cu,
// gemv_q8_bulk.cu). Shared memory is read with volatile asm, as their waits are issued, so that the compiler
// keeps every read after the wait.
template <class S>
__device__ __forceinline__ float scale_at(uint32_t addr) {
  const uint16_t bits = lds16(addr);
  if constexpr (std::is_same_v<S, __half>) return __half2float(__ushort_as_half(bits));
  else return __uint_as_float(uint32_t(bits) << 16);
}

// The layouts the tuned shapes and the tensor-core kernel are compiled for: g4's int4 (bf16 scales, with or
// without zero points) and a Q4_0 GGUF's (f16 scales, symmetric).
template <class S, bool kAsym>
constexpr bool kTunedLayout = std::is_same_v<S, __nv_bfloat16> || (std::is_same_v<S, __half> && !kAsym);

// Segments of `n` weights (same cols, group size, scale type and zero-point presence) with R rows a group.
inline Segments make_segments(const WeightDesc* ws, float* const* ys, int n, int R) {
  Segments sg;
  sg.n = n;
  int64_t groups = 0;
  for (int i = 0; i < n; ++i) {
    sg.codes[i] = ws[i].codes, sg.scales[i] = ws[i].scales, sg.zeros[i] = ws[i].zeros, sg.y[i] = ys[i];
    sg.rows[i] = ws[i].rows;
    groups += (ws[i].rows + R - 1) / R;
    sg.group_end[i] = groups;
  }
  return sg;
}
// Launches kKernel(segments, chunks a row, xq, xd), a one-token kernel whose warps take the row groups (R rows)
// w, w + warps, w + 2 warps, ... with `smem` bytes of dynamic shared memory a block (gemv_q8_ring.cu,
// gemv_q8_bulk.cu): as many warps as take the same number of groups (to within one), one wave.
template <auto kKernel, int R>
void launch_warp_groups(size_t smem, const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd,
                        cudaStream_t s) {
  static const int64_t resident = [&] {
    G4_CUDA(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    return resident_blocks(kKernel, kWarps * 32, smem);
  }();
  const Segments sg = make_segments(ws, ys, n, R);
  const int64_t warps = stride_blocks_for(resident * kWarps, sg.group_end[n - 1], /*even=*/true);
  launch(kKernel, unsigned((warps + kWarps - 1) / kWarps), kWarps * 32, smem, s, sg, int(ws[0].cols / 32), xq, xd);
}

// Whether weights can take the tensor-core kernel (gemv_q8_tc.cu): a scale per 32-value chunk, rows of a
// multiple of 4 chunks, 8-byte aligned scales and zero points, 32-bit chunk offsets.
bool tc_layout_ok(const WeightDesc* ws, int n);

// The tensor-core kernel for T (2-8) tokens over the segments of ws (S, kAsym: a tuned layout), with KS
// (1 or 4) the one-token shape's warps splitting K, so that each token's sums come in its one-token order.
template <class S, bool kAsym>
void launch_tc(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T, int KS,
               cudaStream_t s);

// The one-token kernel streaming its weights through a shared-memory ring (gemv_q8_ring.cu) with R rows a warp
// and ST buffers a warp, on the layouts tc_layout_ok accepts (S, kAsym: a tuned layout); its sums equal the
// one-token kernel's with K unsplit; a shape not compiled is an error.
template <class S, bool kAsym>
void launch_ring(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int R, int ST,
                 cudaStream_t s);

// The one-token kernel streaming its weights into shared memory by bulk copies (gemv_q8_bulk.cu) with R rows a
// warp and ST buffers a warp; its sums equal the one-token kernel's with K split over KS warps (1 or 4) bit for
// bit. bulk_layout_ok: the layouts it takes (tc_layout_ok's, with rows of a multiple of 8 chunks and 16-byte
// aligned codes, scales and zero points) on a GPU with the tensor memory accelerator (TMA: compute capability 9.0). A shape not
// compiled is an error.
bool bulk_layout_ok(const WeightDesc* ws, int n);
template <class S, bool kAsym>
void launch_bulk(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int R, int ST, int KS,
                 cudaStream_t s);

}  // namespace g4::cuda::q8
