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
// cache stores them (derived keys: ck is null).
template <class CT>
__device__ __forceinline__ void kv_write_at(const SeqTable& st, const float* k, const float* v, int64_t row,
                                            int64_t capacity, bool ring, int64_t i) {
  const int64_t t = i / row, e = i % row;
  int64_t p0;
  const SeqEntry& se = entry_of(st, t, &p0);
  const int64_t tl = t - se.row0;
  if (ring && tl < int64_t(se.n) - capacity) return;
  const int64_t pos = p0 + tl, slot = ring ? pos % capacity : pos;
  if (se.ck) static_cast<CT*>(se.ck)[slot * row + e] = CT(k[t * row + e]);
  static_cast<CT*>(se.cv)[slot * row + e] = CT(v[t * row + e]);
}

}  // namespace g4::cuda
