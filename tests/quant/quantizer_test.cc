// Quantizer round trips against the bounds the schemes imply, HQQ against min-max, and the ref backend's
// quantized matmul against dequantize-then-f32 matmul.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/backend.h"
#include "base/error.h"
#include "quant/quantizer.h"

namespace g4 {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float stddev = 0.02f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

float scalar_at(DType t, const void* base, int64_t i) {
  float f;
  convert_to_f32(t, static_cast<const uint8_t*>(base) + size_t(i) * dtype_size(t), 1, &f);
  return f;
}

struct Case {
  QuantKind kind;
  bool symmetric;
  int64_t group;
  DType sd;
};

// Min-max: every element is within half a step of its dequantized value, where the step is the scale as
// stored (rounded to its dtype). The quantizer rounds scales up and keeps the zero point inside the code
// range, so rounding never pushes an element further than half a step; the 1e-6 relative slack covers
// the f32 arithmetic of (q - z) * s.
TEST(Quantizer, MinMaxErrorWithinHalfStep) {
  const Case cases[] = {{QuantKind::kInt4, false, 32, DType::kBF16}, {QuantKind::kInt4, true, 64, DType::kBF16},
                        {QuantKind::kInt8, true, 32, DType::kBF16},  {QuantKind::kInt8, false, 128, DType::kF16},
                        {QuantKind::kInt4, false, 0, DType::kF32},   {QuantKind::kInt8, true, 0, DType::kBF16}};
  for (const Case& c : cases) {
    for (int64_t cols : {int64_t(128), int64_t(384)}) {
      const int64_t rows = 7;
      std::vector<float> w = gaussian(size_t(rows * cols), uint32_t(cols + int(c.kind)));
      w[5] = 0.3f;  // an outlier stretches one group
      w[size_t(cols) + 3] = -0.25f;
      QuantScheme s{c.kind, c.group, c.symmetric, QuantMethod::kMinMax, c.sd};
      OwnedQuantWeight q;
      quantize_tensor(s, w.data(), rows, cols, &q, "t");
      validate(q.q, "t");
      std::vector<float> deq(static_cast<size_t>(cols));
      double worst = 0;
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(q.q, r, deq.data());
        for (int64_t k = 0; k < cols; ++k) {
          const float step = scalar_at(c.sd, q.q.scales, r * q.q.groups_per_row() + k / q.q.group_size);
          const double err = std::fabs(double(w[size_t(r * cols + k)]) - deq[size_t(k)]);
          ASSERT_LE(err, step * 0.5 * (1 + 1e-6) + 1e-12)
              << s.describe() << " cols " << cols << " at (" << r << ", " << k << "): w " << w[size_t(r * cols + k)]
              << " deq " << deq[size_t(k)] << " step " << step;
          worst = std::max(worst, err / step);
        }
      }
      EXPECT_GT(worst, 0.3) << "the bound should be nearly attained on random data: " << s.describe();
    }
  }
}

// Values already on a grid with power-of-two scale and an integer zero point inside the code range come
// back exactly (every group holds the lowest and the highest code, so min-max recovers the grid).
TEST(Quantizer, ValuesOnTheGridAreExact) {
  for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8}) {
    const float lo = kind == QuantKind::kInt4 ? 0 : -128, hi = kind == QuantKind::kInt4 ? 15 : 127;
    const float z = kind == QuantKind::kInt4 ? 6 : -3, s = 1.0f / 256;
    const int64_t rows = 3, cols = 64, gs = 32;
    std::mt19937 g(1);
    std::vector<float> w(size_t(rows * cols)), codes(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      const int64_t k = int64_t(i) % gs;
      codes[i] = k == 0 ? lo : k == 1 ? hi : float(std::uniform_int_distribution<int>(int(lo), int(hi))(g));
      w[i] = (codes[i] - z) * s;
    }
    OwnedQuantWeight q;
    quantize_tensor({kind, gs, false, QuantMethod::kMinMax, DType::kBF16}, w.data(), rows, cols, &q, "grid");
    std::vector<float> deq(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(q.q, r, deq.data());
      for (int64_t k = 0; k < cols; ++k) ASSERT_EQ(deq[size_t(k)], w[size_t(r * cols + k)]) << "at " << r << "," << k;
    }
  }
}

TEST(Quantizer, ZeroAndConstantGroups) {
  std::vector<float> w(64, 0.0f);
  for (int k = 32; k < 64; ++k) w[size_t(k)] = -0.125f;
  for (bool sym : {false, true}) {
    OwnedQuantWeight q;
    quantize_tensor({QuantKind::kInt4, 32, sym, QuantMethod::kMinMax, DType::kBF16}, w.data(), 1, 64, &q, "c");
    std::vector<float> deq(64);
    dequantize_row(q.q, 0, deq.data());
    // An all-zero group has no range: it must come back exactly, with a finite non-zero scale.
    for (int k = 0; k < 32; ++k) EXPECT_EQ(deq[size_t(k)], 0.0f) << "sym " << sym << " k " << k;
    const float step = scalar_at(DType::kBF16, q.q.scales, 1);
    EXPECT_GT(step, 0.0f);
    for (int k = 32; k < 64; ++k) EXPECT_LE(std::fabs(deq[size_t(k)] - w[size_t(k)]), step / 2) << "sym " << sym;
  }
}

