// The one-token integer GEMV with its weights brought into shared memory by the tensor memory accelerator (TMA
// bulk copies, compute capability 9.0). gemv_q8.cu's kernel holds a round of weights in registers, so an SM
// keeps about 64 KB in flight; the H100 turns that into 92% of its copy bandwidth inside a decode step, the
// H200 (40% faster memory) into 79% (docs/PERF.md, forty-fourth session). gemv_q8_ring.cu stages rounds in
// shared memory with 16-byte cp.async copies, one a lane and row (slower on the H100: its per-round work cost
// more than the bytes in flight gained). Here one lane of each warp issues a round as a few bulk copies (per row: its codes,
// scales and zero points for 128 chunks, 2 KB + 256 B + 256 B), ST - 1 rounds ahead of the one the warp
// multiplies, across its row groups, and the first of them before the wait for the previous kernel (weights are
// never written by a kernel: launch.cuh); the round's mbarrier says when its bytes have landed. So an SM keeps
// 100-150 KB in flight at the cost of a few instructions a round.
//
// Sums: lane l takes chunks l, l + 32, l + 64, ... of each row, one fmaf each, as the register kernel does.
// With KS = 1 each row's lane sums then meet in the warp's butterfly: the register kernel's R x U x 1 shapes
// bit for bit. With KS = 4 a lane keeps four sums, chunk c going to sum (c / 32) % 4 (a round of 128 chunks
// starts at a multiple of 128, so its u-th 32 chunks go to sum u), and the four butterflies' results are
// added in order after 0: the register kernel's x 4 shapes (4 warps splitting K) bit for bit, so the
// tensor-core kernel of 2-8 tokens, which repeats those orders, equals it too (a verify = one-token steps).
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_q8_common.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda::q8 {

namespace {

// One round of a warp's ring: 128 chunks of each of its R rows, codes first (row r's at r 2048, 16 bytes a
// chunk), then their scales (row r's at r 256, 2 bytes a chunk), then as many zero points.
constexpr int kBulkChunks = 128;
template <int R, bool kAsym>
struct BulkStage {
  static constexpr int kCodes = R * kBulkChunks * 16;
  static constexpr int kScales = R * kBulkChunks * 2;
  static constexpr int kBytes = kCodes + kScales * (kAsym ? 2 : 1);
  // A block's shared memory: each warp's ST buffers, then its ST mbarriers (8 bytes each).
  static constexpr size_t smem(int ST) { return size_t(kWarps) * ST * (kBytes + 8); }
};

// Warp w of the grid (gridDim.x kWarps warps) takes row groups w, w + warps, w + 2 warps, ... of the
// segments (groups of R rows; rows past a segment's end are clamped to its last row, loaded and not stored),
// each in ceil(nch / 128) rounds.
template <class S, bool kAsym, int R, int ST, int KS>
__global__ void __launch_bounds__(kWarps * 32) gemv_q8_bulk_kernel(Segments segs, int nch, const uint4* __restrict__ xq,
                                                                   const float2* __restrict__ xd) {
  static_assert(sizeof(S) == 2 && ST >= 2 && (KS == 1 || KS == 4), "16-bit scales, two buffers at least, KS 1 or 4");
  using Stage = BulkStage<R, kAsym>;
  extern __shared__ __align__(128) unsigned char bulk_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const uint32_t ring = smem_addr(bulk_smem) + uint32_t(warp * ST * Stage::kBytes);
  const uint32_t bars = smem_addr(bulk_smem) + uint32_t(kWarps * ST * Stage::kBytes + warp * ST * 8);
  const int64_t n_groups = segs.group_end[segs.n - 1];
  const int64_t warps = int64_t(gridDim.x) * kWarps;
  const int rounds = (nch + kBulkChunks - 1) / kBulkChunks;

  // Round (g, k) into buffer b (lane 0 only): the bytes announced on the buffer's barrier, then the copies.
  // Nothing past the last group (its buffer's barrier is then never waited on).
  auto issue = [&](const RoundCursor& at, int b) {
    if (at.g >= n_groups) return;
    int64_t row0;
    const int s = locate_group(segs, at.g, R, row0);
    const int64_t rows = pick(s, segs.rows);
    const auto* codes = static_cast<const unsigned char*>(pick(s, segs.codes));
    const auto* scales = static_cast<const unsigned char*>(pick(s, segs.scales));
    const auto* zeros = static_cast<const unsigned char*>(pick(s, segs.zeros));
    const int c0 = at.k * kBulkChunks, n = min(kBulkChunks, nch - c0);  // n: a multiple of 8 (bulk_layout_ok)
    const uint32_t dst = ring + uint32_t(b * Stage::kBytes), bar = bars + uint32_t(b * 8);
    mbar_arrive_expect_tx(bar, uint32_t(R * n * (16 + 2 * (kAsym ? 2 : 1))));
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t chunk = min(row0 + r, rows - 1) * nch + c0;
      bulk_copy(dst + uint32_t(r * kBulkChunks * 16), codes + chunk * 16, uint32_t(n * 16), bar);
      bulk_copy(dst + uint32_t(Stage::kCodes + r * kBulkChunks * 2), scales + chunk * 2, uint32_t(n * 2), bar);
      if constexpr (kAsym)
        bulk_copy(dst + uint32_t(Stage::kCodes + Stage::kScales + r * kBulkChunks * 2), zeros + chunk * 2, uint32_t(n * 2),
                  bar);
    }
  };

  if (lane == 0)
    for (int b = 0; b < ST; ++b) mbar_init(bars + uint32_t(b * 8), 1);
  __syncwarp();
  RoundCursor in{int64_t(blockIdx.x) * kWarps + warp, 0};  // the next round to issue
  RoundCursor at = in;                                      // the round to multiply
#pragma unroll
  for (int b = 0; b < ST - 1; ++b, in.next(rounds, warps))
    if (lane == 0) issue(in, b);
  grid_dependency_sync();

  float acc[R][KS];  // a lane's sums of a row: KS of them (chunk c's goes to (c / 32) % KS)
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int k = 0; k < KS; ++k) acc[r][k] = 0.f;
  uint32_t parity = 0;  // bit b: the parity of buffer b's next phase
  for (int b = 0; at.g < n_groups; b = b + 1 == ST ? 0 : b + 1) {
    // The buffer before b was read by every lane in the previous round (or never used yet): refill it.
    __syncwarp();
    if (lane == 0) {
      fence_async_shared();
      issue(in, b == 0 ? ST - 1 : b - 1);
    }
    in.next(rounds, warps);
    // The round's activations (from L1 or L2) are asked for before the wait for its weights.
    constexpr int kU = kBulkChunks / 32;
    uint4 xa[kU], xb[kU];
    float2 dx[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = at.k * kBulkChunks + u * 32 + lane;
      if (c < nch) {
        const uint4* xp = xq + (c >> 5) * 64 + lane;
        xa[u] = __ldg(xp), xb[u] = __ldg(xp + 32), dx[u] = __ldg(xd + c);
      }
    }
    mbar_wait(bars + uint32_t(b * 8), (parity >> b) & 1u);
    parity ^= 1u << b;
    const uint32_t buf = ring + uint32_t(b * Stage::kBytes);
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = at.k * kBulkChunks + u * 32 + lane;
      if (c < nch) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int i = r * kBulkChunks + u * 32 + lane;
          const uint4 w = lds128(buf + uint32_t(i * 16));
          const float sc = scale_at<S>(buf + uint32_t(Stage::kCodes + i * 2));
          const float zp = kAsym ? scale_at<S>(buf + uint32_t(Stage::kCodes + Stage::kScales + i * 2)) : 8.f;
          const float dot = biased_to_float(dot_chunk(w, xa[u], xb[u]));
          float& a = acc[r][u % KS];
          a = fmaf(sc, fmaf(dx[u].x, dot, -zp * dx[u].y), a);
        }
      }
    }
    if (at.k == rounds - 1) store_group_sums(segs, at.g, lane, acc);  // the row group's last round
    at.next(rounds, warps);
  }
}

