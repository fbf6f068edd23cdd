// int4 decode GEMV with integer dot products: the activation is rounded to int8 per 32 values (one f32
// scale each, as llama.cpp's q8_1 does), and each 16-byte chunk of int4 codes (32 values, one group since
// group sizes are multiples of 32) meets its 32 int8 x values in 8 dp4a instructions. That is about a
// third of the instructions per weight byte of the f16 kernel in gemv.cu, which stopped at ~70 % of the
// copy bandwidth because it was issue-bound (docs/PERF.md, rounds 2 and 3).
//
// x layout (q8_act.cuh gives the order of a chunk's 8 words): xq slot (c / 32) * 64 + m * 32 + c % 32
// (16 bytes) = words {A(2m), B(2m), A(2m+1), B(2m+1)} of chunk c, so a warp's two loads of x per chunk are
// each 512 coalesced bytes, and xd[c] = {d, d * sum(q)}.
// With w = s (q_w - z) and x ~ d q_x: sum(w x) = s (d sum(q_w q_x) - z d sum(q_x)).
// This file: the one-token kernel (also the fallback for 2-8 tokens), the choice of kernel and shape per
// launch, and the entry points of kernels.h; 2-8 tokens on the tensor cores are in gemv_q8_tc.cu, one token
// through shared memory (for comparison) in gemv_q8_ring.cu (cp.async) and gemv_q8_bulk.cu (bulk copies).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>

#include "backend/cuda/card.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_q8_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/mma_s8.cuh"
#include "backend/cuda/q8_act.cuh"
#include "backend/cuda/reduce.cuh"

namespace g4::cuda {

namespace {

using namespace q8;

// One thread per (token, padded chunk); chunks past the end are zero.
__global__ void quantize_x_kernel(const float* __restrict__ x, int64_t K, int nch,
                                  int nch_pad, int T, uint4* __restrict__ xq, float2* __restrict__ xd) {
  grid_dependency_sync();
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(nch_pad) * T) return;
  const int t = int(i / nch_pad), c = int(i % nch_pad);
  if (c >= nch) return zero_chunk(xq, xd, nch_pad, t, c);
  uint4* slot = x_slot(xq, nch_pad, t, c);
  const int64_t at = int64_t(t) * K + int64_t(c) * 32;
  quantize_chunk32(x + at, slot[0], slot[32], xd[i]);
}

// R rows per warp group, U chunks per lane and row loaded together, KS warps of a block splitting a row
// group's K range (chunk blocks of 32 taken round-robin; their sums meet in shared memory in a fixed order,
// so the result does not depend on timing). kPipe issues the next U chunks' loads before the current ones'
// arithmetic (twice the registers for weights, twice the bytes in flight per warp). A grid of at most one
// resident wave strides over blocks of kWarps / KS row groups. Rows past a segment's end are clamped to its
// last row (loaded, never stored). Before waiting for the previous kernel (weights do not depend on earlier
// kernels; launch.cuh) each warp asks L2 for the weights of its first `prefetch` row groups and, with
// `early`, loads its first round's weights into registers, so that after the wait its first products need
// only the activations.
template <class S, bool kAsym, int NT, int R, int U, int KS, bool kPipe>
__global__ void __launch_bounds__(kWarps * 32) gemv_q8_kernel(Segments segs, int64_t cols, int64_t group_size,
                                                              const uint4* __restrict__ xq,
                                                              const float2* __restrict__ xd, int nch_pad,
                                                              int cpg_shift, int prefetch, int n_tok, bool early) {
  static_assert(kWarps % KS == 0, "KS divides the block's warps");
  constexpr int kGroupsPerBlock = kWarps / KS;
  __shared__ float red[KS > 1 ? kWarps : 1][R][NT];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ks = warp % KS;
  const int nch = int(cols / 32);
  const int64_t G = cols / group_size;
  const int64_t n_groups = segs.group_end[segs.n - 1];
  const int64_t n_block_groups = (n_groups + kGroupsPerBlock - 1) / kGroupsPerBlock;
  const int first_c = ks * 32 + lane, step = 32 * KS * U;

  for (int k = 0; k < prefetch; ++k) {
    const int64_t gi = (int64_t(blockIdx.x) + int64_t(k) * gridDim.x) * kGroupsPerBlock + warp / KS;
    if (gi >= n_groups) break;
    int64_t row0;
    const int s = locate_group(segs, gi, R, row0);
    const int64_t rows = pick(s, segs.rows);
    const char* codes = static_cast<const char*>(pick(s, segs.codes));
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const char* row = codes + min(row0 + r, rows - 1) * int64_t(nch) * 16;
      // One 128-byte line (8 chunks) per 8 lanes of each chunk block this warp reads.
      if ((lane & 7) == 0)
        for (int c = first_c; c < nch; c += 32 * KS) prefetch_l2(row + int64_t(c) * 16);
    }
  }

