// Grid sizes of the grid-striding kernels (host arithmetic: runs without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/grid.h"

namespace g4 {
namespace {

// The rounds a grid of `blocks` takes over `items` (the most items one block takes).
int64_t rounds(int64_t blocks, int64_t items) { return (items + blocks - 1) / blocks; }

TEST(CudaGrid, EvenRoundsKeepTheRoundsAndFillEveryOne) {
  // The 31B's one-token launches on 264 resident blocks (row-group blocks of gate/up, a full layer's q/k,
  // o and down, the lm_head), a launch smaller than a wave, and a prime number of items.
  for (const int64_t items : {int64_t(1344), int64_t(576), int64_t(672), int64_t(8192), int64_t(100), int64_t(1009)}) {
    const int64_t resident = 264;
    const int64_t wave = cuda::stride_blocks_for(resident, items, false);
    const int64_t even = cuda::stride_blocks_for(resident, items, true);
    EXPECT_EQ(wave, std::min(resident, items)) << items;
    EXPECT_LE(even, wave) << items;
    EXPECT_EQ(rounds(even, items), rounds(wave, items)) << items << ": even rounds take as many rounds";
    // Every round but the last is full by construction; the last is at least as full as with one wave.
    const int64_t last_even = items - (rounds(even, items) - 1) * even;
    const int64_t last_wave = items - (rounds(wave, items) - 1) * wave;
    EXPECT_GE(last_even * wave, last_wave * even) << items;
    // With fewer blocks the last round would need another round.
    if (even > 1) EXPECT_GT(rounds(even - 1, items), rounds(even, items)) << items;
  }
  EXPECT_EQ(cuda::stride_blocks_for(264, 1344, true), 224);  // 6 items a block instead of 5 rounds and 24 blocks
  EXPECT_EQ(cuda::stride_blocks_for(264, 576, true), 192);
}

}  // namespace
}  // namespace g4
