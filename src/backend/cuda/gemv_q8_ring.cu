// The one-token integer GEMV with its weights streamed through shared memory. gemv_q8.cu's kernel loads a
// round of weights into registers and waits for it before its arithmetic, so a warp has one round in flight at
// a time and its registers (117-128 for 4 rows a warp) hold an SM to two blocks: about 64 KB in flight an SM
// at best, which the H100 turns into 92% of its copy bandwidth inside a decode step but the H200, whose memory
// is 40% faster, into 79% (docs/PERF.md, forty-fourth session). Here each warp copies its rounds with cp.async
// into a ring of ST buffers of its own, ST - 1 rounds ahead of the one it multiplies, across its row groups
// (the next group's first rounds are in flight while the current one finishes), and its first ST - 1 rounds
// before the wait for the previous kernel (weights are never written by a kernel: launch.cuh).
// Measured on the H100 (docs/PERF.md, forty-fifth session): 5-30% slower a launch than the register kernel,
// deeper rings slower still, -12% a decode token; so it is off (G4_CUDA_Q8_RING) until the H200 says otherwise.
//
// The sums are the one-token kernel's with K unsplit (KS = 1), in its order: lane l takes chunks l, l + 32,
// l + 64, ... of each row, one fmaf each, then the warp's butterfly. So its outputs equal gemv_q8.cu's R x U x 1
// shapes bit for bit, and the tensor-core kernel of 2-8 tokens (which repeats that order) equals it too.
// Layouts: those of the tensor-core kernel (tc_layout_ok: a scale per 32-value chunk, rows of a multiple of 4
// chunks, 8-byte aligned scales and zero points), with 16-bit scales (kTunedLayout).
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_q8_common.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda::q8 {

namespace {

// One round of a warp's ring: chunk c0 + lane of each of its R rows (16 bytes of codes a lane and row, at
// (r 32 + lane) 16), then the 32 scales of chunks c0 .. c0 + 31 of each row (2 bytes each, at r 64), then as
// many zero points.
template <int R, bool kAsym>
struct RingStage {
  static constexpr int kCodes = R * 32 * 16;
  static constexpr int kScales = R * 32 * 2;
  static constexpr int kBytes = kCodes + kScales * (kAsym ? 2 : 1);
};

// 8 bytes from global src to shared dst (through L1), or 8 zero bytes when !valid (src not read, but valid).
__device__ __forceinline__ void cp_async8_or_zero(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(dst), "l"(src), "r"(valid ? 8 : 0));
}

// Warp w of the grid (gridDim.x kWarps warps) takes row groups w, w + warps, w + 2 warps, ... of the
// segments (groups of R rows; rows past a segment's end are clamped to its last row, loaded and not stored),
// each in ceil(nch / 32) rounds of 32 chunks a row.
template <class S, bool kAsym, int R, int ST>
__global__ void __launch_bounds__(kWarps * 32) gemv_q8_ring_kernel(Segments segs, int nch, const uint4* __restrict__ xq,
                                                                   const float2* __restrict__ xd) {
  static_assert(sizeof(S) == 2 && ST >= 2, "16-bit scales, two buffers at least");
  using Stage = RingStage<R, kAsym>;
  extern __shared__ __align__(16) unsigned char ring_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const uint32_t ring = smem_addr(ring_smem) + uint32_t(warp * ST * Stage::kBytes);
  const int64_t n_groups = segs.group_end[segs.n - 1];
  const int64_t warps = int64_t(gridDim.x) * kWarps;
  const int rounds = (nch + 31) / 32;

  // Round (g, k) into buffer b; one commit group a call, empty past the last group (so that the waits below
  // count groups alike at the end).
  auto issue = [&](const RoundCursor& at, int b) {
    if (at.g < n_groups) {
      int64_t row0;
      const int s = locate_group(segs, at.g, R, row0);
      const int64_t rows = pick(s, segs.rows);
      const uint4* codes = static_cast<const uint4*>(pick(s, segs.codes));
      const auto* scales = static_cast<const unsigned char*>(pick(s, segs.scales));
      const auto* zeros = static_cast<const unsigned char*>(pick(s, segs.zeros));
      const uint32_t dst = ring + uint32_t(b * Stage::kBytes);
      const int c = at.k * 32 + lane;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t row = min(row0 + r, rows - 1);
        cp_async16_or_zero(dst + (r * 32 + lane) * 16, codes + row * nch + min(c, nch - 1), c < nch);
      }
      // The scales (and zero points) of the round: 8 bytes (4 chunks) a lane, lanes 8r .. 8r + 7 for row r
      // while R <= 4, more pieces a lane beyond.
#pragma unroll
      for (int p = lane; p < R * 8; p += 32) {
        const int r = p >> 3, c4 = at.k * 32 + (p & 7) * 4;
        const int64_t at_byte = (min(row0 + r, rows - 1) * nch + min(c4, nch - 4)) * 2;
        cp_async8_or_zero(dst + Stage::kCodes + p * 8, scales + at_byte, c4 < nch);
        if constexpr (kAsym) cp_async8_or_zero(dst + Stage::kCodes + Stage::kScales + p * 8, zeros + at_byte, c4 < nch);
      }
    }
    cp_async_commit();
  };

  RoundCursor in{int64_t(blockIdx.x) * kWarps + warp, 0};  // the next round to issue
  RoundCursor at = in;                                      // the round to multiply
#pragma unroll
  for (int b = 0; b < ST - 1; ++b, in.next(rounds, warps)) issue(in, b);
  grid_dependency_sync();

  float acc[R][1];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r][0] = 0.f;
  for (int b = 0; at.g < n_groups; b = b + 1 == ST ? 0 : b + 1) {
    cp_async_wait<ST - 2>();
    __syncwarp();  // every lane's copies of round `at` landed; every lane is done with the buffer issue() refills
    const uint32_t buf = ring + uint32_t(b * Stage::kBytes);
    const int c = at.k * 32 + lane;
    if (c < nch) {
      const uint4* xb = xq + (c >> 5) * 64 + (c & 31);
      const uint4 xa = __ldg(xb), xb2 = __ldg(xb + 32);
      const float2 dx = __ldg(xd + c);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint4 w = lds128(buf + (r * 32 + lane) * 16);
        const float sc = scale_at<S>(buf + Stage::kCodes + (r * 32 + lane) * 2);
        const float zp = kAsym ? scale_at<S>(buf + Stage::kCodes + Stage::kScales + (r * 32 + lane) * 2) : 8.f;
        const float dot = biased_to_float(dot_chunk(w, xa, xb2));
        acc[r][0] = fmaf(sc, fmaf(dx.x, dot, -zp * dx.y), acc[r][0]);
      }
    }
    issue(in, b == 0 ? ST - 1 : b - 1);
    in.next(rounds, warps);
    if (at.k == rounds - 1) store_group_sums(segs, at.g, lane, acc);  // the row group's last round
    at.next(rounds, warps);
  }
  cp_async_wait<0>();  // (the empty groups past the end)
}