  // A warp's row group in block group bg: its segment, rows and where their weights are.
  struct Group {
    bool active = false;
    int s = 0;
    int64_t row0 = 0, rows = 1;
    const uint4* wr[R];
    int64_t grow[R];
    const void* scales = nullptr;
    const void* zeros = nullptr;
  };
  auto group_at = [&](int64_t bg) {
    Group gr;
    const int64_t gi = bg * kGroupsPerBlock + warp / KS;
    gr.active = gi < n_groups;
    if (gr.active) {
      gr.s = locate_group(segs, gi, R, gr.row0);
      gr.rows = pick(gr.s, segs.rows);
      const uint4* codes = static_cast<const uint4*>(pick(gr.s, segs.codes));
      gr.scales = pick(gr.s, segs.scales);
      gr.zeros = pick(gr.s, segs.zeros);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t row = min(gr.row0 + r, gr.rows - 1);
        gr.wr[r] = codes + row * nch;
        gr.grow[r] = row * G;
      }
    }
    return gr;
  };
  struct Buf {
    uint4 w[U][R];
    float sc[U][R], zp[U][R];
  };
  auto load = [&](const Group& gr, Buf& b, int c0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + 32 * KS * u;
      if (c < nch) {
        const int gc = c >> cpg_shift;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          b.w[u][r] = ld_stream(gr.wr[r] + c);
          b.sc[u][r] = ld_scale<S>(gr.scales, gr.grow[r] + gc);
          b.zp[u][r] = kAsym ? ld_scale<S>(gr.zeros, gr.grow[r] + gc) : 8.f;
        }
      }
    }
  };

  // One block group: its rows' sums, stored (KS > 1: the warps' parts meet in `red` first). kPre: the
  // group's round at first_c is in `pre` already.
  auto run = [&](auto kPre, const Group& gr, const Buf& pre) {
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[r][t] = 0.f;
    if (gr.active) {
      auto compute = [&](const Buf& b, int c0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int c = c0 + 32 * KS * u;
          if (c < nch) {
#pragma unroll
            for (int t = 0; t < NT; ++t) {
              if (NT > 4 && t >= n_tok) break;  // the 8-token kernel serves 5-8 tokens
              const uint4* xb = xq + int64_t(t) * nch_pad * 2 + (c >> 5) * 64 + lane;
              const uint4 a = __ldg(xb), bb = __ldg(xb + 32);
              const float2 dx = __ldg(xd + int64_t(t) * nch_pad + c);
#pragma unroll
              for (int r = 0; r < R; ++r) {
                const float dot = biased_to_float(dot_chunk(b.w[u][r], a, bb));
                acc[r][t] = fmaf(b.sc[u][r], fmaf(dx.x, dot, -b.zp[u][r] * dx.y), acc[r][t]);
              }
            }
          }
        }
      };
      if constexpr (kPipe) {
        Buf cur, nxt;
        if constexpr (decltype(kPre)::value) cur = pre;
        else load(gr, cur, first_c);
        for (int c0 = first_c; c0 < nch; c0 += step) {
          const bool more = c0 + step < nch;
          if (more) load(gr, nxt, c0 + step);
          compute(cur, c0);
          if (more) cur = nxt;
        }
      } else {
        int c0 = first_c;
        if constexpr (decltype(kPre)::value) {
          if (c0 < nch) compute(pre, c0);
          c0 += step;
        }
        for (; c0 < nch; c0 += step) {
          Buf cur;
          load(gr, cur, c0);
          compute(cur, c0);
        }
      }
    }
    float* y = pick(gr.s, segs.y);
    const int64_t row0 = gr.row0, rows = gr.rows;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const float v = warp_sum(acc[r][t]);
        if constexpr (KS == 1) {
          if (gr.active && lane == 0 && row0 + r < rows && t < n_tok) y[t * rows + row0 + r] = v;
        } else {
          if (lane == 0) red[warp][r][t] = v;
        }
      }
    if constexpr (KS > 1) {
      __syncthreads();
      if (gr.active && ks == 0 && lane < R * NT) {
        const int r = lane / NT, t = lane % NT;
        float v = 0.f;
#pragma unroll
        for (int k = 0; k < KS; ++k) v += red[warp + k][r][t];
        if (row0 + r < rows && t < n_tok) y[t * rows + row0 + r] = v;
      }
      __syncthreads();
    }
  };

  // The first block group (the grid never exceeds the block groups), its first round's weights before the
  // wait when `early`; then the others.
  Buf first;
  {
    const Group g0 = group_at(blockIdx.x);
    if (early && g0.active) load(g0, first, first_c);
    grid_dependency_sync();
    if (early) run(std::true_type{}, g0, first);
    else run(std::false_type{}, g0, first);
  }
  for (int64_t bg = int64_t(blockIdx.x) + gridDim.x; bg < n_block_groups; bg += gridDim.x)
    run(std::false_type{}, group_at(bg), first);
}

