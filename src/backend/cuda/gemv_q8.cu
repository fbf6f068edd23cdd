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
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/mma_s8.cuh"
#include "backend/cuda/q8_act.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda {

namespace {

constexpr int kWarps = 8;

int n_chunks_padded(const WeightDesc& w) { return (int4_chunks(w) + 31) / 32 * 32; }
// Per token: 2 slots of 16 bytes per padded chunk, then (after all tokens) a float2 per padded chunk.
int64_t xq_slots(const WeightDesc& w) { return int64_t(n_chunks_padded(w)) * 2; }

// One thread per (token, padded chunk); chunks past the end are zero. With `up`: gelu_mul_value(x, up).
__global__ void quantize_x_kernel(const float* __restrict__ x, const float* __restrict__ up, int64_t K, int nch,
                                  int nch_pad, int T, uint4* __restrict__ xq, float2* __restrict__ xd) {
  grid_dependency_sync();
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(nch_pad) * T) return;
  const int t = int(i / nch_pad), c = int(i % nch_pad);
  uint4* slot = xq + int64_t(t) * nch_pad * 2 + (c >> 5) * 64 + (c & 31);
  if (c >= nch) {
    slot[0] = slot[32] = make_uint4(0, 0, 0, 0);
    xd[i] = make_float2(0.f, 0.f);
    return;
  }
  const int64_t at = int64_t(t) * K + int64_t(c) * 32;
  quantize_chunk32(x + at, slot[0], slot[32], xd[i], up ? up + at : nullptr);
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

// R rows per warp group, U chunks per lane and row loaded together, KS warps of a block splitting a row
// group's K range (chunk blocks of 32 taken round-robin; their sums meet in shared memory in a fixed order,
// so the result does not depend on timing). kPipe issues the next U chunks' loads before the current ones'
// arithmetic (twice the registers for weights, twice the bytes in flight per warp). A grid of at most one
// resident wave strides over blocks of kWarps / KS row groups. Rows past a segment's end are clamped to its
// last row (loaded, never stored). Before waiting for the previous kernel, each warp asks L2 for the weights
// of its first `prefetch` row groups (weights do not depend on earlier kernels; launch.cuh).
template <class S, bool kAsym, int NT, int R, int U, int KS, bool kPipe>
__global__ void __launch_bounds__(kWarps * 32) gemv_q8_kernel(Segments segs, int64_t cols, int64_t group_size,
                                                              const uint4* __restrict__ xq,
                                                              const float2* __restrict__ xd, int nch_pad,
                                                              int cpg_shift, int prefetch, int n_tok) {
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
  grid_dependency_sync();

  for (int64_t bg = blockIdx.x; bg < n_block_groups; bg += gridDim.x) {
    const int64_t gi = bg * kGroupsPerBlock + warp / KS;
    const bool active = gi < n_groups;
    int s = 0;
    int64_t row0 = 0, rows = 1;
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[r][t] = 0.f;
    if (active) {
      s = locate_group(segs, gi, R, row0);
      rows = pick(s, segs.rows);
      const uint4* codes = static_cast<const uint4*>(pick(s, segs.codes));
      const void* scales = pick(s, segs.scales);
      const void* zeros = pick(s, segs.zeros);
      const uint4* wr[R];
      int64_t grow[R];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t row = min(row0 + r, rows - 1);
        wr[r] = codes + row * nch;
        grow[r] = row * G;
      }
      struct Buf {
        uint4 w[U][R];
        float sc[U][R], zp[U][R];
      };
      auto load = [&](Buf& b, int c0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int c = c0 + 32 * KS * u;
          if (c < nch) {
            const int gc = c >> cpg_shift;
#pragma unroll
            for (int r = 0; r < R; ++r) {
              b.w[u][r] = ld_stream(wr[r] + c);
              b.sc[u][r] = ld_scale<S>(scales, grow[r] + gc);
              b.zp[u][r] = kAsym ? ld_scale<S>(zeros, grow[r] + gc) : 8.f;
            }
          }
        }
      };
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
        load(cur, first_c);
        for (int c0 = first_c; c0 < nch; c0 += step) {
          const bool more = c0 + step < nch;
          if (more) load(nxt, c0 + step);
          compute(cur, c0);
          if (more) cur = nxt;
        }
      } else {
        for (int c0 = first_c; c0 < nch; c0 += step) {
          Buf cur;
          load(cur, c0);
          compute(cur, c0);
        }
      }
    }
    float* y = pick(s, segs.y);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const float v = warp_sum(acc[r][t]);
        if constexpr (KS == 1) {
          if (active && lane == 0 && row0 + r < rows && t < n_tok) y[t * rows + row0 + r] = v;
        } else {
          if (lane == 0) red[warp][r][t] = v;
        }
      }
    if constexpr (KS > 1) {
      __syncthreads();
      if (active && ks == 0 && lane < R * NT) {
        const int r = lane / NT, t = lane % NT;
        float v = 0.f;
#pragma unroll
        for (int k = 0; k < KS; ++k) v += red[warp + k][r][t];
        if (row0 + r < rows && t < n_tok) y[t * rows + row0 + r] = v;
      }
      __syncthreads();
    }
  }
}

