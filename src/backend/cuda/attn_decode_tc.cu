// Decode attention on the tensor cores (bf16 cache, head dims 256/512, GQA groups up to 8).
// The same split-K work as attention.cu's group kernel (one block a query row, KV head and slice of the
// visible keys; the same split count, partial outputs and merge), but the products run as bf16 mma
// m16n8k16 with f32 sums, so a block no longer issues a shared-memory load of the query for every 4 FMAs:
//   scores  S^T [16 keys x 8 heads] = K [16 keys x D] . Q^T, a warp per 16 keys and a quarter of the head
//           dims of a 32-key tile (the quarters added in order before the softmax);
//   outputs O^T [D x 8 heads] += V^T [D x 32 keys] . P^T, a warp per eighth of the head dims.
// The group's heads are the mma's 8 columns (zero past the group). Key and value rows come from the tile's
// shared-memory copy (below), 16 bytes a lane: which head dims a fragment slot stands for is a free choice as
// long as the query (scores) and the output (P.V) use the same one, so a lane's 8 contiguous values feed two
// mmas (scores) or, transposed in registers by movmatrix, the dims x keys fragments of V^T (outputs).
// Derived keys (K=V layers storing V only, a.kw set, pairs a multiple of 8): a dim RoPE leaves alone scores
// V_j (q_j kw_j), the query folded into the key's weight (one bf16 part of V, exact); a lane whose 8 dims are
// rotated forms its keys in f32 from V, its partner dims, kw and the key's {cos, sin} row as the host does
// (attention.cu derived_key_at) and feeds them in three bf16 parts.
// Precision: the cache is bf16 already (exact in the products); the query and the probabilities are split
// into three bf16 parts each (hi + mid + lo: their 24 bits), so every product is the f32 one up to the
// tensor core's f32 summation. A fresh row (f32, this step's own keys and values) is rounded to bf16 as
// the cache will hold it, so a verify or a batch gives each query its one-token result bit for bit.
#include <cfloat>
#include <cstdint>
#include <cuda_bf16.h>

#include "backend/cuda/attn_rows.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/pack2.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda {

namespace {

constexpr int kWarpsTc = 8, kThreadsTc = 32 * kWarpsTc;
constexpr int kTileTc = 32;             // keys a tile: two 16-key m-tiles of scores
constexpr int kParts = 3;               // bf16 parts of the query and of the probabilities
constexpr int kCols = 8;                // the mma's N: heads of the group, zero past it

__device__ __forceinline__ void mma_bf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm(  // not volatile: the compiler may move it among the loads
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The 8 x 8 b16 matrix whose fragment the warp holds (lane: row lane / 4, cols 2 (lane % 4) + {0, 1}),
// transposed.
__device__ __forceinline__ uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// Values d .. d + 7 of a fresh f32 row as 4 bf16 pairs, rounded as the cache will hold them, or zeros (no
// row: past the split's keys).
__device__ __forceinline__ uint4 fresh8(const void* row, int d) {
  if (!row) return make_uint4(0u, 0u, 0u, 0u);
  const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(row) + d);
  const float4 x = p[0], y = p[1];
  return make_uint4(pack2<__nv_bfloat16>(x.x, x.y), pack2<__nv_bfloat16>(x.z, x.w), pack2<__nv_bfloat16>(y.x, y.y),
                    pack2<__nv_bfloat16>(y.z, y.w));
}

// x as three bf16 parts whose sum is x to f32 precision.
__device__ __forceinline__ void split3(float x, __nv_bfloat16 (&p)[kParts]) {
#pragma unroll
  for (int i = 0; i < kParts; ++i) {
    p[i] = __float2bfloat16_rn(x);
    x -= __bfloat162float(p[i]);
  }
}

// The same for two values at once, each part packed as a bf16 pair (x low, y high): one conversion
// instruction a pair and part instead of one a value.
__device__ __forceinline__ void split3_pair(float x, float y, uint32_t (&p)[kParts]) {
#pragma unroll
  for (int i = 0; i < kParts; ++i) {
    p[i] = pack2<__nv_bfloat16>(x, y);
    float back[2];
    bf16x2_to_f32(p[i], back);
    x -= back[0], y -= back[1];
  }
}

// A block's tiles of kTileTc keys pass through shared memory: while it multiplies tile i, the cp.async copies
// of tile i + 1's rows are in flight (kStages buffers), so DRAM streams during the products and the softmax,
// and a value row read for the derived keys serves P.V too. A buffer holds [kTileTc][D + 32] bf16 (the key
// rows, then the value rows when keys are stored; a row 64 bytes past a multiple of 128, so the two rows an
// 8-lane phase of 16-byte loads reads fall in different bank groups). A fresh row (f32) is rounded and stored
// by the thread that stages it; rows past the split's keys are zeros.
constexpr int kStages = 2;
constexpr int kDimParts = kWarpsTc / 2;  // scores: a warp per 16 keys and a quarter of the head dims
static_assert(kWarpsTc == kCols, "the softmax takes a column a warp");
// Packed rows (kPack, below): a stage holds kMaxShift key rows more than a tile, for the rows whose slice
// starts up to kMaxShift keys after the pack's first row's.
constexpr int kMaxShift = 4;
template <int D, bool kDerived, bool kPack = false>
struct TcSmem {
  static constexpr int R = kTileTc + (kPack ? kMaxShift : 0);  // key rows of a stage
  static constexpr int MT = (R + 15) / 16;                     // 16-key m-tiles of the scores
  static constexpr int QS = D + 32, RS = D + 32, SS = 16 * MT + 4, PS = kTileTc + 8;
  static constexpr int kBufRows = (kDerived ? 1 : 2) * R;  // rows of one stage: keys, then values
  static constexpr size_t q_bytes = size_t(kParts * kCols * QS) * 2;
  static constexpr size_t stage_bytes = size_t(kBufRows * RS) * 2;
  // query parts, stages, scores [kDimParts][kCols][SS] f32, probability parts [kParts][kCols][PS] bf16,
  // running max, sum and rescale factor per column
  static constexpr size_t bytes = q_bytes + kStages * stage_bytes + size_t(kDimParts * kCols * SS) * 4 +
                                  size_t(kParts * kCols * PS) * 2 + size_t(3 * kCols) * 4;
  // static shared memory: the stages' row pointers (srow in the kernel) and the pack's slices (rks, rke)
  static constexpr size_t static_bytes = size_t(kStages) * kBufRows * sizeof(void*) + 2 * kCols * sizeof(int64_t);
  static constexpr size_t block_bytes = bytes + static_bytes;  // all of a block's shared memory
};

// Keys d .. d + 7 of the key at position pk derived from its value row in shared memory (d mod D/2 <
// a.pairs: rotated dims), in f32 with the products and sums rounded one by one as derived_key_at
// (attention.cu) and the host do, returned as three bf16 parts packed in pairs (k[part]: words 0-3 hold dims
// d .. d + 7 in pairs); zeros for a row past the split's keys (!in: pk may lie past the table).
template <int D>
__device__ __forceinline__ void derived_keys8(const AttnArgs& a, const __nv_bfloat16* row, bool in, int64_t pk, int d,
                                              uint4 (&k)[kParts]) {
  constexpr int half = D / 2;
  if (!in) {
#pragma unroll
    for (int i = 0; i < kParts; ++i) k[i] = make_uint4(0u, 0u, 0u, 0u);
    return;
  }
  float own[8], partner[8];
  const int dp = d < half ? d + half : d - half;
  const uint4 wo = *reinterpret_cast<const uint4*>(row + d), wp = *reinterpret_cast<const uint4*>(row + dp);
  const uint32_t wov[4] = {wo.x, wo.y, wo.z, wo.w}, wpv[4] = {wp.x, wp.y, wp.z, wp.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) bf16x2_to_f32(wov[w], own + 2 * w), bf16x2_to_f32(wpv[w], partner + 2 * w);
  // kw and the {cos, sin} row in 16-byte loads (d and pairs are multiples of 8, both tables 16-byte aligned: suits)
  const float4* cs4 = reinterpret_cast<const float4*>(a.rope_cs + (pk * a.pairs + d % half) * 2);
  const float4* kwo = reinterpret_cast<const float4*>(a.kw + d);
  const float4* kwp = reinterpret_cast<const float4*>(a.kw + dp);
  float wown[8], wpart[8], csv[16];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float4 o = __ldg(kwo + i), q = __ldg(kwp + i);
    wown[4 * i] = o.x, wown[4 * i + 1] = o.y, wown[4 * i + 2] = o.z, wown[4 * i + 3] = o.w;
    wpart[4 * i] = q.x, wpart[4 * i + 1] = q.y, wpart[4 * i + 2] = q.z, wpart[4 * i + 3] = q.w;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float4 c = __ldg(cs4 + i);
    csv[4 * i] = c.x, csv[4 * i + 1] = c.y, csv[4 * i + 2] = c.z, csv[4 * i + 3] = c.w;
  }
  float key[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const float x = __fmul_rn(own[e], wown[e]), y = __fmul_rn(partner[e], wpart[e]);
    const float2 r = make_float2(csv[2 * e], csv[2 * e + 1]);
    key[e] = d < half ? __fsub_rn(__fmul_rn(x, r.x), __fmul_rn(y, r.y)) : __fadd_rn(__fmul_rn(x, r.x), __fmul_rn(y, r.y));
  }
  uint32_t w[4][kParts];
#pragma unroll
  for (int e = 0; e < 4; ++e) split3_pair(key[2 * e], key[2 * e + 1], w[e]);
#pragma unroll
  for (int i = 0; i < kParts; ++i) k[i] = make_uint4(w[0][i], w[1][i], w[2][i], w[3][i]);
}