template <class S, bool kAsym, int NT, int R, int U, int KS, bool kPipe>
void launch_q8(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int prefetch,
               int T, cudaStream_t s) {
  auto kernel = gemv_q8_kernel<S, kAsym, NT, R, U, KS, kPipe>;
  static const int64_t resident = resident_blocks(kernel, kWarps * 32);
  const Segments sg = make_segments(ws, ys, n, R);
  const int64_t groups = sg.group_end[n - 1];
  const int64_t blocks = stride_blocks_for(resident, (groups + kWarps / KS - 1) / (kWarps / KS), /*even=*/true);
  const int cpg_shift = __builtin_ctz(unsigned(ws[0].group_size / 32));
  // G4_CUDA_Q8_EARLY=0: no weights into registers before the wait (comparisons).
  static const bool early = env_switch("G4_CUDA_Q8_EARLY", true);
  launch(kernel, unsigned(blocks), kWarps * 32, 0, s, sg, ws[0].cols, ws[0].group_size, xq, xd, n_chunks_padded(ws[0]),
         cpg_shift, prefetch, T, early);
}

// The kernel shape of one launch: rows per warp, chunks per load round, warps splitting K, pipelined loads.
struct Q8Shape {
  int R = 2, U = 2, KS = 1;
  bool pipe = false;
  bool operator==(const Q8Shape& o) const { return R == o.R && U == o.U && KS == o.KS && pipe == o.pipe; }
};

// "R,U,KS,P" (e.g. "2,2,4,1") from an environment variable; none when unset or malformed.
std::optional<Q8Shape> env_shape(const char* name) {
  int v[4];
  if (!env_ints(name, v)) return std::nullopt;
  return Q8Shape{v[0], v[1], v[2], v[3] != 0};
}