// The layouts the tuned shapes and the tensor-core kernel are compiled for: g4's int4 (bf16 scales, with or
// without zero points) and a Q4_0 GGUF's (f16 scales, symmetric).
template <class S, bool kAsym>
constexpr bool kTunedLayout = std::is_same_v<S, __nv_bfloat16> || (std::is_same_v<S, __half> && !kAsym);

// Segments of `n` weights (same cols, group size, scale type and zero-point presence) with R rows a group.
Segments make_segments(const WeightDesc* ws, float* const* ys, int n, int R) {
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

// --- 2-8 tokens on the tensor cores, summed in the one-token kernel's order ---
// The one-token kernel (KS warps splitting K) sums a row's chunks in 32 * KS "slots": slot j takes chunks
// j, j + 32 KS, j + 64 KS, ... in that order, one fmaf each (acc = fmaf(s, fmaf(dx, dot, -z dy), acc)),
// then the 32 slots of each warp meet in a butterfly of shuffles and the KS warps' sums are added in
// order. This kernel computes the integer dot products of 16 rows x 8 tokens x one chunk in one int8 mma
// (m16n8k32; tokens past T repeat the last one and are not stored) and keeps the same slots: a block takes
// 32 rows (two mma tiles), pass p of it covers the one-token kernel's warp p (slots 32p .. 32p + 31),
// warp w slots 32p + 4w .. + 3, each slot's chunks accumulated in order with the same fmaf; the pass's
// slot sums meet in shared memory, where one thread per (row, token) adds them in the butterfly's tree and
// then to the sum of the earlier passes. So each token's outputs equal its one-token launch bit for bit,
// and the dot products cost one instruction per 16 x 8 x 32 instead of 8 dp4a per 32 a token.
// mma fragments (k = the 32 values of a chunk in the order of q8_act.cuh): lane (g = lane / 4, q = lane % 4)
// holds code word q of rows g and g + 8 (low nibbles: k = 4q..4q+3, high: 16 + 4q..), the x words A(q),
// B(q) of B's column g, and the sums of rows g, g + 8 for columns 2q, 2q + 1.
// Fewer tokens, fewer columns: every (row, chunk, token) sum costs five instructions after the mma (the
// scaling above), which for 8 columns a chunk is most of the kernel's work. With TPG tokens a column group
// (8, 4 or 2), the 8 columns hold 8 / TPG chunks of TPG tokens each: column n is token n % TPG of chunk n /
// TPG, B is zero in the columns of the other chunks, and the 8 / TPG mmas of one group of chunks add into one
// C. So a lane scales the sums of one chunk and two tokens per group, and a verify of 2 or 4 tokens pays for
// 2 or 4 columns, not 8.
constexpr int kTcTokens = 8, kTcSlots = 32;

// d += a (16 x 32 s8, row) * b (32 x 8 s8, col), int32.
__device__ __forceinline__ void mma_s8(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                       uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One stage of the shuffle butterfly as lane 0 sees it: v[l] (lane l's value) += v[l + O] (its partner's).
template <int O>
__device__ __forceinline__ void butterfly_stage(float (&v)[32]) {
#pragma unroll
  for (int l = 0; l < O; ++l) v[l] = v[l] + v[l + O];
}

// Half `hi` (0: low, 1: high) of a word of two 16-bit scales (bf16 or f16), as f32: one byte permute (and
// for f16 a conversion).
template <class S>
__device__ __forceinline__ float scale_half(uint32_t word, int hi) {
  static_assert(sizeof(S) == 2, "16-bit scales");
  if constexpr (std::is_same_v<S, __half>)
    return __half2float(__ushort_as_half(uint16_t(__byte_perm(word, 0, hi ? 0x4432 : 0x4410))));
  else return __uint_as_float(__byte_perm(word, 0, hi ? 0x3244 : 0x1044));  // bf16 << 16
}

// What reaches the mma through shared memory: each warp streams its rounds with cp.async into a ring of
// ST buffers of its own, ST - 1 rounds ahead of the one it multiplies, across passes and tiles
// (so neither a round nor a tile's first round waits for DRAM). A round's buffer holds the code words of 4
// chunks of the tile's 32 rows (2 KB; ldmatrix hands lane (g, q) word q of chunks c0 .. c0 + 3 of row
// g + 8k in one instruction per k; chunk j of row r sits in 16-byte slot 4r + (j ^ ((r >> 1) & 3)), so that
// the 8 rows an ldmatrix matrix reads fall in 8 different bank groups), then each row's 4 scales and 4 zero
// points (16 bytes a row). The kernel takes group size 32 (a scale per chunk) and rows of a multiple of 4
// chunks (tc_layout_ok), so a round never runs past a row's end.
// ST: the ring's buffers. Two blocks of 32-row tiles with 4 buffers take 224 KiB of shared memory, which
// needs the largest carveout (228 of the SM's 256 KiB) and leaves 28 KiB of L1 for the x words every round
// reads (for 8 tokens and 5,376 columns 53 KiB: they came from L2 again for every tile); with 3 buffers two
// blocks take 184 KiB, the 196 KiB carveout, and leave 60 KiB (H200, Q4_0: 8 sequences +4%, a verify of 8
// tokens 14.02 -> 13.46 ms, docs/PERF.md); with 2, 144 KiB, the 164 KiB carveout: 92 KiB of L1, half the
// loads in flight (Q4_0: 8 sequences +1.2% more, a verify of 4 tokens 9.84 -> 9.66 ms). So 3-8 tokens take 2
// on symmetric layouts (Q4_0), 3 with zero points (g4's int4, whose 8-token short-output instance spills 32
// bytes with 2 buffers, 8 with 3: unmeasured), and 2 tokens (x 11 KiB) keep 4. G4_CUDA_Q8_TC_STAGES=2 or 3
// sets 3-8 tokens' ring on every layout, for comparisons.
// (64-row tiles, one block an SM reading x once per 64 rows, measured below 3 buffers: dropped.)
constexpr int kTcMT = 2;  // 16-row mma tiles a warp: a block's tile is 32 rows

template <int ST>
struct TcLayout {
  static constexpr int kRows = 16 * kTcMT;
  static constexpr int kCodeBytes = kRows * 4 * 16;
  static constexpr int kStageBytes = kCodeBytes + kRows * 16;
  static constexpr size_t kSmem = size_t(kWarps) * ST * kStageBytes + sizeof(float) * kTcSlots * kRows * kTcTokens;
};

// A warp's place in its sequence of rounds: tile (of this block's, gridDim.x apart), pass p, first chunk c0;
// with the tile's codes, scales and zero points and this lane's row offsets (chunks of rows g + 8k, groups of
// rows lane + 32i). tile >= n_tiles: the sequence is over.
struct TcCursor {
  int64_t tile;
  int p, c0;
  const uint4* codes;
  const uint16_t *scales, *zeros;
  int wo[2 * kTcMT], so[kTcMT / 2];
};

template <class S, bool kAsym, int KS, int TPG, int ST>
__global__ void __launch_bounds__(kWarps * 32, 2) gemv_q8_tc_kernel(Segments segs, int64_t cols,
                                                                    const uint4* __restrict__ xq,
                                                                    const float2* __restrict__ xd, int nch_pad,
                                                                    int n_tok) {
  static_assert(kTcSlots == 4 * kWarps, "a pass is 4 slots a warp");
  static_assert(TPG == 2 || TPG == 4 || TPG == 8, "tokens a column group");
  constexpr int MT = kTcMT;
  using L = TcLayout<ST>;
  constexpr int kTcStages = ST;
  constexpr int kTcRows = L::kRows, kTcCodeBytes = L::kCodeBytes, kTcStageBytes = L::kStageBytes;
  constexpr int kSlots = 32 * KS;
  constexpr int kChunksPerGroup = kTcTokens / TPG, kGroups = 4 / kChunksPerGroup;  // per round of 4 chunks
  extern __shared__ uint4 tc_smem[];  // [warp][stage][kTcStageBytes], then slot_sum
  float* slot_sum = reinterpret_cast<float*>(tc_smem + kWarps * kTcStages * kTcStageBytes / 16);  // [slot][row][token]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  const int nch = int(cols / 32);  // = groups a row
  const int64_t n_tiles = segs.group_end[segs.n - 1];
  // B's column g: token g % TPG of chunk bc = g / TPG of a group; the outputs' columns 2q, 2q + 1: tokens t0,
  // t1 of chunk oc = 2q / TPG (past n_tok: the last token again, not stored).
  const int bc = g / TPG, oc = 2 * q / TPG;
  const int tb = min(g % TPG, n_tok - 1), t0 = min(2 * q % TPG, n_tok - 1), t1 = min((2 * q + 1) % TPG, n_tok - 1);
  const uint4* xb = xq + int64_t(tb) * nch_pad * 2 + (q >> 1) * 32;
  const float2* xd0 = xd + int64_t(t0) * nch_pad;
  const float2* xd1 = xd + int64_t(t1) * nch_pad;

  // The producer: cp.async of round `issued` into buffer issued % kTcStages (lane (g, q): chunk c0 + q of
  // rows g + 8k; lane l: the scales and zero points of row l), one commit group a round, empty once the
  // sequence is over (the waits count groups).
  const uint32_t ring = smem_addr(tc_smem) + uint32_t(warp * kTcStages * kTcStageBytes);
  TcCursor pc;
  pc.tile = blockIdx.x, pc.p = 0, pc.c0 = 4 * warp;
  auto enter_tile = [&]() {
    if (pc.tile >= n_tiles) return;
    int64_t row0;
    const int sg = locate_group(segs, pc.tile, kTcRows, row0);
    const int64_t rows = pick(sg, segs.rows);
    pc.codes = static_cast<const uint4*>(pick(sg, segs.codes));
    pc.scales = static_cast<const uint16_t*>(pick(sg, segs.scales));
    pc.zeros = static_cast<const uint16_t*>(pick(sg, segs.zeros));
#pragma unroll
    for (int k = 0; k < 2 * MT; ++k) pc.wo[k] = int(min(row0 + g + 8 * k, rows - 1)) * nch;
#pragma unroll
    for (int i = 0; i < MT / 2; ++i) pc.so[i] = int(min(row0 + lane + 32 * i, rows - 1)) * nch;
  };
  auto settle = [&]() {  // past the end of a pass: the next pass with chunks for this warp, or the next tile
    while (pc.tile < n_tiles && pc.c0 >= nch) {
      if (++pc.p == KS) {
        pc.p = 0;
        pc.tile += gridDim.x;
        enter_tile();
      }
      pc.c0 = kTcSlots * pc.p + 4 * warp;
    }
  };
  int issued = 0;
  auto issue = [&]() {
    if (pc.tile < n_tiles) {
      const uint32_t buf = ring + uint32_t(issued % kTcStages) * kTcStageBytes;
      const uint4* src = pc.codes + pc.c0 + q;
#pragma unroll
      for (int k = 0; k < 2 * MT; ++k) {
        const int r = g + 8 * k;
        cp_async<16>(buf + uint32_t(4 * r + (q ^ ((r >> 1) & 3))) * 16, src + pc.wo[k]);
      }
#pragma unroll
      for (int i = 0; i < MT / 2; ++i) {
        const uint32_t at = buf + kTcCodeBytes + uint32_t(lane + 32 * i) * 16;
        cp_async<8>(at, pc.scales + pc.so[i] + pc.c0);
        if constexpr (kAsym) cp_async<8>(at + 8, pc.zeros + pc.so[i] + pc.c0);
      }
      pc.c0 += kSlots;
      settle();
    }
    cp_async_commit();
    ++issued;
  };
  enter_tile();
  settle();
  // The first rounds before waiting for the previous kernel: weights are written by no kernel (launch.cuh).
#pragma unroll
  for (int i = 0; i < kTcStages - 1; ++i) issue();
  grid_dependency_sync();

  int consumed = 0;
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    int64_t row0;
    const int sg = locate_group(segs, tile, kTcRows, row0);
    const int64_t rows = pick(sg, segs.rows);
    constexpr int kOut = kTcRows * kTcTokens / (kWarps * 32);  // outputs a thread: 1
    float y[kOut] = {};  // thread e's outputs: e + 256 i = row * 8 + token
    for (int p = 0; p < KS; ++p) {
      const int slot0 = kTcSlots * p + 4 * warp;
      float acc[MT][kGroups][4];  // [rows 16h ..][group][row g / g + 8, token t0 / t1]: slot 4w + group's oc
#pragma unroll
      for (int h = 0; h < MT; ++h)
#pragma unroll
        for (int i = 0; i < kGroups; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[h][i][j] = 0.f;
      for (int c0 = slot0; c0 < nch; c0 += kSlots) {  // the same for the whole warp (ldmatrix)
        __syncwarp();  // every lane is done with the buffer that the next issue overwrites
        issue();
        cp_async_wait<kTcStages - 1>();  // round `consumed` has landed (this lane's part)
        __syncwarp();                    // (and every lane's)
        const uint32_t buf = ring + uint32_t(consumed % kTcStages) * kTcStageBytes;
        ++consumed;
        // w[k]: word q of chunks c0 .. c0 + 3 of row g + 8k (matrix j of ldmatrix = chunk j: rows 8k .. 8k + 7,
        // lanes 8j .. 8j + 7 giving their addresses); sz[k]: that row's 4 scales (x, y) and zero points (z, w).
        uint4 w[2 * MT], sz[2 * MT];
#pragma unroll
        for (int k = 0; k < 2 * MT; ++k) {
          const int r = 8 * k + (lane & 7), j = lane >> 3;
          w[k] = ldmatrix_x4(buf + uint32_t(4 * r + (j ^ ((r >> 1) & 3))) * 16);
          sz[k] = lds128(buf + kTcCodeBytes + (g + 8 * k) * 16);
        }
        constexpr uint32_t kLo = 0x0F0F0F0Fu;
#pragma unroll
        for (int gr = 0; gr < kGroups; ++gr) {
          const int cg = c0 + gr * kChunksPerGroup;  // the group's first chunk
          // B: this lane's column's x words (chunk cg + bc), given to the group's mma of that chunk and zero
          // to the others.
          const int cb = cg + bc;
          const uint2 x = __ldg(reinterpret_cast<const uint2*>(xb + (cb >> 5) * 64 + (cb & 31)) + (q & 1));
          const int co = cg + oc, i = gr * kChunksPerGroup + oc;  // the chunk this lane scales, and its index
          const float2 e0 = __ldg(xd0 + co), e1 = __ldg(xd1 + co);
          const int wi = i >> 1, hi = i & 1;  // its scales' word (x or y; z or w) and half
#pragma unroll
          for (int h = 0; h < MT; ++h) {
            int d[4] = {0, 0, 0, 0};
#pragma unroll
            for (int m = 0; m < kChunksPerGroup; ++m) {
              const int ci = gr * kChunksPerGroup + m;
              const uint32_t wa = word(w[2 * h], ci), wb = word(w[2 * h + 1], ci);
              const bool mine = kChunksPerGroup == 1 || bc == m;
              mma_s8(d, wa & kLo, wb & kLo, (wa >> 4) & kLo, (wb >> 4) & kLo, mine ? x.x : 0u, mine ? x.y : 0u);
            }
            const uint4 &pa = sz[2 * h], &pb = sz[2 * h + 1];
            const float sa = scale_half<S>(wi ? pa.y : pa.x, hi), sb = scale_half<S>(wi ? pb.y : pb.x, hi);
            const float za = kAsym ? scale_half<S>(wi ? pa.w : pa.z, hi) : 8.f;
            const float zb = kAsym ? scale_half<S>(wi ? pb.w : pb.z, hi) : 8.f;
            acc[h][gr][0] = fmaf(sa, fmaf(e0.x, small_int_to_float(d[0]), -za * e0.y), acc[h][gr][0]);
            acc[h][gr][1] = fmaf(sa, fmaf(e1.x, small_int_to_float(d[1]), -za * e1.y), acc[h][gr][1]);
            acc[h][gr][2] = fmaf(sb, fmaf(e0.x, small_int_to_float(d[2]), -zb * e0.y), acc[h][gr][2]);
            acc[h][gr][3] = fmaf(sb, fmaf(e1.x, small_int_to_float(d[3]), -zb * e1.y), acc[h][gr][3]);
          }
        }
      }
      // Slot 4w + i of this pass: tokens t0, t1 (columns 2q, 2q + 1 of chunk oc of each group).
#pragma unroll
      for (int gr = 0; gr < kGroups; ++gr) {
        float* o = slot_sum + (4 * warp + gr * kChunksPerGroup + oc) * kTcRows * kTcTokens;
        const int u0 = 2 * q % TPG, u1 = u0 + 1;
#pragma unroll
        for (int h = 0; h < MT; ++h) {
          o[(16 * h + g) * kTcTokens + u0] = acc[h][gr][0];
          o[(16 * h + g) * kTcTokens + u1] = acc[h][gr][1];
          o[(16 * h + g + 8) * kTcTokens + u0] = acc[h][gr][2];
          o[(16 * h + g + 8) * kTcTokens + u1] = acc[h][gr][3];
        }
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < kOut; ++i) {
        const int e = threadIdx.x + kWarps * 32 * i;
        float v[32];
#pragma unroll
        for (int l = 0; l < 32; ++l) v[l] = slot_sum[l * kTcRows * kTcTokens + e];
        butterfly_stage<16>(v);
        butterfly_stage<8>(v);
        butterfly_stage<4>(v);
        butterfly_stage<2>(v);
        butterfly_stage<1>(v);
        if constexpr (KS == 1) y[i] = v[0];
        else y[i] += v[0];
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < kOut; ++i) {
      const unsigned e = threadIdx.x + unsigned(kWarps * 32 * i);
      const int r = int(e / kTcTokens), t = int(e % kTcTokens);
      if (row0 + r < rows && t < n_tok) pick(sg, segs.y)[t * rows + row0 + r] = y[i];
    }
  }
}

template <class S, bool kAsym, int KS, int TPG, int ST>
void launch_q8_tc_ring(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T,
                       cudaStream_t s) {
  using L = TcLayout<ST>;
  auto kernel = gemv_q8_tc_kernel<S, kAsym, KS, TPG, ST>;
  static const int64_t resident = [&] {
    G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::kSmem)));
    return resident_blocks(kernel, kWarps * 32, L::kSmem);
  }();
  const Segments sg = make_segments(ws, ys, n, L::kRows);
  const int64_t blocks = std::min(resident, sg.group_end[n - 1]);
  launch(kernel, unsigned(blocks), kWarps * 32, L::kSmem, s, sg, ws[0].cols, xq, xd, n_chunks_padded(ws[0]), T);
}

