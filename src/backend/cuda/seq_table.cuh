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

}  // namespace g4::cuda