template <class S, bool kAsym, int R, int ST, int KS>
void launch_bulk_shape(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, cudaStream_t s) {
  launch_warp_groups<gemv_q8_bulk_kernel<S, kAsym, R, ST, KS>, R>(BulkStage<R, kAsym>::smem(ST), ws, ys, n, xq, xd, s);
}

template <class S, bool kAsym, int KS>
void launch_bulk_ks(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int R, int ST,
                    cudaStream_t s) {
  if (R == 2 && ST == 3) return launch_bulk_shape<S, kAsym, 2, 3, KS>(ws, ys, n, xq, xd, s);
  if (R == 2 && ST == 4) return launch_bulk_shape<S, kAsym, 2, 4, KS>(ws, ys, n, xq, xd, s);
  if (R == 4 && ST == 2) return launch_bulk_shape<S, kAsym, 4, 2, KS>(ws, ys, n, xq, xd, s);
  G4_CHECK(false, "gemv_q8_bulk: " + std::to_string(R) + " rows a warp with " + std::to_string(ST) +
                      " buffers is not compiled (2 x 3, 2 x 4, 4 x 2)");
}

bool has_tma() {
  static const bool yes = [] {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
  }();
  return yes;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

bool bulk_layout_ok(const WeightDesc* ws, int n) {
  if (!has_tma() || !tc_layout_ok(ws, n)) return false;
  for (int i = 0; i < n; ++i) {
    const WeightDesc& w = ws[i];
    if ((w.cols / 32) % 8 != 0 || !aligned16(w.codes) || !aligned16(w.scales) || !aligned16(w.zeros)) return false;
  }
  return true;
}

template <class S, bool kAsym>
void launch_bulk(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int R, int ST, int KS,
                 cudaStream_t s) {
  if (KS == 1) return launch_bulk_ks<S, kAsym, 1>(ws, ys, n, xq, xd, R, ST, s);
  G4_CHECK(KS == 4, "gemv_q8_bulk: K split " + std::to_string(KS) + " is not compiled (1 or 4)");
  launch_bulk_ks<S, kAsym, 4>(ws, ys, n, xq, xd, R, ST, s);
}

// The tuned layouts (kTunedLayout): g4's int4 with and without zero points, and Q4_0's.
template void launch_bulk<__nv_bfloat16, true>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                               int, cudaStream_t);
template void launch_bulk<__nv_bfloat16, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int,
                                                int, int, cudaStream_t);
template void launch_bulk<__half, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                         int, cudaStream_t);

}  // namespace g4::cuda::q8
