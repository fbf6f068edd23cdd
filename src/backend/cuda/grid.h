// Grid sizes of the grid-striding kernels (host only, so that tests can check them without a GPU).
#pragma once

#include <cstdint>

namespace g4::cuda {

// Blocks for `items` equal work items (row groups, tiles) when `resident` blocks fit the GPU at once: a
// one-wave grid, min(resident, items); with `even`, the fewest blocks that finish in as many rounds, so
// that every block takes the same number of items (to within one) and no last round runs with a few blocks
// (gate/up of the 31B at one token: 1,344 items, 264 resident blocks: 224 blocks of 6 items instead of 264
// whose sixth round runs 24). Which block takes an item changes no result (an item's sums never depend on
// it). The one-token integer GEMV takes even rounds (H200: +1.3% a token), so does the tensor-core GEMV of
// 2-4 tokens (H100: a verify of 4 -1.5%); its 5-8-token form and gemm_mma keep the one-wave grid (even
// rounds: 8 sequences -2%, docs/PERF.md).
inline int64_t stride_blocks_for(int64_t resident, int64_t items, bool even) {
  if (items <= resident) return items;
  const int64_t rounds = (items + resident - 1) / resident;
  return even ? (items + rounds - 1) / rounds : resident;
}

}  // namespace g4::cuda
