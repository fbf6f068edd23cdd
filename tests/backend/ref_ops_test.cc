// The ref backend's ops against independent formulations: hand-computed values, a brute-force
// masked attention over the full key matrix, and the format.h dequantization rules.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>

#include "backend/backend.h"
#include "base/error.h"

namespace g4 {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor make(Backend& be, std::vector<int64_t> shape, const std::vector<float>& v) {
  Tensor t = be.empty(std::move(shape));
  be.upload(t, v.data());
  return t;
}

std::vector<float> get(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.download(t, v.data());
  return v;
}

TEST(RefOps, RmsNormGeluSoftcapValues) {
  auto be = make_backend("ref");
  Tensor x = make(*be, {1, 2}, {3.0f, 4.0f});
  std::vector<float> wv = {2.0f, 0.5f};
  auto w = be->pack({"w", DType::kF32, {2}, wv.data()}, WeightRole::kNorm);
  Tensor y = be->empty({1, 2});
  be->rms_norm(x, w.get(), 0.0f, y);
  const float inv = 1.0f / std::sqrt(12.5f);
  EXPECT_NEAR(get(*be, y)[0], 3 * inv * 2, 1e-6);
  EXPECT_NEAR(get(*be, y)[1], 4 * inv * 0.5f, 1e-6);

  Tensor g = make(*be, {3}, {1.0f, -2.0f, 0.0f});
  Tensor u = make(*be, {3}, {1.0f, 1.0f, 5.0f});
  Tensor o = be->empty({3});
  be->gelu_mul(g, u, o);
  EXPECT_NEAR(get(*be, o)[0], 0.8411920f, 1e-6);   // gelu_tanh(1)
  EXPECT_NEAR(get(*be, o)[1], -0.0454023f, 1e-6);  // gelu_tanh(-2)
  EXPECT_EQ(get(*be, o)[2], 0.0f);

  Tensor c = make(*be, {2}, {30.0f, -600.0f});
  be->softcap(c, 30.0f);
  EXPECT_NEAR(get(*be, c)[0], 30 * std::tanh(1.0), 1e-5);
  EXPECT_NEAR(get(*be, c)[1], -30.0f, 1e-5);
}

TEST(RefOps, RopeIsAComplexRotationOfPairedDims) {
  auto be = make_backend("ref");
  const int T = 5, H = 3, D = 16, pairs = 3;  // partial: pairs 0-2 rotate (with 8-10), the rest pass
  const auto v = randn(size_t(T * H * D), 1);
  Tensor x = make(*be, {T, H, D}, v);
  be->rope(x, 100, {1000.0f, pairs});
  const auto r = get(*be, x);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int d = 0; d < D / 2; ++d) {
        const size_t i = size_t((t * H + h) * D + d), j = i + D / 2;
        if (d >= pairs) {
          EXPECT_EQ(r[i], v[i]);
          EXPECT_EQ(r[j], v[j]);
          continue;
        }
        const double ang = (100.0 + t) * std::pow(1000.0, -2.0 * d / D);
        const std::complex<double> z = std::complex<double>(v[i], v[j]) * std::polar(1.0, ang);
        EXPECT_NEAR(r[i], z.real(), 2e-4);
        EXPECT_NEAR(r[j], z.imag(), 2e-4);
      }
}

// Brute force: full causal (+window) softmax attention over all positions at once, no cache.
std::vector<float> brute_attention(const std::vector<float>& q, const std::vector<float>& k,
                                   const std::vector<float>& v, int T, int Hq, int Hkv, int D, int window) {
  std::vector<float> out(size_t(T * Hq * D));
  for (int i = 0; i < T; ++i)
    for (int h = 0; h < Hq; ++h) {
      const int g = h / (Hq / Hkv);
      std::vector<double> p(size_t(T), 0.0);
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= i; ++j) {
        if (window > 0 && i - j >= window) continue;
        double s = 0;
        for (int d = 0; d < D; ++d) s += double(q[size_t((i * Hq + h) * D + d)]) * k[size_t((j * Hkv + g) * D + d)];
        p[size_t(j)] = s;
        mx = std::max(mx, s);
      }
      for (int j = 0; j <= i; ++j)
        if (!(window > 0 && i - j >= window)) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
        else p[size_t(j)] = 0;
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int j = 0; j <= i; ++j) acc += p[size_t(j)] * v[size_t((j * Hkv + g) * D + d)];
        out[size_t((i * Hq + h) * D + d)] = float(acc / sum);
      }
    }
  return out;
}

