// Attention kernels. Decode (few queries): split-K flash-decoding. Each block owns one query, one KV
// head (so its GQA group of query heads shares every K/V row read) and one slice of the visible keys,
// keeps an online softmax per head and writes (max, sum, unnormalised output); a second kernel merges
// the slices. attn_decode_tc.cu runs the split on the tensor cores for every bf16 layer of head dim 256 or
// 512 (takes_tensor_cores); decode_group_kernel serves the other common shapes (f32 caches, power-of-two
// head dims, groups 1-8) reading each K/V element once per block; decode_kernel serves the rest. Prefill: attn_prefill.cu over keys gathered by
// gather_kv_f16, or cuBLAS GEMMs around gather_kv and masked_softmax (attn_gather.cu, cuda_backend.cc).
// Key position pk lives in the new k/v when pk >= p0, else in cache slot pk (flat) or pk % capacity (ring).
// The cache holds CT (float or bf16); new keys and values are f32 and are read rounded to CT, as the cache
// will hold them, so a result does not depend on how a prompt was cut into chunks. A tile's rows are
// resolved once into pointers and a flag per row (fresh f32 or cached CT).
#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <string>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/attn_rows.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/q8_act.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/seq_table.cuh"

namespace g4::cuda {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32, kTile = 64, kMaxElems = 16;  // group * D <= 4096
constexpr int kMaxD = 512;

// The row a key is read from: the key row, or for derived keys the value row it is derived from.
template <class CT>
__device__ __forceinline__ const void* key_src(const AttnArgs& a, const RowSeq& r, int64_t pk, int64_t g) {
  return a.kw ? key_row<CT>(a, r, r.v, r.cv, pk, g) : key_row<CT>(a, r, r.k, r.ck, pk, g);
}

// grid (Hkv, T, n_split), t being the query row of the launch (its sequence found in a.seqs). Scratch:
// part [T, Hq, n_split, D], ml [T, Hq, n_split, 2].
template <class CT>
__global__ void __launch_bounds__(kThreads) decode_kernel(AttnArgs a, int n_split, float* part, float* ml) {
  grid_dependency_sync();
  extern __shared__ float sm[];
  const int64_t g = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const RowSeq rs = row_seq(a, t);
  const int group = int(a.Hq / a.Hkv), D = int(a.D);
  float* qs = sm;                       // [group, D]
  float* sc = qs + group * D;           // [group, kTile]
  float* mrow = sc + group * kTile;     // [group] running max
  float* lrow = mrow + group;           // [group] running sum
  float* frow = lrow + group;           // [group] rescale factor of this tile
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  int64_t lo, hi;
  key_range(a, rs.pq, &lo, &hi);
  const SplitKeys sk = split_keys(a, lo, hi, n_split, int(split));
  const int64_t ks = sk.ks, ke = sk.ke;
  if (empty_split_done(ks, ke)) return;

  for (int i = tid; i < group * D; i += kThreads) qs[i] = a.q[(t * a.Hq + g * group) * D + i];
  for (int j = tid; j < group; j += kThreads) mrow[j] = -FLT_MAX, lrow[j] = 0.f;
  float acc[kMaxElems];
#pragma unroll
  for (int i = 0; i < kMaxElems; ++i) acc[i] = 0.f;
  __syncthreads();

  // Row addresses of the tile's keys and values, resolved once per tile (the ring's modulo is costly).
  __shared__ const void* krow[kTile];
  __shared__ const void* vrow[kTile];
  __shared__ bool fresh[kTile];
  for (int64_t k0 = ks; k0 < ke; k0 += kTile) {
    const int nk = int(min(int64_t(kTile), ke - k0));
    if (tid < nk) {
      krow[tid] = key_src<CT>(a, rs, k0 + tid, g);
      vrow[tid] = key_row<CT>(a, rs, rs.v, rs.cv, k0 + tid, g);
      fresh[tid] = k0 + tid >= rs.p0;
    }
    __syncthreads();
    // Scores: a warp per key, the key row held in registers (lanes over D), reused by the group's heads.
    for (int kk = warp; kk < nk; kk += kWarps) {
      const void* kr = krow[kk];
      const bool kf = fresh[kk];
      float kv[kMaxD / 32];
#pragma unroll
      for (int i = 0; i < kMaxD / 32; ++i) {
        const int d = lane + i * 32;
        kv[i] = d >= D ? 0.f : a.kw ? derived_key_at<CT>(a, kr, kf, k0 + kk, d) : row_at<CT>(kr, kf, d);
      }
      for (int j = 0; j < group; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < kMaxD / 32; ++i)
          if (lane + i * 32 < D) s = fmaf(qs[j * D + lane + i * 32], kv[i], s);
        s = warp_sum(s);
        if (lane == 0) sc[j * kTile + kk] = s;
      }
    }
    __syncthreads();
    // Online softmax per head: a warp per head.
    for (int j = warp; j < group; j += kWarps) {
      float mx = -FLT_MAX;
      for (int kk = lane; kk < nk; kk += 32) mx = fmaxf(mx, sc[j * kTile + kk]);
      mx = warp_max(mx);
      const float m_new = fmaxf(mrow[j], mx);
      float sum = 0.f;
      for (int kk = lane; kk < nk; kk += 32) {
        const float p = __expf(sc[j * kTile + kk] - m_new);
        sc[j * kTile + kk] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      __syncwarp();
      if (lane == 0) {
        const float f = __expf(mrow[j] - m_new);
        frow[j] = f;
        lrow[j] = lrow[j] * f + sum;
        mrow[j] = m_new;
      }
    }
    __syncthreads();
    // Output accumulation: thread-owned (head, dim) elements, V rows read coalesced. The tile's cached rows
    // come first and its fresh rows (positions >= p0) last, so each part is a loop of its own type.
    const int nc = int(max(int64_t(0), min(int64_t(nk), rs.p0 - k0)));
#pragma unroll
    for (int i = 0; i < kMaxElems; ++i) {
      const int e = tid + i * kThreads;
      if (e < group * D) {
        const int j = e / D, d = e % D;
        float v = acc[i] * frow[j];
#pragma unroll 8
        for (int kk = 0; kk < nc; ++kk) v = fmaf(sc[j * kTile + kk], to_f32(static_cast<const CT*>(vrow[kk])[d]), v);
        for (int kk = nc; kk < nk; ++kk) v = fmaf(sc[j * kTile + kk], row_at<CT>(vrow[kk], true, d), v);
        acc[i] = v;
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kMaxElems; ++i) {
    const int e = tid + i * kThreads;
    if (e < group * D) {
      const int j = e / D, d = e % D;
      part[(((t * a.Hq) + g * group + j) * n_split + split) * D + d] = acc[i];
    }
  }
  for (int j = tid; j < group; j += kThreads) {
    float* o = ml + (((t * a.Hq) + g * group + j) * n_split + split) * 2;
    o[0] = ks < ke ? mrow[j] : -FLT_MAX;
    o[1] = lrow[j];
  }
}

// The decode kernel for power-of-two head dims 16..512 and GQA groups of 1, 2, 4 or 8 (every Gemma 4
// shape): each K and V element is read from memory once per block and feeds the whole group.
//  - Scores: a lane per key (a tile of 32 * kc keys, kc from the split's key count), warps split the head
//    dim into 8 / kc chunks; each lane reads its key row 8 values at a time (one or two 16-byte loads),
//    kKeyLoads of them in flight for a cached row, and the group's queries come from shared memory as
//    broadcasts, so there are no per-key shuffle reductions.
//  - Output: a thread per 4 dims of V (float4 or 4 x bf16) for all G heads; the block's threads cover
//    D / 4 dims times 1024 / D key lanes, whose partial sums meet in shared memory at the end; cached
//    value rows are loaded kValueLoads at a time.
// A split is a chain of dependent memory phases, so the loads in flight per thread set its pace: one at a
// time, the full layers at depth 16,384 ran at 26% of the H200's copy bandwidth, with these batches at 37%
// (docs/PERF.md; the summation order is unchanged). Scratch and the grid are the same as decode_kernel's.
// Cached rows as raw bits, so that several loads can be in flight per thread for few registers (bf16: 4
// registers for 8 values): a thread issues a batch of them, then converts and sums in the usual order.
// Raw<uint4, CT> holds 8 consecutive values of a row, Raw<uint2, CT> 4.
template <class W, class CT>
struct Raw {
  W u[sizeof(CT) / 2];
};
template <class W, class CT>
__device__ __forceinline__ Raw<W, CT> load_raw(const void* row, int d) {
  Raw<W, CT> r;
  const W* p = reinterpret_cast<const W*>(static_cast<const CT*>(row) + d);
#pragma unroll
  for (int i = 0; i < int(sizeof(CT) / 2); ++i) r.u[i] = p[i];
  return r;
}
template <class CT>
__device__ __forceinline__ void unpack8(const Raw<uint4, CT>& r, float (&x)[8]) {
  if constexpr (sizeof(CT) == 4) {
    const uint32_t w[8] = {r.u[0].x, r.u[0].y, r.u[0].z, r.u[0].w, r.u[1].x, r.u[1].y, r.u[1].z, r.u[1].w};
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = __uint_as_float(w[i]);
  } else {
    bf16x2_to_f32(r.u[0].x, x), bf16x2_to_f32(r.u[0].y, x + 2), bf16x2_to_f32(r.u[0].z, x + 4), bf16x2_to_f32(r.u[0].w, x + 6);
  }
}
template <class CT>
__device__ __forceinline__ float4 unpack4(const Raw<uint2, CT>& r) {
  if constexpr (sizeof(CT) == 4)
    return make_float4(__uint_as_float(r.u[0].x), __uint_as_float(r.u[0].y), __uint_as_float(r.u[1].x),
                       __uint_as_float(r.u[1].y));
  float x[4];
  bf16x2_to_f32(r.u[0].x, x), bf16x2_to_f32(r.u[0].y, x + 2);
  return make_float4(x[0], x[1], x[2], x[3]);
}

// 8 / 4 values of a row that is f32 when fresh (rounded to CT, as the cache will hold them), else CT.
template <class CT>
__device__ __forceinline__ void load8(const void* row, bool fresh, int d, float (&x)[8]) {
  if (!fresh) return unpack8<CT>(load_raw<uint4, CT>(row, d), x);
  const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(row) + d);
  const float4 a = p[0], b = p[1];
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = to_f32(CT(x[i]));
}
template <class CT>
__device__ __forceinline__ float4 load4(const void* row, bool fresh, int d) {
  if (!fresh) return unpack4<CT>(load_raw<uint2, CT>(row, d));
  const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(row) + d);
  return make_float4(to_f32(CT(a.x)), to_f32(CT(a.y)), to_f32(CT(a.z)), to_f32(CT(a.w)));
}

// Loads a thread keeps in flight over cached rows: key rows in the score loop (8 values each), value rows in
// the output loop (4 values each).
constexpr int kKeyLoads = 4, kValueLoads = 8;

// s[j] += q_j[d .. d + 7] . x for the group's heads (queries in shared memory, broadcast reads).
template <int G>
__device__ __forceinline__ void score8(float (&s)[G], const float* qs, int D, int d, const float (&x)[8]) {
#pragma unroll
  for (int j = 0; j < G; ++j) {
    const float4 q0 = *reinterpret_cast<const float4*>(qs + j * D + d);
    const float4 q1 = *reinterpret_cast<const float4*>(qs + j * D + d + 4);
    s[j] = fmaf(q0.x, x[0], fmaf(q0.y, x[1], fmaf(q0.z, x[2], fmaf(q0.w, x[3], s[j]))));
    s[j] = fmaf(q1.x, x[4], fmaf(q1.y, x[5], fmaf(q1.z, x[6], fmaf(q1.w, x[7], s[j]))));
  }
}

// acc[j] += p_j * v for the group's heads, p from the tile's probabilities [tile, G].
template <int G>
__device__ __forceinline__ void accumulate4(float4 (&acc)[G], const float* p, const float4 v) {
#pragma unroll
  for (int j = 0; j < G; ++j) {
    acc[j].x = fmaf(p[j], v.x, acc[j].x), acc[j].y = fmaf(p[j], v.y, acc[j].y);
    acc[j].z = fmaf(p[j], v.z, acc[j].z), acc[j].w = fmaf(p[j], v.w, acc[j].w);
  }
}

// Derived keys (K = RoPE(V * kw) at the key's position, a.kw set) without forming K: the query is folded
// into the key's weights instead. Dims RoPE leaves alone score V_j * (q_j kw_j), qs holding q_j kw_j. A
// rotated pair (lo = i, hi = i + D/2, i < pairs) at angle (c, s) scores
//   q_lo K_lo + q_hi K_hi = c (V_lo A + V_hi B) + s (V_lo C - V_hi E),
//   A = q_lo kw_lo, B = q_hi kw_hi, C = q_hi kw_lo, E = q_lo kw_hi   (dq4 [G, pairs] holds {A, B, C, E}),
// (c, s) read from the key's row of the table, as the host and the ref backend round them (an angle summed
// from two rows drifted 3e-5-7e-5 in the outputs at positions 3,000-9,000: the table's angles are f32
// products). A fresh row (f32, rounded as the cache will hold it) scores by the same formula as a cached
// one, so a verify or a batch gives every query the result of a one-token step.
template <int G>
__device__ __forceinline__ void derived_query(const AttnArgs& a, const float* q, float* qs, float4* dq4, int tid) {
  const int D = int(a.D), half = D / 2, P = a.pairs;
  for (int e = tid; e < G * D; e += kThreads) {
    const int d = e % D, dm = d % half;
    qs[e] = dm < P ? 0.f : __fmul_rn(q[e], a.kw[d]);
  }
  for (int e = tid; e < G * P; e += kThreads) {
    const int j = e / P, i = e % P;
    const float lo = q[j * D + i], hi = q[j * D + i + half], wl = a.kw[i], wh = a.kw[i + half];
    dq4[e] = make_float4(__fmul_rn(lo, wl), __fmul_rn(hi, wh), __fmul_rn(hi, wl), __fmul_rn(lo, wh));
  }
}

// s[j] += the scores of one key's dims [d, d_end) (multiples of 8) for the group's heads; pk: the key's
// position. A warp's dim range holds a rotated pair when it holds the pair's low dim.
template <class CT, int G>
__device__ __forceinline__ void derived_scores(float (&s)[G], const float* qs, const float4* dq4, const AttnArgs& a,
                                               const void* kr, bool kf, int64_t pk, int d, int d_end) {
  const int D = int(a.D), half = D / 2, P = a.pairs;
  const float4* cs = reinterpret_cast<const float4*>(a.rope_cs) + pk * P / 2;
  for (int i = d; i < min(d_end, P); i += 8) {
    float lo[8], hi[8];
    load8<CT>(kr, kf, i, lo);
    load8<CT>(kr, kf, i + half, hi);
#pragma unroll
    for (int u = 0; u < 8; u += 2) {
      const float4 r = __ldg(cs + (i + u) / 2);  // {cos, sin} of pairs i + u and i + u + 1
#pragma unroll
      for (int j = 0; j < G; ++j) {
        const float4 q0 = dq4[j * P + i + u], q1 = dq4[j * P + i + u + 1];
        s[j] = fmaf(r.x, fmaf(lo[u], q0.x, hi[u] * q0.y), fmaf(r.y, fmaf(lo[u], q0.z, -hi[u] * q0.w), s[j]));
        s[j] = fmaf(r.z, fmaf(lo[u + 1], q1.x, hi[u + 1] * q1.y), fmaf(r.w, fmaf(lo[u + 1], q1.z, -hi[u + 1] * q1.w), s[j]));
      }
    }
  }
  // The dims RoPE leaves alone: [P, half) and [half + P, D) within [d, d_end), kKeyLoads x 8 values in flight.
  const int runs[2][2] = {{max(d, P), min(d_end, half)}, {max(d, half + P), d_end}};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    int x = runs[r][0];
    const int end = runs[r][1];
    if (!kf) {
      for (; x + 8 * kKeyLoads <= end; x += 8 * kKeyLoads) {
        Raw<uint4, CT> raw[kKeyLoads];
#pragma unroll
        for (int u = 0; u < kKeyLoads; ++u) raw[u] = load_raw<uint4, CT>(kr, x + 8 * u);
#pragma unroll
        for (int u = 0; u < kKeyLoads; ++u) {
          float v[8];
          unpack8<CT>(raw[u], v);
          score8<G>(s, qs, D, x + 8 * u, v);
        }
      }
    }
    for (; x < end; x += 8) {
      float v[8];
      load8<CT>(kr, kf, x, v);
      score8<G>(s, qs, D, x, v);
    }
  }
}