// Packs of up to `per` consecutive rows of one sequence in the table (each sequence's rows cut from its
// first), and the first row of pack y.
int64_t packs(const SeqTable& st, int per) {
  int64_t n = 0;
  for (int i = 0; i < st.n; ++i) n += (st.e[i].n + per - 1) / per;
  return n;
}
__device__ __forceinline__ int64_t pack_first_row(const SeqTable& st, int64_t y, int per) {
  for (int i = 0; i + 1 < st.n; ++i) {
    const int64_t n = (st.e[i].n + per - 1) / per;
    if (y < n) return st.e[i].row0 + y * per;
    y -= n;
  }
  return st.e[st.n - 1].row0 + y * per;
}

// Packing (kPack, verify steps: several query rows of one sequence). A sliding layer of the 31B has G = 2
// heads a KV head, so a one-row block leaves 6 of the mma's 8 columns empty and the 4 rows of a verify
// each stage the same keys. A packed block takes kCols / G consecutive rows of one sequence (the pack; the
// grid's y counts packs) and gives them the columns, row u of the pack columns G u .. G u + G - 1.
// Every row keeps its own slicing (split_keys of its position) and the same tiles of it: row u's tile i is
// keys [ks_u + 32 i, ..), which sit in the stage at offset ks_u - ks_0 (0 .. kMaxShift: a stage holds
// kTileTc + kMaxShift rows, the scores three m-tiles). So each row's sums are those of a one-row block:
//   scores: a key's score is the same mma element whichever m-row holds it;
//   softmax: column j reads its own keys from its offset, lane l = key l of its tile as alone;
//   P.V: one mma set per distinct offset, V rows read from that offset, the B columns of rows at other
//   offsets zero (a product of zero columns adds exact zeros to the accumulator, rescales by exactly 1);
//   a row whose tile i is empty (its slice ended) sees a fully masked tile: m, l and its sums unchanged.
// Rows whose slices start more than kMaxShift keys apart (a window still filling where the slice length
// changes between positions: rarely, since slices are whole tiles, split_keys) go in sub-packs of their own,
// one after the other in the block.
//
// grid (Hkv, T rows or their packs, n_split); scratch as attention.cu's split kernels: part [T, Hq, n_split,
// D], ml [T, Hq, n_split, 2]. kDerived: keys derived from the value rows (a.kw). The first tile's cached rows
// are copied before the wait for the previous kernel (H200, 60-layer Q4_0: +0.7% a token at depth 0 and at
// 16,384, one sequence or eight; docs/PERF.md).
template <int D, bool kDerived, bool kPack>
__global__ void __launch_bounds__(kThreadsTc, 2) decode_tc_kernel(AttnArgs a, int n_split, float* part, float* ml) {
  static_assert(!(kPack && kDerived), "packed rows take stored keys");
  using L = TcSmem<D, kDerived, kPack>;
  constexpr int QS = L::QS, RS = L::RS, PS = L::PS, SS = L::SS, R = L::R;
  constexpr int DW = D / kWarpsTc;  // head dims a warp owns in P.V, 32 a group (two 16-dim m-tiles)
  static_assert(DW % 32 == 0, "head dims of 256 or 512");
  constexpr int NB = D / 32;        // 32-dim chunks of a row (scores: a lane 8 dims of each)
  constexpr int CPR = D / 8;        // 16-byte chunks a row
  extern __shared__ float4 tc_sm[];
  __nv_bfloat16* qsm = reinterpret_cast<__nv_bfloat16*>(tc_sm);
  __nv_bfloat16* stages = qsm + kParts * kCols * QS;
  float* sc = reinterpret_cast<float*>(stages + kStages * L::kBufRows * RS);
  __nv_bfloat16* psm = reinterpret_cast<__nv_bfloat16*>(sc + kDimParts * kCols * SS);
  float* mrow = reinterpret_cast<float*>(psm + kParts * kCols * PS);
  float* lrow = mrow + kCols;
  float* frow = lrow + kCols;
  __shared__ const void* srow[kStages][L::kBufRows];  // the rows a stage copies (null: past the keys)
  __shared__ int64_t rks[kCols], rke[kCols];          // the pack's rows' slices of this split
  static_assert(sizeof(srow) + sizeof(rks) + sizeof(rke) == L::static_bytes, "TcSmem counts the static arrays");

  const int64_t g = blockIdx.x, split = blockIdx.z;
  const int G = int(a.Hq / a.Hkv);
  // The block's rows: t .. t + np - 1 (np = 1 without packing; blockIdx.y a pack, pack_first_row).
  const int per_pack = kPack ? kCols / G : 1;
  const int64_t t = kPack ? pack_first_row(a.seqs, blockIdx.y, per_pack) : blockIdx.y;
  const RowSeq rs = row_seq(a, t);
  const int np = kPack ? min(per_pack, rs.n - rs.i) : 1;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, cq = lane & 3;
  // Column j: head g G + col_head(j) of the sub-pack's row u0 + col_row(j) (packed: G = 2^gs; else row t).
  const int gs = kPack ? __ffs(G) - 1 : 0;
  auto col_row = [&](int j) { return kPack ? j >> gs : 0; };
  auto col_head = [&](int j) { return kPack ? j & (G - 1) : j; };
  int64_t ks1 = 0, ke1 = 0;  // without packing: the row's slice
  if (kPack ? tid < np : true) {
    int64_t lo, hi;
    key_range(a, rs.pq + (kPack ? tid : 0), &lo, &hi);
    const SplitKeys sk = split_keys(a, lo, hi, n_split, int(split));
    if (kPack) rks[tid] = sk.ks, rke[tid] = sk.ke;
    else ks1 = sk.ks, ke1 = sk.ke;
  }
  if (kPack) __syncthreads();
  // A split past the keys of every row of the block writes nothing and is done (the merge reads only live
  // splits): at shallow depths in a large cache most blocks of a verify or a batch are such splits.
  // Whether row u of the block (u < np) has keys in this split: its (m, l) and outputs are written only then.
  auto row_live = [&](int u) { return kPack ? rks[u] < rke[u] : ks1 < ke1; };
  bool live = false;
  for (int u = 0; u < np; ++u) live = live || row_live(u);
  if (empty_split_done(!live)) return;

  for (int u0 = 0, u1 = 1; u0 < np; u0 = u1) {
    // The sub-pack [u0, u1): rows whose slices start within kMaxShift keys of row u0's (ks nondecreasing).
    int64_t ks = ks1, ke = ke1;  // the sub-pack's first key, and its last key plus one
    int ntiles = ke1 > ks1 ? int((ke1 - ks1 + kTileTc - 1) / kTileTc) : 0;  // tiles of the longest slice
    if constexpr (kPack) {
      u1 = u0 + 1;
      while (u1 < np && rks[u1] - rks[u0] <= kMaxShift) ++u1;
      ks = rks[u0], ke = rke[u0], ntiles = 0;
      for (int u = u0; u < u1; ++u) {
        ke = max(ke, rke[u]);
        ntiles = max(ntiles, int((max(rke[u] - rks[u], int64_t(0)) + kTileTc - 1) / kTileTc));
      }
    }
    const int ncols = (u1 - u0) * G;
    const int nstage = kPack ? kTileTc + int(rks[u1 - 1] - ks) : kTileTc;  // key rows a stage takes (the rest never read)

    // Stage row r's key in the tile (stored keys: R key rows, then R value rows).
    auto key_of = [&](int r) { return r < R ? r : r - R; };
    // The rows of the tile at k0 (one thread a row) for stage st.
    auto find_rows = [&](int64_t k0, int st) {
      if (tid < L::kBufRows) {
        const int j = key_of(tid);
        const int64_t pk = k0 + j;
        const bool val = kDerived || tid >= R;
        srow[st][tid] = pk >= ke || j >= nstage ? nullptr
                        : val                   ? key_row<__nv_bfloat16>(a, rs, rs.v, rs.cv, pk, g)
                                                : key_row<__nv_bfloat16>(a, rs, rs.k, rs.ck, pk, g);
      }
    };
    // Stage st's copies of the tile at k0 (after find_rows and a barrier), one commit group. Warp w copies
    // the stage's rows w, w + kWarpsTc, ... (pass i: row w + kWarpsTc i), a lane 16 bytes of each 512-byte run, so
    // a row's kind (cached: cp.async; this step's own or past the split's keys: rounded or zeros) is the
    // warp's and the passes unroll. rows: kAll, or the first tile in two steps: kCached (the rows earlier
    // steps cached, before the wait) returns the passes it left, which kRest (this step's own rows and the
    // zeros, after it) takes before the commit.
    enum Rows { kAll, kCached, kRest };
    constexpr int kRowPasses = (L::kBufRows + kWarpsTc - 1) / kWarpsTc;
    static_assert(kRowPasses <= 32 && CPR % 32 == 0, "a bit a pass; whole 512-byte runs a row");
    auto stage_tile = [&](int64_t k0, int st, Rows rows, uint32_t left = 0u) -> uint32_t {
      __nv_bfloat16* buf = stages + st * L::kBufRows * RS;
      auto copy_row = [&](int r, const void* src, bool cached) {
#pragma unroll
        for (int cc = 0; cc < CPR / 32; ++cc) {
          const int c = lane + 32 * cc;
          __nv_bfloat16* dst = buf + r * RS + 8 * c;
          if (cached) cp_async<16>(smem_addr(dst), static_cast<const __nv_bfloat16*>(src) + 8 * c);
          else *reinterpret_cast<uint4*>(dst) = fresh8(src, 8 * c);
        }
      };
      if (rows == kRest) {
        for (; left; left &= left - 1) {
          const int r = warp + kWarpsTc * (__ffs(int(left)) - 1);
          copy_row(r, srow[st][r], false);
        }
      } else {
#pragma unroll
        for (int i = 0; i < kRowPasses; ++i) {
          const int r = warp + kWarpsTc * i;
          if (L::kBufRows % kWarpsTc != 0 && r >= L::kBufRows) break;
          const int j = key_of(r);
          if (kPack && j >= nstage) continue;
          const void* src = srow[st][r];
          const bool cached = src && k0 + j < rs.p0;
          if (rows == kCached && !cached) left |= 1u << i;
          else copy_row(r, src, cached);
        }
      }
      if (rows == kCached) return left;
      cp_async_commit();
      if constexpr (kDerived) {
        // The tile's {cos, sin} rows (8 bytes a rotated pair: 512 bytes a key for the 31B, a 32 MB table at
        // 65,536 keys) asked of L2 a tile ahead: derived_keys8 reads them synchronously inside the scores
        // (H200, 65,536 keys: 189 -> 180 us a layer).
        const int lines = (a.pairs * 8 + 127) / 128;
        for (int e = tid; e < kTileTc * lines; e += kThreadsTc) {
          const int64_t pk = k0 + e / lines;
          if (pk < ke) prefetch_l2(reinterpret_cast<const char*>(a.rope_cs) + pk * a.pairs * 8 + (e % lines) * 128);
        }
      }
      return 0u;
    };

    // The first tile's copies go out before the query is staged: its cached rows before the wait for the
    // previous kernel (launch.cuh: rows of positions before the step's, which this step's kernels do not
    // write), its fresh rows after it. (A later sub-pack waits on nothing.)
    if (ntiles > 0) find_rows(ks, 0);
    __syncthreads();
    const uint32_t left = ntiles > 0 ? stage_tile(ks, 0, kCached) : 0u;
    if (u0 == 0) grid_dependency_sync();
    if (ntiles > 0) stage_tile(ks, 0, kRest, left);
    // The query: a thread 8 dims of a column a pass (two 16-byte loads, three 16-byte stores of its parts),
    // the loads of every pass issued before the first conversion.
    {
      constexpr int kPasses = kCols * D / 8 / kThreadsTc;
      static_assert(kPasses * kThreadsTc * 8 == kCols * D, "whole passes of 8-dim chunks");
      // Derived keys: dims RoPE leaves alone take q_d kw_d (pairs % 8 == 0), kw loaded beside the query.
      float4 x[kPasses][2], w8[kPasses][2];
#pragma unroll
      for (int i = 0; i < kPasses; ++i) {
        const int e = tid + i * kThreadsTc, j = e / (D / 8), d = 8 * (e % (D / 8));
        x[i][0] = x[i][1] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (j < ncols) {
          const float4* src =
              reinterpret_cast<const float4*>(a.q + ((t + u0 + col_row(j)) * a.Hq + g * G + col_head(j)) * D + d);
          x[i][0] = src[0], x[i][1] = src[1];
        }
        if (kDerived && d % (D / 2) >= a.pairs) {
          const float4* kw = reinterpret_cast<const float4*>(a.kw + d);
          w8[i][0] = __ldg(kw), w8[i][1] = __ldg(kw + 1);
        }
      }
#pragma unroll
      for (int i = 0; i < kPasses; ++i) {
        const int e = tid + i * kThreadsTc, j = e / (D / 8), d = 8 * (e % (D / 8));
        float v[8] = {x[i][0].x, x[i][0].y, x[i][0].z, x[i][0].w, x[i][1].x, x[i][1].y, x[i][1].z, x[i][1].w};
        if (kDerived && d % (D / 2) >= a.pairs) {
          const float kw[8] = {w8[i][0].x, w8[i][0].y, w8[i][0].z, w8[i][0].w,
                               w8[i][1].x, w8[i][1].y, w8[i][1].z, w8[i][1].w};
#pragma unroll
          for (int k = 0; k < 8; ++k) v[k] = __fmul_rn(v[k], kw[k]);
        }
        uint32_t w[4][kParts];
#pragma unroll
        for (int k = 0; k < 4; ++k) split3_pair(v[2 * k], v[2 * k + 1], w[k]);
#pragma unroll
        for (int p = 0; p < kParts; ++p)
          *reinterpret_cast<uint4*>(qsm + (p * kCols + j) * QS + d) = make_uint4(w[0][p], w[1][p], w[2][p], w[3][p]);
      }
    }
    if (tid < kCols) mrow[tid] = -FLT_MAX, lrow[tid] = 0.f;
    float acc[DW / 16][4];
#pragma unroll
    for (int m = 0; m < DW / 16; ++m) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.f;
    // Packed rows, read once a sub-pack: the softmax column's (warp's) row's offset in the stage and slice
    // length; the stage offsets P.V takes (a bit each) and the one of B column gq's row (-1: past the pack).
    int sm_off = 0, sm_len = 0, pv_mine = -1;
    uint32_t pv_offs = 1u;
    if constexpr (kPack) {
      if (warp < ncols) {
        const int u = u0 + col_row(warp);
        sm_off = int(rks[u] - ks), sm_len = int(max(rke[u] - rks[u], int64_t(0)));
      }
      if (gq < ncols) pv_mine = int(rks[u0 + col_row(gq)] - ks);
      for (int u = u0 + 1; u < u1; ++u) pv_offs |= 1u << int(rks[u] - ks);
    }
    __syncthreads();

    int st = 0;
    for (int it = 0; it < ntiles; ++it, st ^= 1) {
      const int64_t k0 = ks + int64_t(it) * kTileTc;
      const bool more = it + 1 < ntiles;
      if (more) find_rows(k0 + kTileTc, st ^ 1);
      cp_async_wait<0>();  // this tile's copies (this thread's; the only ones in flight) have landed
      __syncthreads();     // and every thread's; the next stage's rows are known, every warp is done with its buffer
      if (more) stage_tile(k0 + kTileTc, st ^ 1, kAll);
      const __nv_bfloat16* kbuf = stages + st * L::kBufRows * RS;
      const __nv_bfloat16* vbuf = kDerived ? kbuf : kbuf + R * RS;
      // Scores of m-tile mt (keys 16 mt .. 16 mt + 15 of the stage): warp w takes keys 16 mt + gq (mma rows
      // gq) and + 8 (rows gq + 8) over the chunks of 32 dims b = 4 i + (dq + i) % 4 (dq = w >> 1), which gives
      // each dim quarter its share of the rotated chunks (the first of each half of the head: b = 0, 1 and 8,
      // 9 for the 31B). Lane cq's 8 values at d feed the k slots {2cq, 2cq + 1, 2cq + 8, 2cq + 9} of two mmas
      // (d .. d + 3, then d + 4 .. d + 7), and the query's B fragment takes the same dims.
      auto scores = [&](int mt) {
        const int r0 = 16 * mt + gq, r1 = r0 + 8, dq = warp >> 1;
        const __nv_bfloat16* ka = kbuf + r0 * RS;  // (a third m-tile's rows past the stage read the values:
        const __nv_bfloat16* kb = kbuf + r1 * RS;  //  scores no column reads)
        const int nk = int(min(int64_t(kTileTc), ke - k0));  // (derived keys: rows past it are zeros)
        float cc[kParts][4] = {};  // one accumulator a query part: three independent mma chains
#pragma unroll
        for (int i2 = 0; i2 < NB / kDimParts; ++i2) {
          const int base = 32 * (kDimParts * i2 + (dq + i2) % kDimParts);
          const int d = base + 8 * cq;
          if (kDerived && base % (D / 2) < a.pairs) {
            // A chunk holding rotated dims (a lane's 8 dims are all rotated or none, pairs % 8 == 0): every
            // lane feeds three key parts, V itself (and zeros) where its dims are not rotated.
            uint4 ka3[kParts], kb3[kParts];
            if (d % (D / 2) < a.pairs) {
              derived_keys8<D>(a, ka, r0 < nk, k0 + r0, d, ka3);
              derived_keys8<D>(a, kb, r1 < nk, k0 + r1, d, kb3);
            } else {
              ka3[0] = *reinterpret_cast<const uint4*>(ka + d), kb3[0] = *reinterpret_cast<const uint4*>(kb + d);
              ka3[1] = ka3[2] = kb3[1] = kb3[2] = make_uint4(0u, 0u, 0u, 0u);
            }
#pragma unroll
            for (int i = 0; i < kParts; ++i) {
              const uint4 qv = *reinterpret_cast<const uint4*>(qsm + (i * kCols + gq) * QS + d);
#pragma unroll
              for (int h = 0; h < kParts; ++h) {
                mma_bf16(cc[i], ka3[h].x, kb3[h].x, ka3[h].y, kb3[h].y, qv.x, qv.y);
                mma_bf16(cc[i], ka3[h].z, kb3[h].z, ka3[h].w, kb3[h].w, qv.z, qv.w);
              }
            }
            continue;
          }
          const uint4 wa = *reinterpret_cast<const uint4*>(ka + d), wb = *reinterpret_cast<const uint4*>(kb + d);
#pragma unroll
          for (int i = 0; i < kParts; ++i) {
            const uint4 qv = *reinterpret_cast<const uint4*>(qsm + (i * kCols + gq) * QS + d);
            mma_bf16(cc[i], wa.x, wb.x, wa.y, wb.y, qv.x, qv.y);
            mma_bf16(cc[i], wa.z, wb.z, wa.w, wb.w, qv.z, qv.w);
          }
        }
        float c[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) c[e] = (cc[0][e] + cc[1][e]) + cc[2][e];
        // c: keys r0 (c[0], c[1]) and r1 (c[2], c[3]), columns 2cq and 2cq + 1, this dim quarter's sums.
        float* o = sc + dq * kCols * SS;
        o[(2 * cq) * SS + r0] = c[0];
        o[(2 * cq + 1) * SS + r0] = c[1];
        o[(2 * cq) * SS + r1] = c[2];
        o[(2 * cq + 1) * SS + r1] = c[3];
      };
      if constexpr (kPack) {
        for (int mt = warp & 1; 16 * mt < nstage; mt += 2) scores(mt);
      } else {
        scores(warp & 1);
      }
      __syncthreads();
      // Online softmax: warp w takes column w, lane l key l of the column's row's tile (at its offset in the
      // stage), the dim quarters' sums added in order.
      {
        const int j = warp, off = sm_off;
        const int nk = kPack ? max(0, min(kTileTc, sm_len - kTileTc * it)) : int(min(int64_t(kTileTc), ke - k0));
        float sv = -FLT_MAX;
        if (lane < nk) {
          sv = sc[j * SS + off + lane];
#pragma unroll
          for (int i = 1; i < kDimParts; ++i) sv += sc[(i * kCols + j) * SS + off + lane];
        }
        const float mx = warp_max(sv);
        const float m_old = mrow[j], m_new = fmaxf(m_old, mx);
        const float p = lane < nk && j < ncols ? __expf(sv - m_new) : 0.f;
        __nv_bfloat16 pp[kParts];
        split3(p, pp);
#pragma unroll
        for (int i = 0; i < kParts; ++i) psm[(i * kCols + j) * PS + lane] = pp[i];
        const float sum = warp_sum(p);
        __syncwarp();
        if (lane == 0) {
          const float f = __expf(m_old - m_new);
          frow[j] = f;
          lrow[j] = lrow[j] * f + sum;
          mrow[j] = m_new;
        }
      }
      __syncthreads();
      {
        // Outputs: the accumulators' columns 2cq, 2cq + 1 rescaled, then dims [DW warp, DW (warp + 1)) x the
        // tile's keys. Lane (gq, cq) reads 8 values at d = base + 8cq of keys gq and gq + 8 of a 16-key step;
        // word w of them is the (row gq, cols 2cq, 2cq + 1) entry of an 8 x 8 block (keys x dims): block w
        // holds dims base + 8 (r / 2) + 2w + r % 2 for r = 0..7. Transposed, blocks 0 / 1 (keys 0-7, then
        // 8-15) form one 16-dim m-tile of V^T, blocks 2 / 3 the next.
        const float f0 = frow[2 * cq], f1 = frow[2 * cq + 1];
#pragma unroll
        for (int m = 0; m < DW / 16; ++m) acc[m][0] *= f0, acc[m][1] *= f1, acc[m][2] *= f0, acc[m][3] *= f1;
        // The keys at stage offset off against the probabilities of the columns whose rows' tiles start there
        // (mine: B column gq; packed rows at other offsets get zeros).
        auto pv = [&](int off, bool mine) {
#pragma unroll
          for (int kt = 0; kt < kTileTc / 16; ++kt) {
            uint32_t b[kParts][2];
#pragma unroll
            for (int i = 0; i < kParts; ++i) {
              const __nv_bfloat16* prow = psm + (i * kCols + gq) * PS + kt * 16 + 2 * cq;
              b[i][0] = mine ? *reinterpret_cast<const uint32_t*>(prow) : 0u;
              b[i][1] = mine ? *reinterpret_cast<const uint32_t*>(prow + 8) : 0u;
            }
            const __nv_bfloat16* va = vbuf + (off + kt * 16 + gq) * RS;
            const __nv_bfloat16* vb = va + 8 * RS;
#pragma unroll
            for (int grp = 0; grp < DW / 32; ++grp) {
              const int d = DW * warp + 32 * grp + 8 * cq;
              const uint4 wa = *reinterpret_cast<const uint4*>(va + d), wb = *reinterpret_cast<const uint4*>(vb + d);
              const uint32_t a0 = transpose8x8(wa.x), a1 = transpose8x8(wa.y), a2 = transpose8x8(wa.z), a3 = transpose8x8(wa.w);
              const uint32_t b0 = transpose8x8(wb.x), b1 = transpose8x8(wb.y), b2 = transpose8x8(wb.z), b3 = transpose8x8(wb.w);
#pragma unroll
              for (int i = 0; i < kParts; ++i) {
                mma_bf16(acc[2 * grp], a0, a1, b0, b1, b[i][0], b[i][1]);
                mma_bf16(acc[2 * grp + 1], a2, a3, b2, b3, b[i][0], b[i][1]);
              }
            }
          }
        };
        if constexpr (kPack) {
          for (uint32_t o = pv_offs; o; o &= o - 1) {
            const int off = __ffs(int(o)) - 1;
            pv(off, off == pv_mine);
          }
        } else {
          pv(0, true);
        }
      }
    }
    // acc[2 grp + h][e]: column 2cq + (e & 1), row gq + 8 (e >> 1) of m-tile h, i.e. block 2h + (e >> 1).
    // A thread's two columns' output rows, null where the column is past the pack or its row's split is
    // empty (never read: live_splits).
    float* out[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int j = 2 * cq + h, u = u0 + col_row(j);
      out[h] = j < ncols && row_live(u) ? part + ((((t + u) * a.Hq) + g * G + col_head(j)) * n_split + split) * D : nullptr;
    }
#pragma unroll
    for (int m = 0; m < DW / 16; ++m) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int blk = 2 * (m & 1) + (e >> 1);
        const int d = DW * warp + 32 * (m >> 1) + 8 * (gq >> 1) + 2 * blk + (gq & 1);
        if (out[e & 1]) out[e & 1][d] = acc[m][e];
      }
    }
    if (tid < ncols) {
      const int u = u0 + col_row(tid);
      float* o = ml + ((((t + u) * a.Hq) + g * G + col_head(tid)) * n_split + split) * 2;
      o[0] = row_live(u) ? mrow[tid] : -FLT_MAX;
      o[1] = lrow[tid];
    }
    if (kPack) __syncthreads();  // (the next sub-pack restages the query and resets m, l)
  }
}

