// Device helpers shared by the decode attention kernels (attention.cu, attn_decode_tc.cu): which sequence a
// query row belongs to, where key position pk lives (the sequence's new rows when pk >= p0, else its cache
// slot: pk, or pk % capacity for a ring) and which keys a query sees.
#pragma once

#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/seq_table.cuh"

namespace g4::cuda {

// What a query row needs of its sequence: the sequence's new keys/values (k, v: its first row), its cache,
// the position of its first new key (p0) and the query's own position (pq).
struct RowSeq {
  const float* k;
  const float* v;
  const void* ck;
  const void* cv;
  int64_t p0, pq;
};

__device__ __forceinline__ RowSeq row_seq(const AttnArgs& a, int64_t row) {
  int64_t p0;
  const SeqEntry& e = entry_of(a.seqs, row, &p0);
  return RowSeq{a.k + e.row0 * a.Hkv * a.D, a.v + e.row0 * a.Hkv * a.D, e.ck, e.cv, p0, p0 + row - e.row0};
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

}  // namespace g4::cuda
