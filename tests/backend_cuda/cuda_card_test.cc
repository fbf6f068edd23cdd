// The card classes that pick kernel shapes (host arithmetic: runs without a GPU).
#include <gtest/gtest.h>

#include <climits>

#include "backend/cuda/card.h"

namespace g4 {
namespace {

TEST(CudaCard, MemoryPeakFromClockAndBusWidth) {
  // An H100 80GB HBM3 (SXM) reports a 2,619 MHz memory clock on a 5,120-bit bus: 3.35 TB/s.
  EXPECT_NEAR(cuda::memory_peak_bytes_s(2619000, 5120), 3.352e12, 1e9);
  EXPECT_EQ(cuda::memory_peak_bytes_s(0, 5120), 0);
  EXPECT_EQ(cuda::memory_peak_bytes_s(2619000, 0), 0);
  EXPECT_EQ(cuda::memory_peak_bytes_s(-1, 5120), 0);
  // No integer overflow at the attributes' limits.
  EXPECT_GT(cuda::memory_peak_bytes_s(INT_MAX, INT_MAX), 1e20);
}

TEST(CudaCard, NarrowMemoryIsBelowFourTerabytesPerSecond) {
  EXPECT_TRUE(cuda::narrow_memory_peak(2619000, 5120));    // H100 80GB HBM3: 3.35 TB/s
  EXPECT_TRUE(cuda::narrow_memory_peak(1593000, 5120));    // an A100-class HBM2e card: 2.04 TB/s
  EXPECT_FALSE(cuda::narrow_memory_peak(3200000, 6144));   // a 6,144-bit bus at 3.2 GHz (H200-class): 4.9 TB/s
  EXPECT_FALSE(cuda::narrow_memory_peak(3125000, 5120));   // at the bound: 4.000 TB/s
  EXPECT_TRUE(cuda::narrow_memory_peak(3124999, 5120));    // just below it
  EXPECT_FALSE(cuda::narrow_memory_peak(0, 0));            // unknown: the fast cards' shapes
}

}  // namespace
}  // namespace g4