constexpr int kMaxTile = 256;  // 32 keys per warp x 8 warps

// kDerived (a.kw set, pairs a multiple of 8): keys derived from the value rows scored by derived_scores; an
// instantiation of its own, so that the stored-key kernels compile exactly as without it. (Other derived
// shapes take kDerived = false, whose last loop derives each key element by element.)
template <class CT, int G, bool kDerived>
__device__ __forceinline__ void decode_group(const AttnArgs& a, int n_split, float* part, float* ml) {
  grid_dependency_sync();
  extern __shared__ float4 sm4[];
  const int64_t g = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const RowSeq rs = row_seq(a, t);
  const int D = int(a.D);
  float* qs = reinterpret_cast<float*>(sm4);  // [G, D]; at the end, the key lanes' partial outputs
  float* sp = qs + G * D;                     // [dc, G, tile] partial scores
  float* pt = sp + kWarps * G * 32;           // [tile, G] probabilities
  float* mrow = pt + kMaxTile * G;            // [G] running max, sum, this tile's rescale factor
  float* lrow = mrow + G;
  float* frow = lrow + G;
  // kDerived: the folded query {A, B, C, E} of each head's rotated pairs [G, pairs] (derived_scores), 16-byte
  // aligned after the rest.
  float4* dq4 = sm4 + (G * D + kWarps * G * 32 + kMaxTile * G + 3 * G + 3) / 4;
  __shared__ const void* krow[kMaxTile];
  __shared__ const void* vrow[kMaxTile];
  __shared__ bool fresh[kMaxTile];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  int64_t lo, hi;
  key_range(a, rs.pq, &lo, &hi);
  const SplitKeys sk = split_keys(a, lo, hi, n_split, int(split));
  const int64_t ks = sk.ks, ke = sk.ke, per = sk.per;
  if (empty_split_done(ks, ke)) return;
  // Keys per tile: enough 32-key warps for this split's keys, the other warps splitting the head dim, so
  // that a split of few keys (short contexts) still keeps every warp busy on short dot products. A
  // function of the query's position alone: a verify, a batch and a one-token step compute alike.
  int kc = 1;
  while (kc < kWarps && 32 * kc < per) kc *= 2;
  const int tile = 32 * kc, dc = min(kWarps / kc, D / 8);

  if constexpr (kDerived) {
    derived_query<G>(a, a.q + (t * a.Hq + g * G) * D, qs, dq4, tid);
  } else {
    for (int i = tid; i < G * D; i += kThreads) qs[i] = a.q[(t * a.Hq + g * G) * D + i];
  }
  if (tid < G) mrow[tid] = -FLT_MAX, lrow[tid] = 0.f;
  // Output ownership: dims 4 * dq .. 4 * dq + 3 of every head, keys kg, kg + n_kg, ... of each tile.
  const int dpt = D / 4, n_kg = kThreads / dpt, dq = tid % dpt, kg = tid / dpt;
  float4 acc[G];
#pragma unroll
  for (int j = 0; j < G; ++j) acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);
  // Score ownership: key kci * 32 + lane of the tile, dims [dci * dl, (dci + 1) * dl).
  const int kci = warp % kc, dci = warp / kc, dl = D / dc;
  __syncthreads();

  for (int64_t k0 = ks; k0 < ke; k0 += tile) {
    const int nk = int(min(int64_t(tile), ke - k0));
    if (tid < nk) {
      krow[tid] = key_src<CT>(a, rs, k0 + tid, g);
      vrow[tid] = key_row<CT>(a, rs, rs.v, rs.cv, k0 + tid, g);
      fresh[tid] = k0 + tid >= rs.p0;
    }
    __syncthreads();
    if (dci < dc) {
      const int kk = kci * 32 + lane;
      float s[G];
#pragma unroll
      for (int j = 0; j < G; ++j) s[j] = 0.f;
      if (kk < nk) {
        const void* kr = krow[kk];
        const bool kf = fresh[kk];
        const int d_end = (dci + 1) * dl;
        int d = dci * dl;
        if (!kf && !a.kw) {
          for (; d + 8 * kKeyLoads <= d_end; d += 8 * kKeyLoads) {
            Raw<uint4, CT> r[kKeyLoads];
#pragma unroll
            for (int u = 0; u < kKeyLoads; ++u) r[u] = load_raw<uint4, CT>(kr, d + 8 * u);
#pragma unroll
            for (int u = 0; u < kKeyLoads; ++u) {
              float x[8];
              unpack8<CT>(r[u], x);
              score8<G>(s, qs, D, d + 8 * u, x);
            }
          }
        }
        if constexpr (kDerived) {
          derived_scores<CT, G>(s, qs, dq4, a, kr, kf, k0 + kk, d, d_end);
          d = d_end;
        }
        for (; d < d_end; d += 8) {
          float x[8];
          if (a.kw) {
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = derived_key_at<CT>(a, kr, kf, k0 + kk, d + i);
          } else {
            load8<CT>(kr, kf, d, x);
          }
          score8<G>(s, qs, D, d, x);
        }
      }
#pragma unroll
      for (int j = 0; j < G; ++j) sp[(dci * G + j) * tile + kk] = s[j];
    }
    __syncthreads();
    // Online softmax per head: a warp per head.
    for (int j = warp; j < G; j += kWarps) {
      float mx = -FLT_MAX;
      for (int kk = lane; kk < nk; kk += 32) {
        float sum = 0.f;
        for (int c = 0; c < dc; ++c) sum += sp[(c * G + j) * tile + kk];
        sp[j * tile + kk] = sum;  // chunk 0's slot: only this lane reads it again
        mx = fmaxf(mx, sum);
      }
      mx = warp_max(mx);
      const float m_new = fmaxf(mrow[j], mx);
      float sum = 0.f;
      for (int kk = lane; kk < nk; kk += 32) {
        const float p = __expf(sp[j * tile + kk] - m_new);
        pt[kk * G + j] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float f = __expf(mrow[j] - m_new);
        frow[j] = f;
        lrow[j] = lrow[j] * f + sum;
        mrow[j] = m_new;
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < G; ++j) {
      const float f = frow[j];
      acc[j].x *= f, acc[j].y *= f, acc[j].z *= f, acc[j].w *= f;
    }
    int kk = kg;
    const int nc = int(max(int64_t(0), min(int64_t(nk), rs.p0 - k0)));  // the tile's cached rows come first
    for (; kk + (kValueLoads - 1) * n_kg < nc; kk += kValueLoads * n_kg) {
      Raw<uint2, CT> r[kValueLoads];
#pragma unroll
      for (int u = 0; u < kValueLoads; ++u) r[u] = load_raw<uint2, CT>(vrow[kk + u * n_kg], 4 * dq);
#pragma unroll
      for (int u = 0; u < kValueLoads; ++u) accumulate4<G>(acc, pt + (kk + u * n_kg) * G, unpack4<CT>(r[u]));
    }
    for (; kk < nk; kk += n_kg) accumulate4<G>(acc, pt + kk * G, load4<CT>(vrow[kk], fresh[kk], 4 * dq));
    __syncthreads();
  }
  // The key lanes' partial outputs meet in qs (no longer needed), in a fixed order.
  float4* red = reinterpret_cast<float4*>(qs);  // [G, D / 4]
  for (int r = 0; r < n_kg; ++r) {
    if (kg == r) {
#pragma unroll
      for (int j = 0; j < G; ++j) {
        float4 o = acc[j];
        if (r > 0) {
          const float4 b = red[j * dpt + dq];
          o = make_float4(b.x + o.x, b.y + o.y, b.z + o.z, b.w + o.w);
        }
        red[j * dpt + dq] = o;
      }
    }
    __syncthreads();
  }
  for (int e = tid; e < G * dpt; e += kThreads) {
    const int j = e / dpt, d4 = e % dpt;
    reinterpret_cast<float4*>(part + (((t * a.Hq) + g * G + j) * n_split + split) * D)[d4] = red[e];
  }
  if (tid < G) {
    float* o = ml + (((t * a.Hq) + g * G + tid) * n_split + split) * 2;
    o[0] = ks < ke ? mrow[tid] : -FLT_MAX;
    o[1] = lrow[tid];
  }
}