// The shapes compiled for one token on the layouts that decode runs (g4's int4: bf16 scales with zero points;
// a Q4_0 GGUF: f16 scales, symmetric) and the benchmark's (bf16, symmetric): 4 x 2 x 1 and 4 x 1 x 4
// pipelined (the sixth session's sweep in docs/PERF.md kept these two of ten); for 2-8 tokens on those
// layouts 2 x 1 x 4 pipelined where one token takes 4 warps splitting K (a token's sums then come in the
// same order as alone, so a verify equals one-token steps bit for bit), also compiled for one token as a
// comparison (G4_CUDA_Q8_SHORT=2,1,4,1; not yet measured: the sums of 4 x 1 x 4 in 80 registers instead of
// 128, so 3 blocks an SM instead of 2); every other case takes 2 x 2 x 1.
// 5-8 tokens share the 8-token kernel (tokens past T are skipped).
template <class S, bool kAsym, int NT>
void launch_q8_shape(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, Q8Shape v,
                     int prefetch, int T, cudaStream_t s) {
  constexpr bool kLayout = kTunedLayout<S, kAsym>;
  if constexpr (kLayout && NT == 1) {
    if (v == Q8Shape{4, 2, 1, false}) return launch_q8<S, kAsym, NT, 4, 2, 1, false>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{4, 1, 4, true}) return launch_q8<S, kAsym, NT, 4, 1, 4, true>(ws, ys, n, xq, xd, prefetch, T, s);
  }
  if constexpr (kLayout) {
    if (v == Q8Shape{2, 1, 4, true}) return launch_q8<S, kAsym, NT, 2, 1, 4, true>(ws, ys, n, xq, xd, prefetch, T, s);
    G4_CHECK(v == Q8Shape{}, "gemv_q8: kernel shape R=" + std::to_string(v.R) + " U=" + std::to_string(v.U) +
                                 " KS=" + std::to_string(v.KS) + " pipe=" + std::to_string(v.pipe) + " is not compiled for " +
                                 std::to_string(NT) + " tokens");
  }
  launch_q8<S, kAsym, NT, 2, 2, 1, false>(ws, ys, n, xq, xd, prefetch, T, s);
}

// Cards whose memory streams below 4 TB/s (card.h: the peak from the memory clock and bus width; an H100
// 80GB HBM3: 3.35). On them the weights take other shapes than the H200's choices below (H100, depth 512, forty-first
// session, docs/PERF.md): the short outputs (o, down) one token 2 rows a warp with no K split instead of 4
// warps splitting K (Q4_0: o alone 10.6 -> 9.6 us, +2.4-2.8% a token; g4's int4 +2.5%), and on a Q4_0 GGUF's
// layout (f16 scales, no zero points) the long outputs 2 rows a warp instead of 4 (+2.2% a token; g4's int4
// -1%: it keeps 4) and 2 tokens the dp4a kernel for them (2 sequences +3.1%). Unknown peaks (attributes not
// reported) count as fast.
bool narrow_memory() {
  static const bool narrow = [] {
    int dev = 0, khz = 0, bits = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess)
      return false;
    return narrow_memory_peak(khz, bits);
  }();
  return narrow;
}
bool q4_0_layout(const WeightDesc& w) { return w.stype == SType::kF16 && w.zeros == nullptr; }

// Launches of at least G4_CUDA_Q8_TC tokens (2: every multi-token launch, 9: none) take the tensor-core
// kernel (gemv_q8_tc.cu), fewer the dp4a kernel in the shapes below. Unset, from 2 tokens on every layout:
// a Q4_0 GGUF's (1.1-1.6x faster at 2-8 tokens, H200) and, since the activations go through the kernel's
// ring, g4's int4 with zero points too (H100, a verify at depth 512 of 2 / 3 / 4 / 5 tokens: 1.27 / 1.38 /
// 1.37 / 2.00 one-token steps on the dp4a kernel, 1.16 / 1.13 / 1.19 / 1.31 on the tensor cores;
// docs/PERF.md). The short outputs (o, down) alone back on the dp4a kernel at 2-4 tokens lost too (H100, Q4_0,
// depth 512: a verify of 4 1.14 -> 1.31 one-token steps, 4 sequences 413 -> 368 tok/s; thirty-ninth session).
bool tensor_cores_for_tokens(int T) {
  static const int from = env_int("G4_CUDA_Q8_TC", 0);
  return T >= (from > 0 ? from : 2);
}