template <int D, bool kDerived, bool kPack>
void launch_tc_as(const AttnArgs& a, int n_split, float* part, float* ml, cudaStream_t s) {
  constexpr size_t smem = TcSmem<D, kDerived, kPack>::bytes;
  auto kernel = decode_tc_kernel<D, kDerived, kPack>;
  static const bool sized = [&] {
    if (smem > 48 * 1024) G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    return true;
  }();
  (void)sized;
  const int64_t rows = kPack ? packs(a.seqs, kCols / int(a.Hq / a.Hkv)) : a.T;  // (a block a pack of rows)
  launch(kernel, dim3(unsigned(a.Hkv), unsigned(rows), unsigned(n_split)), kThreadsTc, smem, s, a, n_split, part, ml);
}

template <int D>
void launch_tc(const AttnArgs& a, int n_split, float* part, float* ml, cudaStream_t s) {
  if (a.kw) launch_tc_as<D, true, false>(a, n_split, part, ml, s);
  else launch_tc_as<D, false, false>(a, n_split, part, ml, s);
}

}  // namespace

namespace {

// Whether a block of `bytes` shared memory fits the device (an H100 or H200 gives a block up to 227 KB, an
// A100 163 KB).
bool block_fits(size_t bytes) {
  static const size_t max_smem = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return size_t(0);
    }
    return size_t(v);
  }();
  return bytes <= max_smem;
}

