// Device side of the sequence table (kernels.h SeqTable): which sequence owns a row of a launch.
#pragma once

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace g4::cuda {

// The table entry owning launch row t (entries sorted by row0, no gaps), and its first position: the entry's
// p0, which in a recorded step (dpos set) is relative to the entry's replayed position dpos[i].
__device__ __forceinline__ const SeqEntry& entry_of(const SeqTable& st, int64_t t, int64_t* p0) {
  int i = 0;
  while (i + 1 < st.n && t >= st.e[i + 1].row0) ++i;
  *p0 = st.dpos ? st.dpos[i] + st.e[i].p0 : st.e[i].p0;
  return st.e[i];
}

// Element i of a launch's rows [T, row] of k and v (f32) stored in the owning sequence's cache (CT) at its
// position's slot, unless a ring would overwrite it with a later row of the same chunk; keys only where the
// cache stores them (derived keys: ck is null). Index arithmetic in 32 bits (a launch's T * row elements and
// a position stay below 2^31: kv_write and attention check the first, the model's context bounds the second),
// the cache offset in 64: one 32-bit division for t and one modulo for a ring's slot instead of 64-bit ones.
template <class CT>
__device__ __forceinline__ void kv_write_at(const SeqTable& st, const float* k, const float* v, unsigned row,
                                            unsigned capacity, bool ring, unsigned i) {
  const unsigned t = i / row, e = i - t * row;
  int64_t p0;
  const SeqEntry& se = entry_of(st, t, &p0);
  const int tl = int(t) - se.row0;
  if (ring && tl < se.n - int(capacity)) return;
  const unsigned pos = unsigned(p0) + unsigned(tl), slot = ring ? pos % capacity : pos;
  const int64_t at = int64_t(slot) * row + e, from = int64_t(i);
  if (se.ck) static_cast<CT*>(se.ck)[at] = CT(k[from]);
  static_cast<CT*>(se.cv)[at] = CT(v[from]);
}

}  // namespace g4::cuda
