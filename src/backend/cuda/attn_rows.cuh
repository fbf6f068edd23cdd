// Device helpers shared by the attention kernels (attention.cu, attn_decode_tc.cu, attn_gather.cu): which
// sequence a query row belongs to, where key position pk lives (the sequence's new rows when pk >= p0, else its
// cache slot: pk, or pk % capacity for a ring), which keys a query sees, and a cached or new element as f32
// (derived keys too).
#pragma once

#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/seq_table.cuh"

namespace g4::cuda {

// What a query row needs of its sequence: the sequence's new keys/values (k, v: its first row), its cache,
// the position of its first new key (p0), the query's own position (pq), its index among the sequence's rows
// of the launch (i) and their count (n).
struct RowSeq {
  const float* k;
  const float* v;
  const void* ck;
  const void* cv;
  int64_t p0, pq;
  int i, n;
};

__device__ __forceinline__ RowSeq row_seq(const AttnArgs& a, int64_t row) {
  int64_t p0;
  const SeqEntry& e = entry_of(a.seqs, row, &p0);
  const int i = int(row - e.row0);
  return RowSeq{a.k + e.row0 * a.Hkv * a.D, a.v + e.row0 * a.Hkv * a.D, e.ck, e.cv, p0, p0 + i, i, e.n};
}

template <class CT>
__device__ __forceinline__ const void* key_row(const AttnArgs& a, const RowSeq& r, const float* fresh,
                                               const void* cache, int64_t pk, int64_t g) {
  if (pk >= r.p0) return fresh + ((pk - r.p0) * a.Hkv + g) * a.D;
  const int64_t slot = a.ring ? pk % a.capacity : pk;
  return static_cast<const CT*>(cache) + (slot * a.Hkv + g) * a.D;
}

// The two bf16 values packed in w (low half first) as floats.
__device__ __forceinline__ void bf16x2_to_f32(uint32_t w, float* x) {
  x[0] = __uint_as_float(w << 16), x[1] = __uint_as_float(w & 0xFFFF0000u);
}

// The keys query position pq sees: [lo, hi).
__device__ __forceinline__ void key_range(const AttnArgs& a, int64_t pq, int64_t* lo, int64_t* hi) {
  *lo = a.window > 0 ? max(int64_t(0), pq - a.window + 1) : 0;
  *hi = pq + 1;
}

// Split `split` of n_split over a query's visible keys [lo, hi): keys [ks, ks + per) within them, equal
// slices of a whole number of a.split_min keys (32 by default: one tile of the tensor-core kernel, one warp's
// keys in the group kernel), so that a short context fills a few splits instead of spreading one or two keys
// over each of the tens of splits that a large cache capacity sizes (pick_split), and no split ends in a
// nearly empty tile (a 4,096-slot cache's 16 sliding splits at depth 512: 9 of 64 keys, not 16 of 33); the
// splits past the keys get none and leave (m, l) = (-inf, 0), which the merge weighs 0. A function of the
// query's position alone: a verify, a batch and a one-token step slice alike. (Written so that the
// tensor-core kernels keep the registers they had without the floor: other forms spilled.)
struct SplitKeys {
  int64_t ks, ke;
  int per;
};
__device__ __forceinline__ int64_t split_size(const AttnArgs& a, int64_t lo, int64_t hi, int n_split) {
  // (32-bit unsigned: a query sees a window or a cache of keys, < 2^31; a 64-bit division is a longer routine,
  // and the signed form made ptxas spill in the tensor-core kernel of 512-dim derived keys)
  const int m = a.split_min, per = max(int((unsigned(hi - lo) + unsigned(n_split) - 1u) / unsigned(n_split)), m);
  return int64_t((per + m - 1) / m * m);
}
__device__ __forceinline__ SplitKeys split_keys(const AttnArgs& a, int64_t lo, int64_t hi, int n_split, int split) {
  const int64_t per = split_size(a, lo, hi, n_split);
  const int64_t ks = lo + split * per;  // (past hi for the splits past the keys: then ke < ks)
  return SplitKeys{ks, min(hi, ks + per), int(per)};
}

// The splits that hold keys for a query seeing [lo, hi): the first `live` of n_split (as split_keys slices).
// The merge reads only those: the others' (m, l) = (-inf, 0) would add exact zeros.
__device__ __forceinline__ int live_splits(const AttnArgs& a, int64_t lo, int64_t hi, int n_split) {
  const int64_t per = split_size(a, lo, hi, n_split);
  return min(n_split, (int(hi - lo) + int(per) - 1) / int(per));
}

// A split past the query's keys writes nothing and is done (true): the merge (live_splits) never reads it.
// Writing zeros there cost, for 8 queries over a full layer of the 31B with a 16K cache (66 splits of
// 512-dim rows), 35 MB a layer (H200: skipping them, 8 sequences +2.2%, one +1.1%; docs/PERF.md).
__device__ __forceinline__ bool empty_split_done(bool empty) {
  if (!empty) return false;
  grid_dependency_sync();  // (before any return: the kernel completes after the one it follows)
  return true;
}
__device__ __forceinline__ bool empty_split_done(int64_t ks, int64_t ke) { return empty_split_done(!(ks < ke)); }

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// Element i of a row that is f32 when fresh (rounded to CT), else CT.
template <class CT>
__device__ __forceinline__ float row_at(const void* row, bool fresh, int64_t i) {
  return fresh ? to_f32(CT(static_cast<const float*>(row)[i])) : to_f32(static_cast<const CT*>(row)[i]);
}

// Element j of the key derived from the value row `vrow` (a.kw set: K=V layers storing V only) at
// position pk: RoPE(V * kw), with the products and sums rounded one by one as the host computes them.
template <class CT>
__device__ __forceinline__ float derived_key_at(const AttnArgs& a, const void* vrow, bool fresh, int64_t pk, int j) {
  const int half = int(a.D) / 2, i = j < half ? j : j - half, partner = j < half ? j + half : i;
  const float x = __fmul_rn(row_at<CT>(vrow, fresh, j), a.kw[j]);
  if (i >= a.pairs) return x;
  const float y = __fmul_rn(row_at<CT>(vrow, fresh, partner), a.kw[partner]);
  const float2 cs = reinterpret_cast<const float2*>(a.rope_cs)[pk * a.pairs + i];
  return j < half ? __fsub_rn(__fmul_rn(x, cs.x), __fmul_rn(y, cs.y)) : __fadd_rn(__fmul_rn(x, cs.x), __fmul_rn(y, cs.y));
}

}  // namespace g4::cuda
