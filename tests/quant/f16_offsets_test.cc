// f16-exact offsets (quant/f16_offsets.h): the zero-point search against a brute-force scan of every bf16 / f16
// value, and the quantizer's pairs: every asymmetric group's s and s * z are f16 numbers (what GGUF Q4_1 and
// MLX f16 exports store), the min-max half-step bound still holds, and the reconstruction error is no worse
// than that of the free zero points (--offsets free).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "quant/f16_offsets.h"
#include "quant/quantizer.h"

namespace g4 {
namespace {

float dtype_value(DType t, uint16_t b) { return t == DType::kBF16 ? bf16_to_f32(b) : f16_to_f32(b); }

// Every value of t in [lo, hi] (sign-magnitude bit patterns walked in order), the nearest exact one's distance.
double brute_force_distance(DType t, QuantKind k, float s, double target, double lo, double hi) {
  const uint16_t top = t == DType::kBF16 ? 0x7f80 : 0x7c00;  // +infinity
  double best = std::numeric_limits<double>::infinity();
  for (int key = -int(top) + 1; key < int(top); ++key) {
    const float v = dtype_value(t, key < 0 ? uint16_t(0x8000 | -key) : uint16_t(key));
    if (v < lo || v > hi || !offset_f16_exact(k, s, v)) continue;
    best = std::min(best, std::fabs(double(v) - target));
  }
  return best;
}

TEST(F16Offsets, ExactnessOfValues) {
  EXPECT_TRUE(f16_exact(0));
  EXPECT_TRUE(f16_exact(65504));
  EXPECT_FALSE(f16_exact(65505));
  EXPECT_TRUE(f16_exact(1 + 0x1p-10));
  EXPECT_FALSE(f16_exact(1 + 0x1p-11));  // 12 significant bits
  EXPECT_TRUE(f16_exact(0x1p-24));       // the smallest subnormal
  EXPECT_TRUE(f16_exact(3 * 0x1p-24));
  EXPECT_FALSE(f16_exact(0x1p-25));
  EXPECT_FALSE(f16_exact(std::nan("")));
  // A bf16 scale of 8 significant bits times an integer zero point of 4: 12 bits, not exact; 7 times 4 is.
  EXPECT_FALSE(offset_f16_exact(QuantKind::kInt4, 255 * 0x1p-14f, 15));
  EXPECT_TRUE(offset_f16_exact(QuantKind::kInt4, 127 * 0x1p-14f, 15));
  EXPECT_TRUE(offset_f16_exact(QuantKind::kInt8, 255 * 0x1p-14f, -128));  // int8: offset s * (z + 128)
}

TEST(F16Offsets, NearestZeroMatchesBruteForce) {
  std::mt19937 g(3);
  std::uniform_real_distribution<double> u(0, 1);
  int found = 0, cases = 0;
  for (DType t : {DType::kBF16, DType::kF16}) {
    for (int i = 0; i < 120; ++i) {
      // Scales from subnormal-f16 to large, every mantissa; targets over the int4 zero-point range.
      const float s = dtype_value(t, t == DType::kBF16 ? f32_to_bf16(float(std::exp2(-22 + 26 * u(g))))
                                                      : f32_to_f16(float(std::exp2(-20 + 24 * u(g)))));
      const double target = i % 10 == 0 ? 15 * u(g) * 1e-3 : 15.5 * u(g);
      const double lo = target - 1.5 * u(g), hi = target + 1.5 * u(g);
      float z = NAN;
      const bool ok = nearest_exact_zero(t, QuantKind::kInt4, s, target, lo, hi, 64, &z);
      const double want = brute_force_distance(t, QuantKind::kInt4, s, target, lo, hi);
      ++cases;
      ASSERT_EQ(ok, std::isfinite(want)) << "s " << s << " target " << target << " [" << lo << ", " << hi << "]";
      if (!ok) continue;
      ++found;
      EXPECT_TRUE(offset_f16_exact(QuantKind::kInt4, s, z) && z >= lo && z <= hi) << s << " " << z;
      EXPECT_EQ(std::fabs(double(z) - target), want) << "s " << s << " target " << target << " z " << z;
    }
  }
  EXPECT_GT(found, cases / 2);
}

std::vector<float> test_weights(int64_t rows, int64_t cols) {
  std::mt19937 g(11);
  std::normal_distribution<float> n(0, 0.02f);
  std::student_t_distribution<float> heavy(3);
  std::vector<float> w(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    // Gaussian rows, heavy-tailed rows, all-positive and all-negative rows, small (offsets f16-subnormal), large,
    // and tiny rows (ranges below f16's smallest scale).
    const int kind = int(r % 7);
    const float scale = kind == 4 ? 1e-3f : kind == 5 ? 50.0f : kind == 6 ? 1e-6f : 1.0f;
    for (int64_t k = 0; k < cols; ++k) {
      float v = kind == 1 ? 0.01f * heavy(g) : n(g);
      if (kind == 2) v = std::fabs(v);
      if (kind == 3) v = -std::fabs(v);
      w[size_t(r * cols + k)] = v * scale;
    }
  }
  return w;
}

double scalar(DType t, const BulkBytes& b, int64_t i) {
  float f;
  convert_to_f32(t, b.data() + size_t(i) * dtype_size(t), 1, &f);
  return f;
}

double squared_error(const OwnedQuantWeight& q, const std::vector<float>& w) {
  std::vector<float> deq(size_t(q.q.cols));
  double e = 0;
  for (int64_t r = 0; r < q.q.rows; ++r) {
    dequantize_row(q.q, r, deq.data());
    for (int64_t k = 0; k < q.q.cols; ++k) e += std::pow(double(w[size_t(r * q.q.cols + k)]) - deq[size_t(k)], 2);
  }
  return e;
}

// Every group of every asymmetric int4 scheme with 16-bit scales gets an exact pair; the free quantizer does
// not (so the check has something to find), and the exact pairs reconstruct no worse.
TEST(F16Offsets, QuantizerPairsAreExact) {
  const int64_t rows = 56, cols = 256;
  const std::vector<float> w = test_weights(rows, cols);
  for (DType t : {DType::kBF16, DType::kF16})
    for (QuantMethod m : {QuantMethod::kMinMax, QuantMethod::kHqq})
      for (int64_t gs : {32, 64, 128}) {
        QuantScheme exact{QuantKind::kInt4, gs, false, m, t, true}, free = exact;
        free.f16_offsets = false;
        OwnedQuantWeight qe, qf;
        quantize_tensor(exact, w.data(), rows, cols, &qe, "w");
        quantize_tensor(free, w.data(), rows, cols, &qf, "w");
        int64_t inexact_e = 0, inexact_f = 0;
        for (int64_t i = 0; i < rows * (cols / gs); ++i) {
          inexact_e += !offset_f16_exact(QuantKind::kInt4, float(scalar(t, qe.scales, i)), float(scalar(t, qe.zeros, i)));
          inexact_f += !offset_f16_exact(QuantKind::kInt4, float(scalar(t, qf.scales, i)), float(scalar(t, qf.zeros, i)));
        }
        const double ee = squared_error(qe, w), ef = squared_error(qf, w);
        std::printf("%s %s: inexact groups %ld (free: %ld of %ld); sq error %.4e (free %.4e, %+.1f%%)\n",
                    exact.describe().c_str(), dtype_name(t).c_str(), long(inexact_e), long(inexact_f),
                    long(rows * (cols / gs)), ee, ef, 100 * (ee / ef - 1));
        EXPECT_EQ(inexact_e, 0) << exact.describe();
        if (t == DType::kBF16) {
          EXPECT_GT(inexact_f, rows * (cols / gs) / 4) << free.describe();
        }
        EXPECT_LE(ee, ef * 1.001) << exact.describe();
      }
}

}  // namespace
}  // namespace g4