template <class S, bool kAsym, int KS, int TPG>
void launch_q8_tc(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T,
                  cudaStream_t s) {
  if constexpr (TPG == 2) {
    launch_q8_tc_ring<S, kAsym, KS, TPG, 4>(ws, ys, n, xq, xd, T, s);
  } else {
    static const int stages = env_int("G4_CUDA_Q8_TC_STAGES", kAsym ? 3 : 2);
    if (stages == 2) return launch_q8_tc_ring<S, kAsym, KS, TPG, 2>(ws, ys, n, xq, xd, T, s);
    launch_q8_tc_ring<S, kAsym, KS, TPG, 3>(ws, ys, n, xq, xd, T, s);
  }
}

// The tensor-core kernel for T tokens: 2, 4 or 8 tokens a column group, the fewest that hold them.
template <class S, bool kAsym, int KS>
void launch_q8_tc_tokens(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T,
                         cudaStream_t s) {
  if (T <= 2) return launch_q8_tc<S, kAsym, KS, 2>(ws, ys, n, xq, xd, T, s);
  if (T <= 4) return launch_q8_tc<S, kAsym, KS, 4>(ws, ys, n, xq, xd, T, s);
  launch_q8_tc<S, kAsym, KS, 8>(ws, ys, n, xq, xd, T, s);
}

// Whether weights can take the tensor-core kernel: a scale per 32-value chunk, rows of a multiple of 4
// chunks, 8-byte aligned scales and zero points (cp.async of a row's 4), 32-bit chunk offsets.
bool tc_layout_ok(const WeightDesc* ws, int n) {
  for (int i = 0; i < n; ++i) {
    const WeightDesc& w = ws[i];
    if (w.group_size != 32 || w.cols % 128 != 0 || w.rows * (w.cols / 32) >= (int64_t(1) << 31)) return false;
    if (reinterpret_cast<uintptr_t>(w.scales) % 8 != 0 || reinterpret_cast<uintptr_t>(w.zeros) % 8 != 0) return false;
  }
  return true;
}

template <class S, bool kAsym, int NT, int R, int U, int KS, bool kPipe>
void launch_q8(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int prefetch,
               int T, cudaStream_t s) {
  auto kernel = gemv_q8_kernel<S, kAsym, NT, R, U, KS, kPipe>;
  static const int64_t resident = resident_blocks(kernel, kWarps * 32);
  const Segments sg = make_segments(ws, ys, n, R);
  const int64_t groups = sg.group_end[n - 1];
  const int64_t blocks = std::min(resident, (groups + kWarps / KS - 1) / (kWarps / KS));
  const int cpg_shift = __builtin_ctz(unsigned(ws[0].group_size / 32));
  launch(kernel, unsigned(blocks), kWarps * 32, 0, s, sg, ws[0].cols, ws[0].group_size, xq, xd, n_chunks_padded(ws[0]),
         cpg_shift, prefetch, T);
}

// The kernel shape of one launch: rows per warp, chunks per load round, warps splitting K, pipelined loads.
struct Q8Shape {
  int R = 2, U = 2, KS = 1;
  bool pipe = false;
  bool operator==(const Q8Shape& o) const { return R == o.R && U == o.U && KS == o.KS && pipe == o.pipe; }
};

// "R,U,KS,P" (e.g. "2,2,4,1") from an environment variable; `fallback` when unset or malformed.
Q8Shape env_shape(const char* name, Q8Shape fallback) {
  int v[4];
  if (!env_ints(name, v)) return fallback;
  return Q8Shape{v[0], v[1], v[2], v[3] != 0};
}

// The shapes compiled for one token on the layouts that decode runs (g4's int4: bf16 scales with zero points;
// a Q4_0 GGUF: f16 scales, symmetric) and the benchmark's (bf16, symmetric); for 2-8 tokens on those layouts
// 2 x 2 and, for short launches, 2 x 1 x 4 pipelined (the K split of one token's short shape: a token's sums
// then come in the same order as alone, so a verify equals one-token steps bit for bit), plus 2 x 2 x 1
// pipelined and 2 x 2 x 4 for comparisons (G4_CUDA_Q8_MULTI*, docs/PERF.md); every other case takes the
// 2 x 2 shape. 5-8 tokens share the 8-token kernel (tokens past T are skipped).
template <class S, bool kAsym, int NT>
void launch_q8_shape(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, Q8Shape v,
                     int prefetch, int T, cudaStream_t s) {
  constexpr bool kLayout = kTunedLayout<S, kAsym>;
  if constexpr (kLayout && NT == 1) {
    if (v == Q8Shape{4, 2, 1, false}) return launch_q8<S, kAsym, NT, 4, 2, 1, false>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{4, 1, 4, true}) return launch_q8<S, kAsym, NT, 4, 1, 4, true>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{2, 1, 8, true}) return launch_q8<S, kAsym, NT, 2, 1, 8, true>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{8, 1, 1, false}) return launch_q8<S, kAsym, NT, 8, 1, 1, false>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{4, 2, 2, false}) return launch_q8<S, kAsym, NT, 4, 2, 2, false>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{4, 2, 4, false}) return launch_q8<S, kAsym, NT, 4, 2, 4, false>(ws, ys, n, xq, xd, prefetch, T, s);
  }
  if constexpr (kLayout && NT > 1) {
    if (v == Q8Shape{2, 1, 4, true}) return launch_q8<S, kAsym, NT, 2, 1, 4, true>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{2, 2, 4, false}) return launch_q8<S, kAsym, NT, 2, 2, 4, false>(ws, ys, n, xq, xd, prefetch, T, s);
    if (v == Q8Shape{2, 2, 1, true}) return launch_q8<S, kAsym, NT, 2, 2, 1, true>(ws, ys, n, xq, xd, prefetch, T, s);
  }
  if constexpr (kLayout) {
    G4_CHECK(v == Q8Shape{}, "gemv_q8: kernel shape R=" + std::to_string(v.R) + " U=" + std::to_string(v.U) +
                                 " KS=" + std::to_string(v.KS) + " pipe=" + std::to_string(v.pipe) + " is not compiled for " +
                                 std::to_string(NT) + " tokens");
  }
  launch_q8<S, kAsym, NT, 2, 2, 1, false>(ws, ys, n, xq, xd, prefetch, T, s);
}