TEST(Quantizer, RejectsNonFiniteAndBadGroups) {
  std::vector<float> w(64, 0.01f);
  w[7] = NAN;
  OwnedQuantWeight q;
  EXPECT_THROW(quantize_tensor({QuantKind::kInt4, 32, false, QuantMethod::kMinMax, DType::kBF16}, w.data(), 1, 64, &q, "n"),
               Error);
  w[7] = 0;
  try {
    quantize_tensor({QuantKind::kInt4, 48, false, QuantMethod::kMinMax, DType::kBF16}, w.data(), 1, 64, &q, "layers.0.x");
    FAIL() << "group 48 on rows of 64 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.x: group size 48"), std::string::npos) << e.what();
  }
}

double sq_error(const OwnedQuantWeight& q, const std::vector<float>& w) {
  std::vector<float> deq(static_cast<size_t>(q.q.cols));
  double e = 0;
  for (int64_t r = 0; r < q.q.rows; ++r) {
    dequantize_row(q.q, r, deq.data());
    for (int64_t k = 0; k < q.q.cols; ++k) e += std::pow(double(w[size_t(r * q.q.cols + k)]) - deq[size_t(k)], 2);
  }
  return e;
}

// HQQ's optimised zero point (and least-squares scale refit) must lower the reconstruction error of
// min-max at the same bits; per group it falls back to min-max, so it can never be worse.
TEST(Quantizer, HqqBeatsMinMax) {
  for (int64_t gs : {32, 64, 128}) {
    const int64_t rows = 64, cols = 512;
    std::vector<float> w = gaussian(size_t(rows * cols), uint32_t(gs));
    // Heavier tails in some rows, as trained weights have.
    std::mt19937 g(7);
    std::student_t_distribution<float> t(3.0f);
    for (int64_t i = 0; i < 16 * cols; ++i) w[size_t(i)] = 0.01f * t(g);
    OwnedQuantWeight mm, hq;
    quantize_tensor({QuantKind::kInt4, gs, false, QuantMethod::kMinMax, DType::kBF16}, w.data(), rows, cols, &mm, "w");
    quantize_tensor({QuantKind::kInt4, gs, false, QuantMethod::kHqq, DType::kBF16}, w.data(), rows, cols, &hq, "w");
    const double e_mm = sq_error(mm, w), e_hq = sq_error(hq, w);
    std::printf("int4 g%ld: min-max sq error %.4e, HQQ %.4e (%.1f%% lower)\n", long(gs), e_mm, e_hq,
                100 * (1 - e_hq / e_mm));
    EXPECT_LT(e_hq, 0.95 * e_mm) << "group " << gs;
  }
}

// The ref backend packs a QuantWeight by dequantizing it; its matmul must equal a plain f32 matmul over
// the dequantized rows (same f32 weights, double accumulation: identical results).
TEST(Quantizer, RefMatmulEqualsDequantizeThenMatmul) {
  auto be = make_backend("ref");
  for (int64_t T : {1, 3}) {
    const int64_t out = 5, in = 96;
    std::vector<float> w = gaussian(size_t(out * in), 3);
    OwnedQuantWeight q;
    quantize_tensor({QuantKind::kInt4, 32, false, QuantMethod::kMinMax, DType::kBF16}, w.data(), out, in, &q, "w");
    auto packed = be->pack(WeightView{"w", DType::kBF16, {out, in}, nullptr, &q.q}, WeightRole::kLinear);
    std::vector<float> x = gaussian(size_t(T * in), 4, 1.0f), y(size_t(T * out));
    Tensor xt = be->empty({T, in}), yt = be->empty({T, out});
    be->upload(xt, x.data());
    be->matmul(xt, *packed, yt);
    be->download(yt, y.data());
    std::vector<float> deq(static_cast<size_t>(in));
    for (int64_t o = 0; o < out; ++o) {
      dequantize_row(q.q, o, deq.data());
      for (int64_t t = 0; t < T; ++t) {
        double acc = 0;
        for (int64_t i = 0; i < in; ++i) acc += double(x[size_t(t * in + i)]) * deq[size_t(i)];
        EXPECT_EQ(y[size_t(t * out + o)], float(acc)) << "T " << T << " out " << o;
      }
    }
  }
}

}  // namespace
}  // namespace g4