// The shape for a launch: the tuning's when it names one (the benchmark), else G4_CUDA_Q8 for every one-token
// launch or G4_CUDA_Q8_SHORT for those of at most 8,192 rows in all ("R,U,KS,P"), else the measured choice
// (docs/PERF.md, H200): 4 rows a warp and 2 chunks a round for many rows (q/k/v, gate/up, the lm_head); for
// few rows (o, down: 5,376) 4 warps splitting K, so that the grid still fills the GPU with bytes in flight. On
// a narrow_memory card: 2 rows a warp, 2 chunks a round, no K split for the few rows, and for the many rows
// too on a Q4_0 layout.
// 2-8 tokens: the tensor-core kernel (gemv_q8_tc.cu) where tensor_cores_for_tokens says so (the outputs with no
// K split of a Q4_0 layout on a narrow_memory card from 3 tokens: all of them there; G4_CUDA_Q8_TC_LONG=N: from
// N on every layout), else 2 x 2 x 1, or 2 x 1 x 4 pipelined where one token takes 4 warps splitting K.
Q8Shape pick_shape(const WeightDesc* ws, int n, int T, GemvTuning tu) {
  if (tu.rows_per_warp > 0) return Q8Shape{tu.rows_per_warp, tu.unroll > 0 ? tu.unroll : 2, tu.ksplit > 0 ? tu.ksplit : 1,
                                           tu.pipeline > 0};
  const bool narrow = narrow_memory(), narrow_q4_0 = narrow && q4_0_layout(ws[0]);
  static const std::optional<Q8Shape> all = env_shape("G4_CUDA_Q8"), shorts = env_shape("G4_CUDA_Q8_SHORT");
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) rows += ws[i].rows;
  const Q8Shape one = rows <= 8192 ? shorts.value_or(narrow ? Q8Shape{2, 2, 1, false} : Q8Shape{4, 1, 4, true})
                                   : all.value_or(narrow_q4_0 ? Q8Shape{2, 2, 1, false} : Q8Shape{4, 2, 1, false});
  if (T == 1) return one;
  // R = 0: the tensor-core kernel with the one-token shape's K split (launch_q8_t: on the layouts it is compiled for).
  static const int tc_long_env = env_int("G4_CUDA_Q8_TC_LONG", 0);
  const int tc_long = tc_long_env > 0 ? tc_long_env : narrow_q4_0 ? 3 : 2;
  // (compiled K splits: 4 always, 1 from tc_long tokens)
  const bool tc = tensor_cores_for_tokens(T) && (one.KS == 4 || (one.KS == 1 && T >= tc_long)) && tc_layout_ok(ws, n);
  if (tc) return Q8Shape{0, 0, one.KS, false};
  // The dp4a kernel with the one-token shape's K split, so each token's sums come in its one-token order.
  return one.KS == 4 && one.pipe ? Q8Shape{2, 1, 4, true} : Q8Shape{};
}

// Rows a warp and buffers a warp for a one-token kernel that streams through shared memory, when a launch takes
// it: the tuning's (rows > 0; -1: never; stages 0: 4), else the environment variable's ("R,ST"). Unset or
// malformed: never. G4_CUDA_Q8_RING: gemv_q8_ring.cu, where the shape leaves K unsplit (on the H100 5-30%
// slower a launch and 12% a token; the H200 not measured yet; docs/PERF.md); G4_CUDA_Q8_BULK: gemv_q8_bulk.cu
// (not measured yet).
template <const char* kEnv>
bool pick_staged(int tu_rows, int tu_stages, int (&rs)[2]) {
  if (tu_rows < 0) return false;
  if (tu_rows > 0) {
    rs[0] = tu_rows, rs[1] = tu_stages > 0 ? tu_stages : 4;
    return true;
  }
  static int env[2] = {0, 0};
  static const bool on = env_ints(kEnv, env);
  rs[0] = env[0], rs[1] = env[1];
  return on;
}
constexpr char kRingEnv[] = "G4_CUDA_Q8_RING", kBulkEnv[] = "G4_CUDA_Q8_BULK";