template <class CT, int G>
__global__ void __launch_bounds__(kThreads) decode_group_kernel(AttnArgs a, int n_split, float* part, float* ml) {
  decode_group<CT, G, false>(a, n_split, part, ml);
}

// Derived keys. kMinBlocks 0: the compiler's register count (144 a thread at G = 8, bf16: one block an SM);
// 2: held to 128 registers for two blocks an SM (76 bytes spilled at G = 8).
template <class CT, int G, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) decode_group_derived_kernel(AttnArgs a, int n_split, float* part, float* ml) {
  decode_group<CT, G, true>(a, n_split, part, ml);
}

// The merge of a query head's splits: out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s, M = max m_s,
// over the splits that hold keys for the query (live_splits: a short context in a large cache fills a few
// of the tens of splits its capacity sizes; the others would add exact zeros).
// grid (T * Hq, D / kCombineDims), kCombineThreads threads: kCombineDims consecutive dims (coalesced rows
// of the partial outputs) times kCombineGroups split groups, group g summing splits g, g + kCombineGroups,
// ... in order; the groups meet in shared memory in a fixed order. Every block recomputes M and the weights
// from the splits' (m, l) (n_split pairs, L2-resident). The merge is latency-bound (one block a head over all
// dims ran ~7 us a layer inside the H200's step; this layout decoded 1.9% faster at depth 512, docs/PERF.md),
// so right after the wait a thread issues every load it needs: its (m, l) pairs and its first kCombineHeld
// splits' partial outputs, which do not depend on the weights; the reductions then wait on one memory phase.
constexpr int kMaxSplit = 1024, kCombineDims = 32, kCombineGroups = 8, kCombineThreads = kCombineDims * kCombineGroups;
constexpr int kCombineHeld = 4;  // partial outputs a thread loads before the weights are known

// Warp 0 of a merge block: the split groups' sums added in order, divided by L, stored, and rounded to int8
// for the o projection when xq is set (the row's chunk th % Hq * D / 32 + blockIdx.y; D % 32 == 0).
__device__ __forceinline__ void combine_out(const AttnArgs& a, int64_t th, int64_t d, int j,
                                            const float (&red)[kCombineGroups][kCombineDims], float L,
                                            uint4* __restrict__ xq, int nch_pad) {
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < kCombineGroups; ++k) sum += red[k][j];
  const float y = sum / L;
  if (d < a.D) a.out[th * a.D + d] = y;
  if (xq) {
    const int64_t t = th / a.Hq;
    const int c = int((th % a.Hq) * (a.D / 32) + blockIdx.y);
    quantize_chunk_warp(y, x_slot(xq, nch_pad, t, c), x_scales(xq, nch_pad, a.T) + t * nch_pad + c);
  }
}
// With store, the merge also writes the launch's new rows into the caches (kv_write_at; after the split
// kernel, as the forward's order has it), each block a share of a few elements (for the 31B, 16 a block on
// sliding layers and 4 on full ones), so the store takes no launch and no blocks of its own: warps 1.. store
// it after the block's barrier while warp 0 adds and writes the outputs. The kernel is held to 32 registers a
// thread for 8 blocks an SM (no spills; the share's index arithmetic in 32 bits), so that a verify of 4 rows
// runs its 1,024 sliding-layer merge blocks in one wave on 132 SMs and its 2,048 full-layer ones in two. (The
// store beside the held partial outputs, to hide its latency behind theirs, with 64-bit index arithmetic took
// 58 registers, 4 blocks an SM: two waves and four. Against it, on an H100, a verify of 4 at depth 512 went
// from 1.149 to 1.124 one-token steps, docs/PERF.md.) The share's elements go to threads `first`, `first` +
// `count`, ...
__device__ __forceinline__ void store_share(const AttnArgs& a, unsigned first, unsigned count) {
  const unsigned row = unsigned(a.Hkv * a.D), n = unsigned(a.T) * row, blocks = gridDim.x * gridDim.y;
  const unsigned b = blockIdx.x * gridDim.y + blockIdx.y, per = (n + blocks - 1) / blocks;
  const unsigned end = min(n, (b + 1) * per), cap = unsigned(a.capacity);
  for (unsigned i = b * per + first; i < end; i += count) {
    if (a.cache_bf16) kv_write_at<__nv_bfloat16>(a.seqs, a.k, a.v, row, cap, a.ring, i);
    else kv_write_at<float>(a.seqs, a.k, a.v, row, cap, a.ring, i);
  }
}
__global__ void __launch_bounds__(kCombineThreads, 8)
    combine_kernel(AttnArgs a, int n_split, const float* __restrict__ part, const float* __restrict__ ml,
                   uint4* __restrict__ xq, int nch_pad, bool store) {
  grid_dependency_sync();
  __shared__ float wgt[kMaxSplit];
  __shared__ float red[kCombineGroups][kCombineDims];
  const int64_t th = blockIdx.x;
  int64_t lo, hi;
  key_range(a, row_seq(a, th / a.Hq).pq, &lo, &hi);
  const int live = live_splits(a, lo, hi, n_split);
  const float2* m = reinterpret_cast<const float2*>(ml + th * n_split * 2);  // (m_s, l_s)
  const int tid = threadIdx.x;
  const int j = tid % kCombineDims, g = tid / kCombineDims;
  const int64_t d = int64_t(blockIdx.y) * kCombineDims + j;
  const float* pr = part + th * n_split * a.D + d;
  constexpr int nw = kCombineThreads / 32, kPairs = kMaxSplit / kCombineThreads;
  // Both paths' end: the group's sum into red, the barrier, warp 0 adds the groups and writes the outputs,
  // the other warps store the share meanwhile.
  auto finish = [&](float o, float L) {
    red[g][j] = o;
    __syncthreads();
    if (g == 0) combine_out(a, th, d, j, red, L, xq, nch_pad);
    else if (store) store_share(a, unsigned(tid) - 32u, kCombineThreads - 32u);
  };
  float held[kCombineHeld];
#pragma unroll
  for (int k = 0; k < kCombineHeld; ++k) {
    const int sp = g + k * kCombineGroups;
    held[k] = d < a.D && sp < live ? pr[int64_t(sp) * a.D] : 0.f;
  }
  if (live <= 32) {
    // Every split in one warp's lanes (kCombineHeld * kCombineGroups == 32: all of them held): each warp
    // finds M, L and the weights itself with shuffles instead of two block reductions, and the block meets
    // once, in red. The same values in the same order as the general path below: M is a max; L is warp 0's
    // butterfly of the same lane values there (the other warps add exact zeros); a weight is the same expf
    // of the same pair, taken from its lane.
    static_assert(kCombineHeld * kCombineGroups == 32, "the held partials cover 32 splits");
    const int lane = tid & 31;
    const float2 pl = lane < live ? m[lane] : make_float2(-FLT_MAX, 0.f);
    const float Mw = warp_max(pl.x);
    const float w = lane < live ? __expf(pl.x - Mw) : 0.f;
    const float Lw = warp_sum(lane < live ? pl.y * w : 0.f);
    float o = 0.f;
#pragma unroll
    for (int k = 0; k < kCombineHeld; ++k) {
      const int sp = g + k * kCombineGroups;
      const float wk = __shfl_sync(0xffffffffu, w, sp);
      if (sp < live) o = fmaf(held[k], wk, o);
    }
    return finish(o, Lw);
  }
  float2 mine[kPairs];
  float M = -FLT_MAX;
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    const int sp = tid + i * kCombineThreads;
    mine[i] = sp < live ? m[sp] : make_float2(-FLT_MAX, 0.f);
  }
#pragma unroll
  for (int i = 0; i < kPairs; ++i) M = fmaxf(M, mine[i].x);
  M = block_max<nw>(M);
  float L = 0.f;
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    const int sp = tid + i * kCombineThreads;
    if (sp < live) {
      const float w = __expf(mine[i].x - M);
      wgt[sp] = w;
      L += mine[i].y * w;
    }
  }
  L = block_sum<nw>(L);  // (its barriers also publish wgt)
  float o = 0.f;
#pragma unroll
  for (int k = 0; k < kCombineHeld; ++k) {
    const int sp = g + k * kCombineGroups;
    if (sp < live) o = fmaf(held[k], wgt[sp], o);
  }
  if (d < a.D) {
#pragma unroll 4
    for (int sp = g + kCombineHeld * kCombineGroups; sp < live; sp += kCombineGroups)
      o = fmaf(pr[int64_t(sp) * a.D], wgt[sp], o);
  }
  finish(o, L);
}

// Keys one query can see, bounded from the layer's shape (window, capacity): what sizes the split, so
// that the summation order is the same for every p0 and every batch.
int64_t max_visible_keys(const AttnArgs& a) { return a.window > 0 ? std::min<int64_t>(a.window, a.capacity) : a.capacity; }

// Whether a layer's decode attention runs on the tensor cores (attn_decode_tc.cu): every layer it suits (a
// bf16 cache, head dims 256/512), stored keys or derived. On the H200 it runs the 31B's full layer at 65,536
// keys in 178 us with derived keys (the group kernel: 330) and 223 with stored ones (266), its sliding layer
// in 11.5 us (14.5; docs/PERF.md). The choice depends on the layer only, never on T or p0, so a verify and a
// batch sum exactly as one-token steps do. For comparisons: G4_CUDA_ATTN_TC=0 never.
bool takes_tensor_cores(const AttnArgs& a) {
  static const int tc_env = env_int("G4_CUDA_ATTN_TC", -1);
  return tc_env != 0 && attn_decode_tc_suits(a);
}

int pick_split(const AttnArgs& a, int n_sm) {
  // Chosen from the layer's shape only, never from T nor p0: each query of a verify (several new tokens of
  // one sequence) and each sequence of a batch sums its slices exactly as a one-token step would, so greedy
  // speculation reproduces plain greedy decoding bit for bit and a batch gives each sequence its solo result.
  // For comparisons: G4_CUDA_ATTN_MIN_KEYS, the fewest keys a split takes (default kTile), and
  // G4_CUDA_ATTN_BLOCKS_PER_SM, the blocks a launch aims at per SM (default 4, and 2 for the tensor-core
  // kernel, which holds 2 blocks an SM: 213 against 224 us at 65,536 keys on the H200).
  static const int64_t min_keys = std::max(1, env_int("G4_CUDA_ATTN_MIN_KEYS", kTile));
  static const int per_sm_env = env_int("G4_CUDA_ATTN_BLOCKS_PER_SM", 0);
  const int64_t per_sm = per_sm_env > 0 ? per_sm_env : takes_tensor_cores(a) ? 2 : 4;
  const int64_t max_keys = max_visible_keys(a);
  const int64_t want = (per_sm * int64_t(n_sm) + a.Hkv - 1) / a.Hkv;
  return int(std::max<int64_t>(1, std::min<int64_t>({want, (max_keys + min_keys - 1) / min_keys, int64_t(kMaxSplit)})));
}

// The group kernel of a cache type and group size: variant 0 stored keys, 1 / 2 derived keys (kMinBlocks 0 /
// 2).
template <class CT, int G>
void launch_group(const AttnArgs& a, int variant, dim3 grid, size_t smem, cudaStream_t s, int ns, float* part, float* ml) {
  auto go = [&](auto kernel) {
    if (smem > 48 * 1024) G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    launch(kernel, grid, kThreads, smem, s, a, ns, part, ml);
  };
  if (variant == 0) go(decode_group_kernel<CT, G>);
  else if (variant == 1) go(decode_group_derived_kernel<CT, G, 0>);
  else go(decode_group_derived_kernel<CT, G, 2>);
}

// Other head dims and groups: decode_kernel (a warp per key, the key row in registers).
void decode_any_shape(const AttnArgs& a, int ns, float* part, float* ml, cudaStream_t s) {
  const int group = int(a.Hq / a.Hkv);
  const size_t smem = size_t(group * a.D + group * kTile + 3 * group) * sizeof(float);
  const dim3 grid(unsigned(a.Hkv), unsigned(a.T), unsigned(ns));
  if (a.cache_bf16) {
    if (smem > 48 * 1024)
      G4_CUDA(cudaFuncSetAttribute(decode_kernel<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    launch(decode_kernel<__nv_bfloat16>, grid, kThreads, smem, s, a, ns, part, ml);
  } else {
    if (smem > 48 * 1024) G4_CUDA(cudaFuncSetAttribute(decode_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    launch(decode_kernel<float>, grid, kThreads, smem, s, a, ns, part, ml);
  }
}

}  // namespace

bool attn_decode_suits(int64_t T, int64_t p0, int window) {
  if (T <= kExactStepMaxT) return true;  // (T: the queries of one sequence; exact verifies, kernels.h)
  // The decode kernels read the visible keys once per query; the GEMM path pays a fixed ~0.3 ms a layer on
  // the H200 (gather, cuBLAS, softmax) that made a verify of 5 tokens at depth 512 cost 4x a one-token
  // step (docs/PERF.md). Up to 16 queries take the decode kernels while queries x keys stays small.
  const int64_t keys = window > 0 ? std::min<int64_t>(window, p0 + T) : p0 + T;
  return T <= 16 && T * keys <= int64_t(16) * 8192;
}

size_t attn_decode_scratch_bytes(const AttnArgs& a, int n_sm) {
  const size_t ns = size_t(pick_split(a, n_sm));
  return size_t(a.T * a.Hq) * ns * size_t(a.D + 2) * sizeof(float);
}

void attn_store_rows(const AttnArgs& a, cudaStream_t s) {
  kv_write(a.seqs, a.k, a.v, a.T, a.Hkv * a.D, a.capacity, a.ring, a.cache_bf16, s);
}

void attn_decode(const AttnArgs& args, void* scratch, int n_sm, cudaStream_t s, void* xq, bool append) {
  append = append && !knocked_out(Knock::kKv);
  // The new rows into the caches in a launch of their own (the merge left out: benchmarks only).
  const auto write_alone = [&] {
    if (append) attn_store_rows(args, s);
  };
  if (knocked_out(Knock::kAttn)) return write_alone();
  // G4_CUDA_ATTN_SPLIT_MIN (comparisons): a split takes a whole number of these keys; 1 spreads a short
  // context over every split the capacity sizes, as before the floor.
  static const int split_min = env_int("G4_CUDA_ATTN_SPLIT_MIN", 0);
  AttnArgs a = args;
  if (split_min > 0) a.split_min = split_min;
  const int group = int(a.Hq / a.Hkv);
  if (a.D > kMaxD) throw Error("cuda attention: head_dim " + std::to_string(a.D) + " exceeds the decode kernel's 512");
  if (int64_t(group) * a.D > int64_t(kMaxElems) * kThreads)
    throw Error("cuda attention: GQA group " + std::to_string(group) + " x head_dim " + std::to_string(a.D) +
                " exceeds the decode kernel's 4096 elements");
  G4_CHECK(!xq || (a.D % 32 == 0 && x_chunks_padded(a.Hq * a.D) == a.Hq * a.D / 32 && a.T <= kGemvQ8MaxT),
           "cuda attention: an int8 copy of the output needs whole 32-chunk blocks a row and at most 8 rows");
  G4_CHECK(a.T * a.Hkv * a.D < (int64_t(1) << 31) && a.capacity < (int64_t(1) << 31),
           "cuda attention: a launch's new rows and the cache's capacity are indexed in 32 bits");
  const int ns = pick_split(a, n_sm);
  float* part = static_cast<float*>(scratch);
  float* ml = part + size_t(a.T * a.Hq) * size_t(ns) * size_t(a.D);
  const dim3 grid(unsigned(a.Hkv), unsigned(a.T), unsigned(ns));
  const bool pow2_d = a.D >= 16 && a.D <= kMaxD && (a.D & (a.D - 1)) == 0;
  const bool skip_split = knocked_out(a.window > 0 ? Knock::kAttnSliding : Knock::kAttnFull);
  // G4_CUDA_ATTN_GROUP=0: decode_kernel for every shape (comparisons)
  static const bool group_kernel_on = env_switch("G4_CUDA_ATTN_GROUP", true);
  if (skip_split) {
    // knocked out (benchmarks only)
  } else if (takes_tensor_cores(a)) {
    attn_decode_tc(a, ns, part, ml, s);
  } else if (group_kernel_on && pow2_d && (group == 1 || group == 2 || group == 4 || group == 8)) {
    // Derived keys (a.kw) the tensor-core kernel does not take (an f32 cache, or G4_CUDA_ATTN_TC=0) with pairs
    // a multiple of 8 take derived_scores, held to two blocks an SM (faster on the H200 than one block
    // without spills: 333 against 396 us a full layer at 65,536 keys). For comparisons:
    // G4_CUDA_DERIVED_BATCHED=0, the stored-key kernel's element-by-element derivation;
    // G4_CUDA_DERIVED_BLOCKS=1, the compiler's register count.
    static const bool derived_batched = env_switch("G4_CUDA_DERIVED_BATCHED", true);
    static const int derived_blocks = std::min(2, std::max(1, env_int("G4_CUDA_DERIVED_BLOCKS", 2)));
    const int variant = a.kw && derived_batched && a.pairs % 8 == 0 ? derived_blocks : 0;
    size_t smem = size_t(group * a.D + kWarps * group * 32 + kMaxTile * group + 3 * group) * sizeof(float);
    if (variant) smem = (smem + 15) / 16 * 16 + size_t(group * a.pairs) * sizeof(float4);
    switch (group * 2 + (a.cache_bf16 ? 1 : 0)) {
      case 2: launch_group<float, 1>(a, variant, grid, smem, s, ns, part, ml); break;
      case 3: launch_group<__nv_bfloat16, 1>(a, variant, grid, smem, s, ns, part, ml); break;
      case 4: launch_group<float, 2>(a, variant, grid, smem, s, ns, part, ml); break;
      case 5: launch_group<__nv_bfloat16, 2>(a, variant, grid, smem, s, ns, part, ml); break;
      case 8: launch_group<float, 4>(a, variant, grid, smem, s, ns, part, ml); break;
      case 9: launch_group<__nv_bfloat16, 4>(a, variant, grid, smem, s, ns, part, ml); break;
      case 16: launch_group<float, 8>(a, variant, grid, smem, s, ns, part, ml); break;
      default: launch_group<__nv_bfloat16, 8>(a, variant, grid, smem, s, ns, part, ml); break;
    }
  } else {
    decode_any_shape(a, ns, part, ml, s);
  }
  // The merge's grid: T Hq rows by D / kCombineDims.
  const dim3 cgrid(unsigned(a.T * a.Hq), unsigned((a.D + kCombineDims - 1) / kCombineDims));
  if (!knocked_out(Knock::kCombine))
    launch(combine_kernel, cgrid, kCombineThreads, 0, s, a, ns, part, ml, static_cast<uint4*>(xq),
           x_chunks_padded(a.Hq * a.D), append);
  else
    write_alone();
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