TEST(RefOps, AttentionThroughRingAndFlatCachesMatchesBruteForce) {
  auto be = make_backend("ref");
  const int T = 29, Hq = 4, Hkv = 2, D = 8;
  const auto q = randn(size_t(T * Hq * D), 2), k = randn(size_t(T * Hkv * D), 3), v = randn(size_t(T * Hkv * D), 4);
  for (int window : {0, 1, 5}) {
    const auto expect = brute_attention(q, k, v, T, Hq, Hkv, D, window);
    for (int chunk : {1, 4, 7, 29}) {
      KvLayer cache = be->make_kv_layer(window > 0 ? window : T, Hkv, D, window > 0);
      std::vector<float> got;
      for (int p0 = 0; p0 < T; p0 += chunk) {
        const int n = std::min(chunk, T - p0);
        auto slice = [&](const std::vector<float>& s, int H) {
          return std::vector<float>(s.begin() + p0 * H * D, s.begin() + (p0 + n) * H * D);
        };
        Tensor tq = make(*be, {n, Hq, D}, slice(q, Hq));
        Tensor tk = make(*be, {n, Hkv, D}, slice(k, Hkv));
        Tensor tv = make(*be, {n, Hkv, D}, slice(v, Hkv));
        Tensor out = be->empty({n, Hq, D});
        be->attention(tq, tk, tv, cache, p0, window, out);
        be->kv_append(cache, tk, tv, p0);
        const auto o = get(*be, out);
        got.insert(got.end(), o.begin(), o.end());
      }
      ASSERT_EQ(got.size(), expect.size());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], expect[i], 1e-5) << "window " << window << " chunk " << chunk << " at " << i;
    }
  }
}

TEST(RefOps, QuantizedPackEqualsFormatRules) {
  auto be = make_backend("ref");
  // int4, 1 row of 4, group 2, asymmetric bf16 scales/zeros: w = (q - z) * s.
  const uint8_t codes[2] = {0x51, 0xf0};  // elements 1, 5, 0, 15 (low nibble first)
  const uint16_t scales[2] = {f32_to_bf16(0.5f), f32_to_bf16(2.0f)};
  const uint16_t zeros[2] = {f32_to_bf16(1.0f), f32_to_bf16(7.5f)};
  QuantWeight q4{QuantKind::kInt4, 1, 4, 2, codes, DType::kBF16, scales, zeros};
  auto w = be->pack({"q4", DType::kF32, {1, 4}, nullptr, &q4}, WeightRole::kLinear);
  Tensor x = make(*be, {4, 4}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});  // identity picks each weight
  Tensor y = be->empty({4, 1});
  be->matmul(x, *w, y);
  EXPECT_EQ(get(*be, y), (std::vector<float>{0.0f, 2.0f, -15.0f, 15.0f}));

  // int8 symmetric per-row: w = q * s.
  const int8_t c8[3] = {-128, 0, 127};
  const float s8[1] = {0.25f};
  QuantWeight q8{QuantKind::kInt8, 1, 3, 3, reinterpret_cast<const uint8_t*>(c8), DType::kF32, s8, nullptr};
  auto w8 = be->pack({"q8", DType::kF32, {1, 3}, nullptr, &q8}, WeightRole::kLinear);
  Tensor x8 = make(*be, {1, 3}, {1, 1, 1});
  Tensor y8 = be->empty({1, 1});
  be->matmul(x8, *w8, y8);
  EXPECT_EQ(get(*be, y8)[0], (-128 + 127) * 0.25f);

  QuantWeight bad = q4;
  bad.group_size = 3;
  EXPECT_THROW(be->pack({"bad", DType::kF32, {1, 4}, nullptr, &bad}, WeightRole::kLinear), Error);
}

// Backend::copy (the default, through the host, as ref and cpu run it): into a row view of a larger tensor,
// the other rows left alone; a size mismatch is one clear error.
TEST(RefOps, CopyIntoARowViewLeavesTheOtherRows) {
  for (const char* name : {"ref", "cpu"}) {
    auto be = make_backend(name);
    Tensor big = make(*be, {3, 2}, {1, 2, 3, 4, 5, 6});
    Tensor src = make(*be, {1, 2}, {7, 8});
    Tensor row = big.rows(1, 1);
    be->copy(src, row);
    EXPECT_EQ(get(*be, big), (std::vector<float>{1, 2, 7, 8, 5, 6})) << name;
    Tensor small = be->empty({1, 1});
    EXPECT_THROW(be->copy(src, small), Error) << name;
  }
}

}  // namespace
}  // namespace g4