template <class S, bool kAsym>
void launch_q8_t(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T, GemvTuning tu,
                 cudaStream_t s) {
  const Q8Shape v = pick_shape(ws, n, T, tu);
  if constexpr (kTunedLayout<S, kAsym>) {
    if (v.R == 0) return launch_tc<S, kAsym>(ws, ys, n, xq, xd, T, v.KS, s);
    int bulk[2], ring[2];
    if (T == 1 && pick_staged<kBulkEnv>(tu.bulk_rows, tu.bulk_stages, bulk) && bulk_layout_ok(ws, n))
      return launch_bulk<S, kAsym>(ws, ys, n, xq, xd, bulk[0], bulk[1], v.KS, s);
    if (T == 1 && v.KS == 1 && pick_staged<kRingEnv>(tu.ring_rows, tu.ring_stages, ring) && tc_layout_ok(ws, n))
      return launch_ring<S, kAsym>(ws, ys, n, xq, xd, ring[0], ring[1], s);
  }
  // Row groups a warp asks L2 for before the wait: none by default since the first round's weights go into
  // registers there (H100, one token: +1.9% without the request; docs/PERF.md); G4_CUDA_Q8_PREFETCH=N for
  // comparisons.
  static const int env_prefetch = env_int("G4_CUDA_Q8_PREFETCH", 0);
  const int pf = tu.prefetch > 0 ? tu.prefetch : env_prefetch;
  switch (T) {
    case 1: launch_q8_shape<S, kAsym, 1>(ws, ys, n, xq, xd, v, pf, T, s); break;
    case 2: launch_q8_shape<S, kAsym, 2>(ws, ys, n, xq, xd, v, pf, T, s); break;
    case 3: launch_q8_shape<S, kAsym, 3>(ws, ys, n, xq, xd, v, pf, T, s); break;
    case 4: launch_q8_shape<S, kAsym, 4>(ws, ys, n, xq, xd, v, pf, T, s); break;
    default: launch_q8_shape<S, kAsym, 8>(ws, ys, n, xq, xd, v, pf, T, s); break;  // 5-8 tokens
  }
}

bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

bool gemv_q8_supported(const WeightDesc& w) {
  return w.fmt == WFmt::kInt4 && w.cols % 32 == 0 && w.group_size % 32 == 0 && power_of_two(w.group_size / 32);
}

bool gemv_q8_enabled() {
  // On unless G4_CUDA_INT4_DP4A=0 (then the f16 kernel of gemv.cu, for comparisons).
  static const bool on = env_switch("G4_CUDA_INT4_DP4A", true);
  return on;
}

size_t gemv_q8_x_bytes_cols(int64_t cols, int T) {
  const size_t nch_pad = size_t(x_chunks_padded(cols));
  return nch_pad * 2 * 16 * size_t(T) + nch_pad * sizeof(float2) * size_t(T);
}

size_t gemv_q8_x_bytes(const WeightDesc& w, int T) { return gemv_q8_x_bytes_cols(w.cols, T); }

uint64_t launches_so_far() { return launch_count; }

void gemv_q8_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kGemvQ8MaxT && gemv_q8_supported(w), "gemv_q8: int4 weight, 1..8 tokens");
  if (knocked_out(Knock::kQx)) return;
  const int nch_pad = n_chunks_padded(w);
  uint4* q = static_cast<uint4*>(xq);
  float2* d = x_scales(q, nch_pad, T);
  const int64_t n = int64_t(nch_pad) * T;
  launch(quantize_x_kernel, unsigned((n + 127) / 128), 128, 0, s, x, w.cols, int4_chunks(w), nch_pad, T, q, d);
  G4_CUDA_LAUNCHED();
}

void gemv_q8_quantized(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s, GemvTuning tu) {
  gemv_q8_multi(&w, &y, 1, xq, T, s, tu);
}

bool gemv_q8_can_share(const WeightDesc* ws, int n) {
  if (n < 1 || n > kMaxSegs) return false;
  for (int i = 0; i < n; ++i) {
    const WeightDesc& a = ws[i];
    if (!gemv_q8_supported(a) || a.cols != ws[0].cols || a.group_size != ws[0].group_size || a.stype != ws[0].stype ||
        (a.zeros != nullptr) != (ws[0].zeros != nullptr))
      return false;
  }
  return true;
}

void gemv_q8_multi(const WeightDesc* ws, float* const* ys, int n, const void* xq, int T, cudaStream_t s, GemvTuning tu) {
  G4_CHECK(T >= 1 && T <= kGemvQ8MaxT && gemv_q8_can_share(ws, n), "gemv_q8: int4 weights of one layout, 1..8 tokens");
  if (knocked_out(Knock::kGemv)) return;
  const uint4* q = static_cast<const uint4*>(xq);
  const float2* d = reinterpret_cast<const float2*>(q + xq_slots(ws[0]) * T);
  // gemv_q8_can_share: every weight has ws[0]'s scale type and zero-point presence.
  with_scale_layout(ws[0], [&](auto L) {
    launch_q8_t<typename decltype(L)::Scale, decltype(L)::asym>(ws, ys, n, q, d, T, tu, s);
  });
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda