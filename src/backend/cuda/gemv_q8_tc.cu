// The integer GEMV of 2-8 tokens on the tensor cores (int8 mma), summed in the one-token kernel's order so
// that a verify or a batch equals one-token steps bit for bit. Its activation and weight layouts are those
// of gemv_q8.cu (q8_act.cuh, gemv_q8_common.cuh), which picks it per launch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env.h"
#include "backend/cuda/gemv_q8_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/mma_s8.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda::q8 {

namespace {

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
// Fewer tokens, fewer columns: every (row, chunk, token) sum costs three instructions after the mma (the
// integer's conversion and the scaling's two fmaf), which for 8 columns a chunk is most of the kernel's
// work. With TPG tokens a column group (8 or 4), the 8 columns hold 8 / TPG chunks of TPG tokens each:
// column n is token n % TPG of chunk n / TPG, B is zero in the columns of the other chunks, and the 8 / TPG
// mmas of one group of chunks add into one C. So a lane scales the sums of one chunk and two tokens per
// group, and a verify of 2-4 tokens pays for 4 columns, not 8.
constexpr int kTcTokens = 8, kTcSlots = 32;

// d += a (16 x 32 s8, row) * b (32 x 8 s8, col), int32.
__device__ __forceinline__ void mma_s8(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                       uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One stage of the shuffle butterfly as lane 0 sees it: v[l] (lane l's value) += v[l + O] (its partner's).
template <int O, int N>
__device__ __forceinline__ void butterfly_stage(float (&v)[N]) {
#pragma unroll
  for (int l = 0; l < O; ++l) v[l] = v[l] + v[l + O];
}

// The stages of offsets O, O / 2, ..., 1: with O = N / 2, v[0] = the sum of v[0 .. N - 1] in the butterfly's tree.
template <int O, int N>
__device__ __forceinline__ void butterfly_stages(float (&v)[N]) {
  if constexpr (O >= 1) {
    butterfly_stage<O>(v);
    butterfly_stages<O / 2>(v);
  }
}

// Half `hi` (0: low, 1: high) of a word of two 16-bit scales (bf16 or f16), as f32: one byte permute (and
// for f16 a conversion). kHiKnown: `hi` is known once the loops are unrolled (8 tokens a column group), and
// an f16 half converts in place, without the permute (a runtime `hi` would convert both halves and select).
template <class S, bool kHiKnown>
__device__ __forceinline__ float scale_half(uint32_t word, int hi) {
  static_assert(sizeof(S) == 2, "16-bit scales");
  if constexpr (std::is_same_v<S, __half> && kHiKnown) {
    const __half2 h = *reinterpret_cast<const __half2*>(&word);
    return hi ? __high2float(h) : __low2float(h);
  } else if constexpr (std::is_same_v<S, __half>) {
    return __half2float(__ushort_as_half(uint16_t(__byte_perm(word, 0, hi ? 0x4432 : 0x4410))));
  } else {
    return __uint_as_float(__byte_perm(word, 0, hi ? 0x3244 : 0x1044));  // bf16 << 16
  }
}

// What reaches the mma through shared memory: each warp streams its rounds with cp.async into a ring of
// ST buffers of its own, ST - 1 rounds ahead of the one it multiplies, across passes and tiles
// (so neither a round nor a tile's first round waits for DRAM). A round's buffer holds the code words of 4
// chunks of the tile's 32 rows (2 KB; ldmatrix hands lane (g, q) word q of chunks c0 .. c0 + 3 of row
// g + 8k in one instruction per k; chunk j of row r sits in 16-byte slot 4r + (j ^ ((r >> 1) & 3)), so that
// the 8 rows an ldmatrix matrix reads fall in 8 different bank groups), then each row's 4 scales and 4 zero
// points (16 bytes a row). The kernel takes group size 32 (a scale per chunk) and rows of a multiple of 4
// chunks (tc_layout_ok), so a round never runs past a row's end.
// ST (kTcStages): the ring's buffers, 2. While the rounds still read their activations with global loads,
// the ring's shared memory decided how much L1 kept them (H200, Q4_0: 4 buffers left 28 KiB of L1, 3 buffers
// 60 KiB, 8 sequences +4%; 2 buffers 92 KiB, +1.2% more). Then the activations went through the ring too
// (H100, Q4_0: 8 sequences 672 -> 789 tok/s, a verify of 4 at depth 512 1.27 -> 1.18 one-token steps; 3
// buffers again below 2; docs/PERF.md, thirtieth session). (64-row tiles, one block an SM: slower, dropped.)
// A round's buffer takes the int8 words of its 4 chunks for the TPG tokens (chunk j, token t: 32 bytes at
// (j TPG + t) 32, words 0-7 in order) and their {d, d sum(q)} pairs (token t's 4 at TPG 128 + 48 t: a stride
// of 6 pairs keeps the 4 tokens a load reads in different banks): they arrive with the weights, ST - 1
// rounds early, instead of global loads waiting on L1 (or L2) inside the round's critical path.
constexpr int kTcMT = 2;      // 16-row mma tiles a warp: a block's tile is 32 rows
constexpr int kTcStages = 2;  // ST, the ring's buffers

// A block's shared memory: each warp's ring (ST buffers of 32 rows' codes, scales and zero points and the
// TPG tokens' activations), then NB buffers of slot sums in TPG columns, one a token of a column group
// (with 8 columns for every TPG, the 4-token kernel took 108 KiB a block; with TPG, 68: H100, Q4_0, o at 4
// tokens 14.2 -> 13.2 us, down 29.9 -> 29.0, a verify of 4 at depth 512 1.164 -> 1.153 one-token steps).
template <int TPG, int NB>
struct TcLayout {
  static constexpr int kRows = 16 * kTcMT;
  static constexpr int kCodeBytes = kRows * 4 * 16;
  static constexpr int kXOffset = kCodeBytes + kRows * 16;  // the activations' part of a buffer
  static constexpr int kStageBytes = kXOffset + TPG * (4 * 32 + 48);
  static constexpr size_t kSmem =
      size_t(kWarps) * kTcStages * kStageBytes + sizeof(float) * kTcSlots * kRows * TPG * NB;
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

// NB: buffers of slot sums. With two, passes alternate between them and no barrier waits for a pass's sums
// to be read before the next pass writes (4 tokens, H100, Q4_0: o 13.5 -> 12.7 us, down 29.0 -> 28.2; a
// verify of 4 at depth 512 1.158 -> 1.152 one-token steps). 8 tokens keep one: a second (32 KiB) would leave
// one block an SM. (Summing each output's 32 slots in 2-4 threads with shuffles measured slower: dropped.)
// (One buffer with its barrier moved from after a pass's reads to just before the next pass's writes measured
// level or worse: H100, Q4_0, o at 4 / 8 tokens 12.6-12.7 / 16.2-16.4 -> 12.9-13.2 / 16.4-16.6 us.)
// (A short output's K-split passes spread over blocks, a block a pass of a tile and the last one adding the
// passes' sums in order, was bit-exact but slower, likely because a pass of o is 2 rounds a warp, too few to
// fill the ring. H100, Q4_0 at 4 tokens: o 12.7 -> 18.5 us, down 28.4 -> 38.3; a verify of 4 at depth 512
// 1.142 -> 1.270 one-token steps; the twelfth and twenty-sixth sessions' tries of it lost too. So did a ring
// of 3 buffers for them: H200, down 25.8 -> 27.7 us. Both dropped; docs/PERF.md.)
template <class S, bool kAsym, int KS, int TPG, int NB = 1>
__global__ void __launch_bounds__(kWarps * 32, 2) gemv_q8_tc_kernel(Segments segs, int64_t cols,
                                                                    const uint4* __restrict__ xq,
                                                                    const float2* __restrict__ xd, int nch_pad,
                                                                    int n_tok) {
  static_assert(kTcSlots == 4 * kWarps, "a pass is 4 slots a warp");
  static_assert(TPG == 4 || TPG == 8, "tokens a column group");
  static_assert(NB == 1 || NB == 2, "slot-sum buffers");
  constexpr int MT = kTcMT;
  constexpr int SC = TPG;  // the slot sums' columns: one a token of a column group
  using L = TcLayout<TPG, NB>;
  constexpr int kTcRows = L::kRows, kTcCodeBytes = L::kCodeBytes, kTcStageBytes = L::kStageBytes;
  constexpr int kSlots = 32 * KS;
  constexpr int kChunksPerGroup = kTcTokens / TPG, kGroups = 4 / kChunksPerGroup;  // per round of 4 chunks
  constexpr bool kHiKnown = kChunksPerGroup == 1;  // which half of a scale word a lane takes: known unrolled
  extern __shared__ uint4 tc_smem[];  // [warp][stage][kTcStageBytes], then slot_sums
  float* const slot_sums = reinterpret_cast<float*>(tc_smem + kWarps * kTcStages * kTcStageBytes / 16);  // [buf][slot][row][token]
  uint32_t passes = 0;  // passes done: which buffer of slot sums the next one takes
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  const int nch = int(cols / 32);  // = groups a row
  const int64_t n_tiles = segs.group_end[segs.n - 1];
  // B's column g: token g % TPG of chunk bc = g / TPG of a group; the outputs' columns 2q, 2q + 1: tokens t0,
  // t1 of chunk oc = 2q / TPG (past n_tok: the last token again, not stored).
  const int bc = g / TPG, oc = 2 * q / TPG;
  const int tb = min(g % TPG, n_tok - 1), t0 = min(2 * q % TPG, n_tok - 1), t1 = min((2 * q + 1) % TPG, n_tok - 1);

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
  // The activations of the round at chunk c0 into buffer buf: chunks c0 .. c0 + 3 of tokens 0 .. TPG - 1
  // (past n_tok: the last token again, as B's columns take it): copy e = 16-byte half h (words 0-3, 4-7) of
  // chunk j of token t; then the pairs, two copies a token.
  auto copy_x = [&](uint32_t buf, uint32_t c0) {
    const uint32_t xbuf = buf + L::kXOffset;
    const uint4* xc = xq + (c0 >> 5) * 64 + (c0 & 31);
#pragma unroll
    for (int e = lane; e < 8 * TPG; e += 32) {
      const int t = e >> 3, h = (e >> 2) & 1, j = e & 3;
      cp_async_ca16(xbuf + uint32_t(((j * TPG + t) * 2 + h) * 16), xc + int64_t(min(t, n_tok - 1)) * nch_pad * 2 + h * 32 + j);
    }
    if (lane < 2 * TPG) {
      const int t = lane >> 1, h = lane & 1;
      cp_async_ca16(xbuf + uint32_t(TPG * 128 + t * 48 + h * 16), xd + int64_t(min(t, n_tok - 1)) * nch_pad + c0 + 2 * h);
    }
  };
  uint32_t issued = 0;  // rounds issued and consumed (unsigned: the ring index is a mask or a cheap modulo)
  // with_x: the round's activations too; the rounds issued before grid_dependency_sync() leave them out
  // (the previous kernel writes them) and take them in groups of their own after it.
  auto issue = [&](bool with_x) {
    if (pc.tile < n_tiles) {
      const uint32_t buf = ring + (issued % kTcStages) * kTcStageBytes;
      // Offsets in 32 bits (a weight's chunks number below 2^31, tc_layout_ok): one add and one wide
      // multiply-add an address instead of 64-bit arithmetic.
      const uint32_t cq = uint32_t(pc.c0 + q), c0 = uint32_t(pc.c0);
#pragma unroll
      for (int k = 0; k < 2 * MT; ++k) {
        const int r = g + 8 * k;
        cp_async<16>(buf + uint32_t(4 * r + (q ^ ((r >> 1) & 3))) * 16, pc.codes + (uint32_t(pc.wo[k]) + cq));
      }
#pragma unroll
      for (int i = 0; i < MT / 2; ++i) {
        const uint32_t at = buf + kTcCodeBytes + uint32_t(lane + 32 * i) * 16;
        cp_async<8>(at, pc.scales + (uint32_t(pc.so[i]) + c0));
        if constexpr (kAsym) cp_async<8>(at + 8, pc.zeros + (uint32_t(pc.so[i]) + c0));
      }
      if (with_x) copy_x(buf, c0);
      pc.c0 += kSlots;
      settle();
    }
    cp_async_commit();
    ++issued;
  };
  enter_tile();
  settle();
  // The first rounds' weights before waiting for the previous kernel: weights are written by no kernel
  // (launch.cuh). Their activations after it, one commit group a round: ST - 1 more groups in front of the
  // loop's, so its wait (all but the newest ST - 1 groups) still covers round k's two groups (k and ST - 1 + k
  // for k < ST - 1).
  int early_c0[kTcStages - 1];
#pragma unroll
  for (int i = 0; i < kTcStages - 1; ++i) {
    early_c0[i] = pc.tile < n_tiles ? pc.c0 : -1;
    issue(false);
  }
  grid_dependency_sync();
#pragma unroll
  for (int i = 0; i < kTcStages - 1; ++i) {
    if (early_c0[i] >= 0) copy_x(ring + uint32_t(i) * kTcStageBytes, uint32_t(early_c0[i]));
    cp_async_commit();
  }

  uint32_t consumed = 0;
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    int64_t row0;
    const int sg = locate_group(segs, tile, kTcRows, row0);
    const int64_t rows = pick(sg, segs.rows);
    // The block's outputs (row * SC + token), one a thread: output threadIdx.x + 256 i. Below 8 tokens they
    // number fewer than the threads, and the rest sit the sums out.
    constexpr int kOutputs = kTcRows * SC, kThreads = kWarps * 32;
    constexpr int kOut = (kOutputs + kThreads - 1) / kThreads;
    const bool outputs = kOutputs >= kThreads || int(threadIdx.x) < kOutputs;
    float y[kOut] = {};
    for (int p = 0; p < KS; ++p) {
      const int slot0 = kTcSlots * p + 4 * warp;
      float* const slot_sum = slot_sums + (passes++ % NB) * (kTcSlots * kTcRows * SC);
      float acc[MT][kGroups][4];  // [rows 16h ..][group][row g / g + 8, token t0 / t1]: slot 4w + group's oc
#pragma unroll
      for (int h = 0; h < MT; ++h)
#pragma unroll
        for (int i = 0; i < kGroups; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[h][i][j] = 0.f;
      for (int c0 = slot0; c0 < nch; c0 += kSlots) {  // the same for the whole warp (ldmatrix)
        __syncwarp();  // every lane is done with the buffer that the next issue overwrites
        issue(true);
        cp_async_wait<kTcStages - 1>();  // round `consumed` has landed (this lane's part)
        __syncwarp();                          // (and every lane's)
        const uint32_t buf = ring + (consumed % kTcStages) * kTcStageBytes;
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
          // B: this lane's column's x words (chunk c0 + gr * kChunksPerGroup + bc), given to the group's mma of
          // that chunk and zero to the others.
          const int i = gr * kChunksPerGroup + oc;  // the chunk this lane scales (c0 + i), its index in the round
          const uint32_t xbuf = buf + L::kXOffset;
          const uint2 x = lds64(xbuf + uint32_t(((gr * kChunksPerGroup + bc) * TPG + tb) * 32 + 8 * q));
          const uint2 d0 = lds64(xbuf + uint32_t(TPG * 128 + t0 * 48 + i * 8));
          const uint2 d1 = lds64(xbuf + uint32_t(TPG * 128 + t1 * 48 + i * 8));
          const float2 e0 = make_float2(__uint_as_float(d0.x), __uint_as_float(d0.y));
          const float2 e1 = make_float2(__uint_as_float(d1.x), __uint_as_float(d1.y));
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
            const float sa = scale_half<S, kHiKnown>(wi ? pa.y : pa.x, hi);
            const float sb = scale_half<S, kHiKnown>(wi ? pb.y : pb.x, hi);
            const float za = kAsym ? scale_half<S, kHiKnown>(wi ? pa.w : pa.z, hi) : 8.f;
            const float zb = kAsym ? scale_half<S, kHiKnown>(wi ? pb.w : pb.z, hi) : 8.f;
            acc[h][gr][0] = fmaf(sa, fmaf(e0.x, __int2float_rn(d[0]), -za * e0.y), acc[h][gr][0]);
            acc[h][gr][1] = fmaf(sa, fmaf(e1.x, __int2float_rn(d[1]), -za * e1.y), acc[h][gr][1]);
            acc[h][gr][2] = fmaf(sb, fmaf(e0.x, __int2float_rn(d[2]), -zb * e0.y), acc[h][gr][2]);
            acc[h][gr][3] = fmaf(sb, fmaf(e1.x, __int2float_rn(d[3]), -zb * e1.y), acc[h][gr][3]);
          }
        }
      }
      // Slot 4w + i of this pass: tokens t0, t1 (columns 2q, 2q + 1 of chunk oc of each group).
#pragma unroll
      for (int gr = 0; gr < kGroups; ++gr) {
        float* o = slot_sum + (4 * warp + gr * kChunksPerGroup + oc) * kTcRows * SC;
        const int u0 = 2 * q % TPG, u1 = u0 + 1;
#pragma unroll
        for (int h = 0; h < MT; ++h) {
          o[(16 * h + g) * SC + u0] = acc[h][gr][0];
          o[(16 * h + g) * SC + u1] = acc[h][gr][1];
          o[(16 * h + g + 8) * SC + u0] = acc[h][gr][2];
          o[(16 * h + g + 8) * SC + u1] = acc[h][gr][3];
        }
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < kOut; ++i) {
        if (!outputs) break;
        const int e = int(threadIdx.x) + kThreads * i;
        float v[32];
#pragma unroll
        for (int m = 0; m < 32; ++m) v[m] = slot_sum[m * kTcRows * SC + e];
        butterfly_stages<16>(v);
        if constexpr (KS == 1) y[i] = v[0];
        else y[i] += v[0];
      }
      if constexpr (NB == 1) __syncthreads();  // (two buffers: the next pass's barrier is after this one's reads)
    }
#pragma unroll
    for (int i = 0; i < kOut; ++i) {
      const unsigned e = threadIdx.x + unsigned(kThreads * i);
      const int r = int(e / SC), t = int(e % SC);
      if (outputs && row0 + r < rows && t < n_tok) pick(sg, segs.y)[t * rows + row0 + r] = y[i];
    }
  }
}

template <class S, bool kAsym, int KS, int TPG, int NB = 1>
void launch_q8_tc_ring(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T,
                       cudaStream_t s) {
  using L = TcLayout<TPG, NB>;
  auto kernel = gemv_q8_tc_kernel<S, kAsym, KS, TPG, NB>;
  static const int64_t resident = [&] {
    G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::kSmem)));
    return resident_blocks(kernel, kWarps * 32, L::kSmem);
  }();
  const Segments sg = make_segments(ws, ys, n, L::kRows);
  // Even rounds (grid.h) up to 4 tokens: H100, Q4_0, a verify of 4 at depth 512 1.128 -> 1.111 one-token
  // steps, of 2 1.085 -> 1.059, 4 sequences +1.2% (gate/up: 1,344 tiles, 224 blocks of 6 instead of 264
  // whose sixth round runs 24). G4_CUDA_TC_EVEN: 0 the one-wave grid always, 2 even rounds for 5-8 tokens too.
  static const int even = env_int("G4_CUDA_TC_EVEN", 1);
  const int64_t blocks = stride_blocks_for(resident, sg.group_end[n - 1], /*even=*/even == 2 || (even == 1 && TPG == 4));
  launch(kernel, unsigned(blocks), kWarps * 32, L::kSmem, s, sg, ws[0].cols, xq, xd, n_chunks_padded(ws[0]), T);
}

// The tensor-core kernel for T tokens: 4 tokens a column group up to 4, else 8. (A 2-token kernel, 2 columns a
// chunk, ran slower at 2 tokens than the 4-token kernel (H100: Q4_0 2 sequences 214.9 -> 218.6 tok/s, a verify
// of 2 at depth 512 1.113 -> 1.100 one-token steps; g4's int4 2 sequences 180 -> 196): dropped.)
template <class S, bool kAsym, int KS>
void launch_q8_tc_tokens(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T,
                         cudaStream_t s) {
  if (T <= 4) return launch_q8_tc_ring<S, kAsym, KS, 4, 2>(ws, ys, n, xq, xd, T, s);  // two slot-sum buffers
  launch_q8_tc_ring<S, kAsym, KS, 8>(ws, ys, n, xq, xd, T, s);
}

}  // namespace

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

template <class S, bool kAsym>
void launch_tc(const WeightDesc* ws, float* const* ys, int n, const uint4* xq, const float2* xd, int T, int KS,
               cudaStream_t s) {
  if (KS == 1) return launch_q8_tc_tokens<S, kAsym, 1>(ws, ys, n, xq, xd, T, s);
  G4_CHECK(KS == 4, "gemv_q8_tc: K split " + std::to_string(KS) + " is not compiled (1 or 4)");
  launch_q8_tc_tokens<S, kAsym, 4>(ws, ys, n, xq, xd, T, s);
}

// The tuned layouts (kTunedLayout): g4's int4 with and without zero points, and Q4_0's.
template void launch_tc<__nv_bfloat16, true>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                             cudaStream_t);
template void launch_tc<__nv_bfloat16, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int,
                                              int, cudaStream_t);
template void launch_tc<__half, false>(const WeightDesc*, float* const*, int, const uint4*, const float2*, int, int,
                                       cudaStream_t);

}  // namespace g4::cuda::q8