template <class S, bool kAsym, int R, int ST>
void launch_ring_shape(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, cudaStream_t s) {
  launch_warp_groups<gemv_q8_ring_kernel<S, kAsym, R, ST>, R>(size_t(kWarps) * ST * RingStage<R, kAsym>::kBytes, ws, ys,
                                                              n, xq, xd, s);
}

}  // namespace

template <class S, bool kAsym>
void launch_ring(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int R, int ST,
                 cudaStream_t s) {
  if (R == 4 && ST == 4) return launch_ring_shape<S, kAsym, 4, 4>(ws, ys, n, xq, xd, s);
  if (R == 4 && ST == 3) return launch_ring_shape<S, kAsym, 4, 3>(ws, ys, n, xq, xd, s);
  if (R == 4 && ST == 6) return launch_ring_shape<S, kAsym, 4, 6>(ws, ys, n, xq, xd, s);
  if (R == 2 && ST == 8) return launch_ring_shape<S, kAsym, 2, 8>(ws, ys, n, xq, xd, s);
  if (R == 8 && ST == 3) return launch_ring_shape<S, kAsym, 8, 3>(ws, ys, n, xq, xd, s);
  G4_CHECK(false, "gemv_q8_ring: " + std::to_string(R) + " rows a warp with " + std::to_string(ST) +
                      " buffers is not compiled (4 x 3, 4 x 4, 4 x 6, 2 x 8, 8 x 3)");
}

// The tuned layouts (kTunedLayout): g4's int4 with and without zero points, and Q4_0's.
template void launch_ring<__nv_bfloat16, true>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                               cudaStream_t);
template void launch_ring<__nv_bfloat16, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int,
                                                int, cudaStream_t);
template void launch_ring<__half, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                         cudaStream_t);

}  // namespace g4::cuda::q8
