// The shared comparison (util/compare.h) must fail on NaN wherever it sits, on non-cancelling infinities
// and on a size mismatch, and must name the worst element.
#include "util/compare.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <limits>

namespace g4::testing_util {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

TEST(Compare, NaNAnywhereIsAnInfiniteDifference) {
  const std::vector<float> want{1, 2, 3, 4};
  for (size_t at = 0; at < want.size(); ++at) {
    std::vector<float> got = want;
    got[at] = kNaN;
    const Diff d = max_abs_diff(got, want);
    EXPECT_FALSE(d.max <= 1e-3) << "NaN at " << at;
    EXPECT_EQ(d.at, at);
    EXPECT_EQ(d.nonfinite, 1u);
    EXPECT_FALSE(all_close(got, want, 1e9)) << "NaN at " << at;
    // NaN on the expected side fails too.
    EXPECT_FALSE(max_abs_diff(want, got).max <= 1e-3);
  }
  // A later, larger finite difference does not hide an earlier NaN (a `!(x <= max)` scan would).
  std::vector<float> got{kNaN, 2, 3, 100};
  EXPECT_TRUE(std::isinf(max_abs_diff(got, want).max));
}

TEST(Compare, InfinitiesOnlyMatchThemselves) {
  EXPECT_EQ(max_abs_diff({kInf, 1}, {kInf, 1}).max, 0);
  EXPECT_TRUE(std::isinf(max_abs_diff({kInf, 1}, {-kInf, 1}).max));
  EXPECT_TRUE(std::isinf(max_abs_diff({kInf, 1}, {3, 1}).max));
}

TEST(Compare, ReportsWorstElementAndBounds) {
  const Diff d = max_abs_diff({1, 2.5f, 3}, {1, 2, 3.25f});
  EXPECT_DOUBLE_EQ(d.max, 0.5);
  EXPECT_EQ(d.at, 1u);
  EXPECT_TRUE(all_close({1, 2.5f}, {1, 2}, 0.5));
  EXPECT_FALSE(all_close({1, 2.5f}, {1, 2}, 0.49));
  // Per-element bounds: element 1 may differ by 1, element 0 by nothing.
  EXPECT_TRUE(all_close_each({1, 3}, {1, 2}, [](size_t i) { return i == 1 ? 1.0 : 0.0; }));
  EXPECT_FALSE(all_close_each({1.5f, 2}, {1, 2}, [](size_t i) { return i == 1 ? 1.0 : 0.0; }));
}

TEST(Compare, SizeMismatchFails) {
  EXPECT_FALSE(all_close({1, 2}, {1}, 1));
  EXPECT_NONFATAL_FAILURE(max_abs_diff({1, 2}, {1}), "Expected equality");
}

}  // namespace
}  // namespace g4::testing_util