// Whether a launch packs a sequence's rows into a block (decode_tc_kernel's kPack): a sequence has several
// rows (a verify), stored keys of 256 dims, at most half the mma's columns a row. H100, a verify of 4 at
// depth 512 of a 4,096-slot cache: 1.23 -> 1.12 one-token steps, at depth 3,072 1.25 -> 1.17 (docs/PERF.md).
// G4_CUDA_ATTN_PACK=0 turns it off, for comparisons.
bool packs_rows(const AttnArgs& a) {
  static const bool on = env_switch("G4_CUDA_ATTN_PACK", true);
  const int64_t group = a.Hq / a.Hkv;
  return on && a.T > a.seqs.n && a.D == 256 && !a.kw && group <= kCols / 2 && (group & (group - 1)) == 0 &&
         block_fits(TcSmem<256, false, true>::block_bytes);
}

}  // namespace

bool attn_decode_tc_suits(const AttnArgs& a) {
  const int64_t group = a.Hkv > 0 ? a.Hq / a.Hkv : 0;
  const auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool derive_ok = a.pairs % 8 == 0 && a.rope_cs && aligned16(a.rope_cs) && aligned16(a.kw);
  // (the query is read 32 bytes at a time)
  if (!(a.cache_bf16 && (!a.kw || derive_ok) && aligned16(a.q) && (a.D == 256 || a.D == 512) && group >= 1 &&
        group <= kCols && a.Hq == group * a.Hkv))
    return false;
  // The block's shared memory must fit the device: stored keys at D = 512 take 170 KB (an A100 runs such
  // layers on the group kernel).
  const bool derived = a.kw != nullptr;
  return block_fits(a.D == 256 ? (derived ? TcSmem<256, true>::block_bytes : TcSmem<256, false>::block_bytes)
                               : (derived ? TcSmem<512, true>::block_bytes : TcSmem<512, false>::block_bytes));
}

void attn_decode_tc(const AttnArgs& a, int n_split, float* part, float* ml, cudaStream_t s) {
  if (packs_rows(a)) launch_tc_as<256, false, true>(a, n_split, part, ml, s);
  else if (a.D == 256) launch_tc<256>(a, n_split, part, ml, s);
  else launch_tc<512>(a, n_split, part, ml, s);
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
