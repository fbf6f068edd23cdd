// The one comparison of float tensors used by the tests. NaN-safe: a NaN or infinite difference (NaN in
// either side, or infinities that do not cancel) counts as an infinite difference at the first such index,
// so `max <= bound` fails on it; `std::max(m, NaN)` would have kept m and passed.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace g4::testing_util {

struct Diff {
  double max = 0;       // largest |a - b|; +inf when any element is NaN or a non-cancelling infinity
  size_t at = 0;        // index of the first element attaining max
  size_t nonfinite = 0; // how many elements had a non-finite difference
};

inline double abs_diff(float a, float b) {
  const double d = std::fabs(double(a) - double(b));
  if (std::isfinite(d)) return d;
  // Equal infinities of the same sign are equal values; anything else non-finite is a failure.
  if (std::isinf(a) && a == b) return 0;
  return std::numeric_limits<double>::infinity();
}

// Max |a - b| over the common length. A size mismatch is a gtest failure and an infinite difference.
inline Diff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size()) d.max = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double x = abs_diff(a[i], b[i]);
    if (std::isinf(x)) ++d.nonfinite;
    if (x > d.max) { d.max = x; d.at = i; }
  }
  return d;
}

// Every element within its own bound: |got[i] - want[i]| <= bound(i). Reports the count of failing
// elements, the worst one (largest ratio of error to bound), and its index. NaN fails.
inline ::testing::AssertionResult all_close_each(const std::vector<float>& got, const std::vector<float>& want,
                                                 const std::function<double(size_t)>& bound) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != expected " << want.size();
  size_t bad = 0, worst_at = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = abs_diff(got[i], want[i]), b = bound(i);
    const double ratio = e <= b ? (b > 0 ? e / b : 0) : (b > 0 ? e / b : std::numeric_limits<double>::infinity());
    if (!(e <= b)) ++bad;
    if (!(ratio <= worst_ratio)) { worst_ratio = ratio; worst_at = i; }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream s;
  s << bad << " of " << got.size() << " elements out of bound; worst at " << worst_at << ": got " << got[worst_at]
    << " expected " << want[worst_at] << " |diff| " << abs_diff(got[worst_at], want[worst_at]) << " bound "
    << bound(worst_at);
  return ::testing::AssertionFailure() << s.str();
}

// The same with one absolute bound for every element.
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want, double bound) {
  return all_close_each(got, want, [bound](size_t) { return bound; });
}

}  // namespace g4::testing_util
