// The CPU backend's non-matmul ops against the ref backend on random inputs: norms, rope, gelu, softcap,
// scale, embed, slice and attention (flat and ring caches, sliding windows, GQA, head_dim 256 and 512,
// chunks larger than the window). f32 against the ref's f64 reductions: bounds are a few ulps times the
// reduction length.
#include <gtest/gtest.h>

#include "backend/ref/ref_backend.h"
#include "cpu_test_util.h"

namespace g4::test {
namespace {

std::unique_ptr<PackedWeight> norm_weight(Backend& be, const std::vector<float>& w) {
  return be.pack(WeightView{"norm", DType::kF32, {int64_t(w.size())}, w.data(), nullptr}, WeightRole::kNorm);
}

std::vector<double> rel_bound(const std::vector<float>& want, double rel, double abs) {
  std::vector<double> b(want.size());
  for (size_t i = 0; i < want.size(); ++i) b[i] = rel * std::fabs(want[i]) + abs;
  return b;
}

TEST(CpuOps, ElementwiseAndNorms) {
  std::mt19937 rng(10);
  for (const cpu::KernelTable* kt : tables()) {
    for (int64_t n : {1, 7, 256, 5376}) {
      for (int64_t rows : {1, 3, 17}) {
        RefBackend ref;
        CpuBackend cpu(2, kt);
        const std::vector<float> x = randn(size_t(rows * n), rng), o = randn(size_t(rows * n), rng, 3.0f);
        const std::vector<float> w = randn(size_t(n), rng);
        auto wr = norm_weight(ref, w);
        auto wc = norm_weight(cpu, w);
        const double red = (double(n) + 8) * kF32Eps;  // f32 sum of squares over n terms
        // rms_norm with and without weight.
        for (bool with_w : {true, false}) {
          Tensor a = make(ref, {rows, n}, x), b = ref.empty({rows, n});
          ref.rms_norm(a, with_w ? wr.get() : nullptr, 1e-6f, b);
          Tensor c = make(cpu, {rows, n}, x), d = cpu.empty({rows, n});
          cpu.rms_norm(c, with_w ? wc.get() : nullptr, 1e-6f, d);
          const auto want = fetch(ref, b);
          EXPECT_TRUE(within(fetch(cpu, d), want, rel_bound(want, red + 4 * kF32Eps, 1e-30)))
              << kt->name << " rms_norm n=" << n << " rows=" << rows;
        }
        {  // add_rms_norm
          Tensor a = make(ref, {rows, n}, x), ob = make(ref, {rows, n}, o);
          ref.add_rms_norm(a, ob, *wr, 1e-6f);
          Tensor c = make(cpu, {rows, n}, x), oc = make(cpu, {rows, n}, o);
          cpu.add_rms_norm(c, oc, *wc, 1e-6f);
          const auto want = fetch(ref, a);
          std::vector<double> bound(want.size());
          for (size_t i = 0; i < want.size(); ++i)
            bound[i] = (red + 4 * kF32Eps) * std::fabs(want[i] - x[i]) + 2 * kF32Eps * std::fabs(want[i]);
          EXPECT_TRUE(within(fetch(cpu, c), want, bound)) << kt->name << " add_rms_norm n=" << n;
        }
        {  // gelu_mul, softcap, scale
          Tensor g = make(ref, {rows, n}, x), u = make(ref, {rows, n}, o), out = ref.empty({rows, n});
          ref.gelu_mul(g, u, out);
          Tensor gc = make(cpu, {rows, n}, x), uc = make(cpu, {rows, n}, o), outc = cpu.empty({rows, n});
          cpu.gelu_mul(gc, uc, outc);
          const auto want = fetch(ref, out);
          EXPECT_TRUE(within(fetch(cpu, outc), want, rel_bound(want, 1e-5, 1e-6))) << kt->name << " gelu_mul";
          ref.softcap(u, 2.5f);
          cpu.softcap(uc, 2.5f);
          const auto want2 = fetch(ref, u);
          EXPECT_TRUE(within(fetch(cpu, uc), want2, rel_bound(want2, 4 * kF32Eps, 1e-7))) << kt->name << " softcap";
          ref.scale(g, 0.37f);
          cpu.scale(gc, 0.37f);
          EXPECT_EQ(fetch(cpu, gc), fetch(ref, g)) << kt->name << " scale";
          Tensor sr = ref.slice_rows(g, rows - 1, 1), sc = cpu.slice_rows(gc, rows - 1, 1);
          EXPECT_EQ(fetch(cpu, sc), fetch(ref, sr)) << kt->name << " slice_rows";
        }
      }
    }
  }
}

// The SIMD tables' gelu and softcap (vec_math.h): an element's value does not depend on the range a thread
// was given (tails go through a padded vector), extremes saturate as tanh does, and a NaN stays a NaN.
TEST(CpuOps, ElementwiseKernelsIgnoreTheRangeAndKeepNaN) {
  std::mt19937 rng(12);
  const int64_t n = 203;
  const std::vector<float> g = randn(size_t(n), rng, 4.0f), u = randn(size_t(n), rng);
  for (const cpu::KernelTable* kt : tables()) {
    std::vector<float> whole(g.size()), pieces(g.size());
    kt->gelu_mul(g.data(), u.data(), whole.data(), n);
    std::vector<float> cw = g, cp = g;
    kt->softcap(cw.data(), n, 30.0f);
    for (int64_t a = 0, len = 1; a < n; a += len, len = len % 11 + 2) {
      const int64_t m = std::min(len, n - a);
      kt->gelu_mul(g.data() + a, u.data() + a, pieces.data() + a, m);
      kt->softcap(cp.data() + a, m, 30.0f);
    }
    EXPECT_EQ(pieces, whole) << kt->name << " gelu_mul";
    EXPECT_EQ(cp, cw) << kt->name << " softcap";

    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> x = {1e30f, -1e30f, inf, -inf, 200.0f, -200.0f, 0.0f, nan, 1e-6f};
    const std::vector<float> one(x.size(), 1.0f);
    std::vector<float> gl(x.size());
    kt->gelu_mul(x.data(), one.data(), gl.data(), int64_t(x.size()));
    kt->softcap(x.data(), int64_t(x.size()), 30.0f);
    const std::vector<float> want_cap = {30.0f, -30.0f, 30.0f, -30.0f, 30.0f * std::tanh(200.0f / 30.0f),
                                         -30.0f * std::tanh(200.0f / 30.0f), 0.0f};
    for (size_t i = 0; i < want_cap.size(); ++i) EXPECT_NEAR(x[i], want_cap[i], 1e-5) << kt->name << " softcap " << i;
    EXPECT_TRUE(std::isnan(x[7])) << kt->name << " softcap(NaN)";
    EXPECT_NEAR(x[8], 1e-6f, 1e-12) << kt->name << " softcap(1e-6)";
    EXPECT_EQ(gl[4], 200.0f) << kt->name;
    EXPECT_NEAR(gl[5], 0.0f, 1e-30) << kt->name;
    EXPECT_EQ(gl[6], 0.0f) << kt->name;
    EXPECT_TRUE(std::isnan(gl[7])) << kt->name << " gelu(NaN)";
  }
}

TEST(CpuOps, RopeMatchesRefExactly) {
  std::mt19937 rng(11);
  for (int64_t D : {8, 256, 512}) {
    for (int pairs : {int(D / 2), int(D / 8)}) {
      RefBackend ref;
      CpuBackend cpu(2);
      const int64_t T = 5, H = 3;
      const std::vector<float> x = randn(size_t(T * H * D), rng);
      Tensor a = make(ref, {T, H, D}, x), c = make(cpu, {T, H, D}, x);
      ref.rope(a, 1000, RopeSpec{10000.0f, pairs});
      cpu.rope(c, 1000, RopeSpec{10000.0f, pairs});
      const auto want = fetch(ref, a);
      // Same angle arithmetic; only the last rounding of a*c - b*s may differ (fma contraction).
      EXPECT_TRUE(within(fetch(cpu, c), want, rel_bound(want, 2 * kF32Eps, 4 * kF32Eps))) << "D=" << D;
    }
  }
}

TEST(CpuOps, EmbedDenseAndQuantized) {
  std::mt19937 rng(12);
  const int64_t V = 50, H = 96;
  const std::vector<float> table = randn(size_t(V * H), rng);
  std::vector<uint16_t> bf(table.size());
  for (size_t i = 0; i < bf.size(); ++i) bf[i] = f32_to_bf16(table[i]);
  std::vector<uint8_t> codes(size_t(V * H / 2));
  for (uint8_t& b : codes) b = uint8_t(rng());
  std::vector<uint16_t> scales(size_t(V * H / 32), f32_to_bf16(0.02f));
  QuantWeight q;
  q.kind = QuantKind::kInt4;
  q.rows = V;
  q.cols = H;
  q.group_size = 32;
  q.codes = codes.data();
  q.scale_dtype = DType::kBF16;
  q.scales = scales.data();
  const std::vector<int32_t> toks{0, 49, 7, 7, 23};
  for (const WeightView& wv : {WeightView{"e", DType::kBF16, {V, H}, bf.data(), nullptr},
                               WeightView{"e", DType::kF32, {V, H}, nullptr, &q}}) {
    RefBackend ref;
    CpuBackend cpu(2);
    auto er = ref.pack(wv, WeightRole::kEmbedding);
    auto ec = cpu.pack(wv, WeightRole::kEmbedding);
    Tensor a = ref.empty({5, H}), c = cpu.empty({5, H});
    ref.embed(*er, toks, 73.5f, a);
    cpu.embed(*ec, toks, 73.5f, c);
    EXPECT_EQ(fetch(cpu, c), fetch(ref, a)) << (wv.quant ? "int4" : "bf16");
  }
}

// Fills both caches with the same earlier positions, then compares one chunk's attention.
void attention_case(const cpu::KernelTable* kt, int64_t Hq, int64_t Hkv, int64_t D, int window, int64_t capacity,
                    bool ring, int64_t p0, int64_t T, std::mt19937& rng) {
  RefBackend ref;
  CpuBackend cpu(2, kt);
  KvLayer cr = ref.make_kv_layer(capacity, int(Hkv), int(D), ring);
  KvLayer cc = cpu.make_kv_layer(capacity, int(Hkv), int(D), ring);
  // History in chunks (so ring wrap-around happens) before the chunk under test.
  for (int64_t p = 0; p < p0;) {
    const int64_t n = std::min<int64_t>(p0 - p, 37);
    const std::vector<float> k = randn(size_t(n * Hkv * D), rng), v = randn(size_t(n * Hkv * D), rng);
    Tensor kr = make(ref, {n, Hkv, D}, k), vr = make(ref, {n, Hkv, D}, v);
    Tensor kc = make(cpu, {n, Hkv, D}, k), vc = make(cpu, {n, Hkv, D}, v);
    ref.kv_append(cr, kr, vr, p);
    cpu.kv_append(cc, kc, vc, p);
    p += n;
  }
  // Queries scaled like normed q . k / small: scores of order a few units.
  const std::vector<float> q = randn(size_t(T * Hq * D), rng, float(1.5 / std::sqrt(double(D))));
  const std::vector<float> k = randn(size_t(T * Hkv * D), rng), v = randn(size_t(T * Hkv * D), rng);
  Tensor qr = make(ref, {T, Hq, D}, q), kr = make(ref, {T, Hkv, D}, k), vr = make(ref, {T, Hkv, D}, v);
  Tensor qc = make(cpu, {T, Hq, D}, q), kc = make(cpu, {T, Hkv, D}, k), vc = make(cpu, {T, Hkv, D}, v);
  Tensor outr = ref.empty({T, Hq, D}), outc = cpu.empty({T, Hq, D});
  ref.attention(qr, kr, vr, cr, p0, window, outr);
  cpu.attention(qc, kc, vc, cc, p0, window, outc);
  const auto want = fetch(ref, outr);
  // Scores |s| <= ~6 here; f32 score error <= D eps sum|q k| (~1e-5), which moves each softmax weight by
  // a relative ~2e-5; outputs are weighted means of |v| <= ~5, plus f32 accumulation over the keys.
  const int64_t n_keys = window > 0 ? std::min<int64_t>(window, p0 + T) : p0 + T;
  const double b = 5.0 * (2.0 * double(D) * kF32Eps * 8.0 + double(n_keys + D) * kF32Eps) + 1e-6;
  EXPECT_TRUE(within(fetch(cpu, outc), want, uniform_bound(want.size(), b)))
      << kt->name << " Hq=" << Hq << " Hkv=" << Hkv << " D=" << D << " window=" << window << " cap=" << capacity
      << (ring ? " ring" : " flat") << " p0=" << p0 << " T=" << T;
}

TEST(CpuOps, AttentionMatchesRef) {
  std::mt19937 rng(13);
  for (const cpu::KernelTable* kt : tables()) {
    // Sliding layer, ring cache: decode, small chunk, chunk larger than the window, long history.
    attention_case(kt, 4, 2, 256, 16, 16, true, 40, 1, rng);
    attention_case(kt, 4, 2, 256, 16, 16, true, 45, 7, rng);
    attention_case(kt, 4, 2, 256, 16, 16, true, 21, 30, rng);
    attention_case(kt, 2, 1, 256, 64, 64, true, 300, 3, rng);
    // Full layer, flat cache, head_dim 512, GQA 8:1 and 1:1, from position 0 and after a history.
    attention_case(kt, 8, 1, 512, 0, 64, false, 0, 9, rng);
    attention_case(kt, 8, 1, 512, 0, 64, false, 50, 1, rng);
    attention_case(kt, 3, 3, 8, 0, 40, false, 33, 5, rng);
    // Sliding window larger than the context: a flat cache with a window.
    attention_case(kt, 2, 2, 256, 1024, 80, false, 60, 11, rng);
  }
}

// The tables' block kernels for attention (KernelTable::attn_scores, attn_values): every score and every
// output equals, bit for bit, the same kernel called for that one pair or that one row and key at a time, so
// a verify's positions match one-token steps; and they agree with dot_f32 / axpy_f32 to f32 rounding. Shapes
// with tails past the kernels' 4 x 4 blocks and 16- and 64-wide chunks.
TEST(CpuOps, AttentionBlockKernelsDoNotDependOnTheBlock) {
  std::mt19937 rng(17);
  for (const cpu::KernelTable* kt : tables()) {
    ASSERT_TRUE(kt->attn_scores && kt->attn_values) << kt->name;
    for (int64_t n : {8, 256, 264}) {
      for (int64_t nq : {2, 7}) {  // (kernels may pick their block shape by the number of rows)
        const int64_t nk = 9;
        const std::vector<float> q = randn(size_t(nq * n), rng), k = randn(size_t(nk * n), rng), v = randn(size_t(nk * n), rng);
        std::vector<const float*> qp, kp;
        for (int64_t i = 0; i < nq; ++i) qp.push_back(q.data() + i * n);
        for (int64_t j = 0; j < nk; ++j) kp.push_back(k.data() + j * n);
        std::vector<float> block(size_t(nq * nk)), single(size_t(nq * nk));
        kt->attn_scores(qp.data(), nq, kp.data(), nk, n, block.data(), nk);
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j < nk; ++j) {
            kt->attn_scores(&qp[size_t(i)], 1, &kp[size_t(j)], 1, n, &single[size_t(i * nk + j)], 1);
            const float dot = kt->dot_f32(qp[size_t(i)], kp[size_t(j)], n);
            EXPECT_NEAR(block[size_t(i * nk + j)], dot, 1e-5 * double(n)) << kt->name << " n=" << n;
          }
        EXPECT_EQ(block, single) << kt->name << " scores n=" << n << " nq=" << nq;
        // values: o += s v over the keys in order, from a random start.
        const std::vector<float> sc = randn(size_t(nq * nk), rng), o0 = randn(size_t(nq * n), rng);
        std::vector<const float*> vp;
        for (int64_t j = 0; j < nk; ++j) vp.push_back(v.data() + j * n);
        std::vector<float> ob = o0, os = o0, oa = o0;
        std::vector<float*> obp, osp;
        for (int64_t i = 0; i < nq; ++i) obp.push_back(ob.data() + i * n), osp.push_back(os.data() + i * n);
        kt->attn_values(sc.data(), nk, nq, vp.data(), nk, n, obp.data());
        for (int64_t j = 0; j < nk; ++j)
          for (int64_t i = 0; i < nq; ++i) {
            kt->attn_values(sc.data() + i * nk + j, 1, 1, &vp[size_t(j)], 1, n, &osp[size_t(i)]);
            kt->axpy_f32(sc[size_t(i * nk + j)], vp[size_t(j)], oa.data() + i * n, n);
          }
        EXPECT_EQ(ob, os) << kt->name << " values n=" << n << " nq=" << nq;
        EXPECT_EQ(ob, oa) << kt->name << " values against axpy_f32, n=" << n << " nq=" << nq;  // one fma a key and element
      }
    }
  }
}

}  // namespace
}  // namespace g4::test