// Launches of at least G4_CUDA_Q8_TC tokens (2: every multi-token launch, 9: none) take the tensor-core
// kernel (gemv_q8_tc_kernel), fewer the dp4a kernel in the shapes below. Unset, the measured choice on the
// H200 (docs/PERF.md): from 2 tokens without zero points (a Q4_0 GGUF's layout: 1.1-1.6x faster at 2-8
// tokens), from 7 with them (g4's int4: the dp4a kernel is as fast or faster at 3-5 tokens, the
// tensor-core one 7% faster at 8).
bool tensor_cores_for_tokens(int T, bool asym) {
  static const int from = env_int("G4_CUDA_Q8_TC", 0);
  return T >= (from > 0 ? from : asym ? 7 : 2);
}

// The shape for a launch: the tuning's when it names one (the benchmark), else G4_CUDA_Q8 for every one-token
// launch or G4_CUDA_Q8_SHORT for those of at most 8,192 rows in all ("R,U,KS,P"), else the measured choice
// (docs/PERF.md, H200): 4 rows a warp and 2 chunks a round for many rows (q/k/v, gate/up, the lm_head); for
// few rows (o, down: 5,376) 4 warps splitting K, so that the grid still fills the GPU with bytes in flight.
// 2-8 tokens: 2 x 2, or 2 x 1 x 4 pipelined where one token takes 4 warps splitting K.
Q8Shape pick_shape(const WeightDesc* ws, int n, int T, GemvTuning tu) {
  if (tu.rows_per_warp > 0) return Q8Shape{tu.rows_per_warp, tu.unroll > 0 ? tu.unroll : 2, tu.ksplit > 0 ? tu.ksplit : 1,
                                           tu.pipeline > 0};
  static const Q8Shape all = env_shape("G4_CUDA_Q8", Q8Shape{4, 2, 1, false});
  static const Q8Shape shorts = env_shape("G4_CUDA_Q8_SHORT", Q8Shape{4, 1, 4, true});
  // 2-8 tokens (G4_CUDA_Q8_MULTI, G4_CUDA_Q8_MULTI_SHORT for comparisons): the one-token shape's K split,
  // so each token's sums come in its one-token order.
  static const Q8Shape multi = env_shape("G4_CUDA_Q8_MULTI", Q8Shape{});
  static const Q8Shape multi_short = env_shape("G4_CUDA_Q8_MULTI_SHORT", Q8Shape{2, 1, 4, true});
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) rows += ws[i].rows;
  const Q8Shape one = rows <= 8192 ? shorts : all;
  if (T == 1) return one;
  // R = 0: gemv_q8_tc_kernel with the one-token shape's K split (launch_q8_t: on the layouts it is compiled for).
  const bool tc = tensor_cores_for_tokens(T, ws[0].zeros != nullptr) && (one.KS == 1 || one.KS == 4) && tc_layout_ok(ws, n);
  if (tc) return Q8Shape{0, 0, one.KS, false};
  return one.KS == 4 && one.pipe ? multi_short : multi;
}

template <class S, bool kAsym>
void launch_q8_t(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T, GemvTuning tu,
                 cudaStream_t s) {
  const Q8Shape v = pick_shape(ws, n, T, tu);
  if constexpr (kTunedLayout<S, kAsym>) {
    if (v.R == 0) {
      if (v.KS == 1) return launch_q8_tc_tokens<S, kAsym, 1>(ws, ys, n, xq, xd, T, s);
      return launch_q8_tc_tokens<S, kAsym, 4>(ws, ys, n, xq, xd, T, s);
    }
  }
  static const int env_prefetch = env_int("G4_CUDA_Q8_PREFETCH", 1);
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
  static const bool on = [] {
    const char* e = std::getenv("G4_CUDA_INT4_DP4A");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

size_t gemv_q8_x_bytes(const WeightDesc& w, int T) {
  return size_t(xq_slots(w)) * 16 * size_t(T) + size_t(n_chunks_padded(w)) * sizeof(float2) * size_t(T);
}

void gemv_q8_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s, const float* up) {
  G4_CHECK(T >= 1 && T <= kGemvQ8MaxT && gemv_q8_supported(w), "gemv_q8: int4 weight, 1..8 tokens");
  if (knocked_out(Knock::kQx)) return;
  const int nch_pad = n_chunks_padded(w);
  uint4* q = static_cast<uint4*>(xq);
  float2* d = reinterpret_cast<float2*>(q + xq_slots(w) * T);
  const int64_t n = int64_t(nch_pad) * T;
  launch(quantize_x_kernel, unsigned((n + 127) / 128), 128, 0, s, x, up, w.cols, int4_chunks(w), nch_pad, T, q, d);
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
