// The CUDA backend's fused steps (backend.h: matmul_shared, qkv_norm_rope, add_norm_scale_norm) and the
// MLP's GELU product then down projection against the ref backend's composition of the plain ops, and against the CUDA backend's own
// plain ops where the arithmetic is the same (then the results must be identical).
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace g4::test {
namespace {

// Shared-input projections in one launch compute each row exactly as one matmul per weight does (same
// rounding of x, same per-row arithmetic), so the fused and plain CUDA results are equal; T > 4 and
// precise mode take the composing default. Shapes: q/k/v of a small model with odd row counts (the
// segments' last row groups are partial), and a mismatched layout that must fall back.
TEST_F(CudaTest, MatmulSharedEqualsOneMatmulEach) {
  struct Case {
    std::vector<int64_t> rows;
    int64_t cols, gs;
    bool asym;
  };
  for (const Case& c : {Case{{96, 33, 33}, 192, 32, false}, Case{{256, 64}, 512, 128, true}, Case{{5, 7, 9}, 64, 64, true}}) {
    std::vector<std::unique_ptr<RandomQuant>> rq;
    std::vector<std::unique_ptr<PackedWeight>> wf, wp, wr;
    std::vector<std::vector<float>> w32;
    for (int64_t r : c.rows) {
      rq.push_back(std::make_unique<RandomQuant>(rng_, QuantKind::kInt4, r, c.cols, c.gs, DType::kBF16, c.asym));
      w32.push_back(weight_f32(rq.back()->view()));
      wf.push_back(fast_->pack(rq.back()->view(), WeightRole::kLinear));
      wp.push_back(precise_->pack(rq.back()->view(), WeightRole::kLinear));
      wr.push_back(ref_.pack(rq.back()->view(), WeightRole::kLinear));
    }
    for (int64_t T : {1, 2, 4, 9}) {
      const auto x = randn(rng_, size_t(T * c.cols));
      for (CudaBackend* be : {fast_.get(), precise_.get()}) {
        auto& ws = be == fast_.get() ? wf : wp;
        Tensor xd = to_device(*be, x, {T, c.cols});
        std::vector<Tensor> fused, plain;
        std::vector<const PackedWeight*> wptr;
        std::vector<Tensor*> yptr;
        for (size_t i = 0; i < c.rows.size(); ++i) {
          fused.push_back(be->empty({T, c.rows[i]}));
          plain.push_back(be->empty({T, c.rows[i]}));
          wptr.push_back(ws[i].get());
        }
        for (Tensor& t : fused) yptr.push_back(&t);
        be->matmul_shared(xd, wptr, yptr);
        for (size_t i = 0; i < c.rows.size(); ++i) {
          be->matmul(xd, *ws[i], plain[i]);
          const std::string what = std::string(be == fast_.get() ? "fast" : "precise") + " weight " +
                                   std::to_string(i) + " T=" + std::to_string(T);
          expect_close(to_host(*be, fused[i]), to_host(*be, plain[i]), 0, "matmul_shared vs matmul " + what);
          Tensor xr = to_device(ref_, x, {T, c.cols}), yr = ref_.empty({T, c.rows[i]});
          ref_.matmul(xr, *wr[i], yr);
          const auto got = to_host(*be, fused[i]), want = to_host(ref_, yr);
          expect_close(got, want, 2e-2, "matmul_shared vs ref " + what);
          const bool fast = be == fast_.get();
          const bool gemv = T <= (fast ? cuda::kGemvGroupMaxT : cuda::kGemvMaxT);
          expect_matmul_close(got, want, matmul_scales(x, T, w32[i], c.rows[i], c.cols),
                              gemv ? (fast && cuda::gemv_q8_enabled() ? dp4a_path(c.cols) : f16_gemv_path(c.cols))
                                   : (fast ? bf16_gemm_path(c.cols) : f32_path(c.cols)),
                              "matmul_shared vs ref " + what);
        }
      }
    }
  }
}

// A token of a shared-input launch of 2-9 tokens (a verify of a draft of 8, a batch of 9 sequences) gets bit
// for bit what its one-token launch gives: the integer kernels' shape follows the launch's rows, so the weights
// must share every group's launch as they share the one-token one. Two weights of 4,100 rows: each alone is a
// short launch (4 warps splitting K), together a long one; 64 chunks a row, so the K splits sum differently.
// g4's int4 layout (bf16 scales, zero points: the dp4a kernel below 7 tokens) and Q4_0's (f16 scales,
// symmetric: the tensor-core kernel from 2 tokens).
TEST_F(CudaTest, MatmulSharedTokensEqualTheirOneTokenLaunchBitwise) {
  if (!cuda::gemv_q8_enabled()) GTEST_SKIP() << "G4_CUDA_INT4_DP4A=0";
  const int64_t rows = 4100, cols = 2048;
  for (const auto& [sdt, asym] : {std::pair{DType::kBF16, true}, std::pair{DType::kF16, false}}) {
    RandomQuant a(rng_, QuantKind::kInt4, rows, cols, 32, sdt, asym), b(rng_, QuantKind::kInt4, rows, cols, 32, sdt, asym);
    const auto wa = fast_->pack(a.view(), WeightRole::kLinear), wb = fast_->pack(b.view(), WeightRole::kLinear);
    constexpr int kT = 9;
    const auto x = randn(rng_, size_t(kT * cols));
    auto run = [&](int64_t t0, int64_t T) {
      Tensor xd = to_device(*fast_, std::vector<float>(x.begin() + t0 * cols, x.begin() + (t0 + T) * cols), {T, cols});
      Tensor ya = fast_->empty({T, rows}), yb = fast_->empty({T, rows});
      fast_->matmul_shared(xd, {wa.get(), wb.get()}, {&ya, &yb});
      std::vector<float> out = to_host(*fast_, ya);
      const std::vector<float> ob = to_host(*fast_, yb);
      out.insert(out.end(), ob.begin(), ob.end());  // [weight][token][row]
      return out;
    };
    std::vector<std::vector<float>> alone;
    for (int t = 0; t < kT; ++t) alone.push_back(run(t, 1));
    for (int T : {2, 5, 8, 9}) {
      const std::vector<float> got = run(0, T);
      int diff = 0;
      for (int w = 0; w < 2; ++w)
        for (int t = 0; t < T; ++t)
          for (int64_t r = 0; r < rows; ++r)
            diff += std::memcmp(&got[size_t((w * T + t) * rows + r)], &alone[size_t(t)][size_t(w * rows + r)], 4) != 0;
      EXPECT_EQ(diff, 0) << (asym ? "bf16 scales, zero points" : "f16 scales, symmetric") << ", " << T
                         << " tokens: outputs that differ from the token's one-token launch";
    }
  }
}

// Per-head norm + RoPE in one launch vs the ref's five ops: f32 throughout, sums in another order (1e-5).
TEST_F(CudaTest, QkvNormRopeMatchesComposedOps) {
  struct Case {
    int64_t T, Hq, Hkv, D;
    int pairs;
    float theta;
    int64_t p0;
    bool k_eq_v;
  };
  for (const Case& c : {Case{1, 32, 16, 256, 128, 10000.f, 2047, false}, Case{3, 8, 2, 512, 64, 1e6f, 5, true},
                        Case{5, 4, 2, 64, 0, 10000.f, 0, false}, Case{2, 4, 1, 128, 16, 1e6f, 4096, true},
                        Case{70, 8, 4, 256, 128, 10000.f, 3, false}, Case{64, 4, 1, 512, 64, 1e6f, 100, true}}) {
    const auto q = randn(rng_, size_t(c.T * c.Hq * c.D), 2.f), k = randn(rng_, size_t(c.T * c.Hkv * c.D), 3.f);
    const auto v = randn(rng_, size_t(c.T * c.Hkv * c.D));
    const auto wq = randn(rng_, size_t(c.D)), wk = randn(rng_, size_t(c.D));
    WeightView vq{"q_norm", DType::kF32, {c.D}, wq.data(), nullptr}, vk{"k_norm", DType::kF32, {c.D}, wk.data(), nullptr};
    const RopeSpec rope{c.theta, c.pairs};
    std::vector<std::vector<float>> want;
    {
      auto pq = ref_.pack(vq, WeightRole::kNorm), pk = ref_.pack(vk, WeightRole::kNorm);
      Tensor tq = to_device(ref_, q, {c.T, c.Hq, c.D}), tk = to_device(ref_, k, {c.T, c.Hkv, c.D});
      Tensor tv = c.k_eq_v ? tk : to_device(ref_, v, {c.T, c.Hkv, c.D});
      Tensor ko = ref_.empty({c.T, c.Hkv, c.D}), vo = ref_.empty({c.T, c.Hkv, c.D});
      ref_.Backend::qkv_norm_rope(tq, tk, tv, *pq, *pk, 1e-6f, c.p0, rope, ko, vo);
      want = {to_host(ref_, tq), to_host(ref_, ko), to_host(ref_, vo)};
    }
    for (CudaBackend* be : {fast_.get(), precise_.get()}) {  // both modes
      auto pq = be->pack(vq, WeightRole::kNorm), pk = be->pack(vk, WeightRole::kNorm);
      Tensor tq = to_device(*be, q, {c.T, c.Hq, c.D}), tk = to_device(*be, k, {c.T, c.Hkv, c.D});
      Tensor tv = c.k_eq_v ? tk : to_device(*be, v, {c.T, c.Hkv, c.D});
      Tensor ko = be->empty({c.T, c.Hkv, c.D}), vo = be->empty({c.T, c.Hkv, c.D});
      be->qkv_norm_rope(tq, tk, tv, *pq, *pk, 1e-6f, c.p0, rope, ko, vo);
      const std::string what = std::string(be == fast_.get() ? "fast" : "precise") + " D=" + std::to_string(c.D) +
                               " p0=" + std::to_string(c.p0);
      expect_close(to_host(*be, tq), want[0], 1e-5, "qkv_norm_rope q " + what);
      expect_close(to_host(*be, ko), want[1], 1e-5, "qkv_norm_rope k " + what);
      expect_close(to_host(*be, vo), want[2], 1e-5, "qkv_norm_rope v " + what);
    }
  }
}

// Many rows (a prefill) take another thread layout than few (a decode step, a verify): each row's results
// must be the same bit for bit, so that a prompt's cache does not depend on how it was cut into chunks.
TEST_F(CudaTest, QkvNormRopeManyRowsEqualOneRowLaunchesBitwise) {
  const int64_t T = 67, Hq = 8, Hkv = 2, D = 256, p0 = 11;
  const auto q = randn(rng_, size_t(T * Hq * D), 2.f), k = randn(rng_, size_t(T * Hkv * D), 3.f);
  const auto v = randn(rng_, size_t(T * Hkv * D));
  const auto wq = randn(rng_, size_t(D)), wk = randn(rng_, size_t(D));
  WeightView vq{"q_norm", DType::kF32, {D}, wq.data(), nullptr}, vk{"k_norm", DType::kF32, {D}, wk.data(), nullptr};
  const RopeSpec rope{10000.f, 128};
  CudaBackend& be = *fast_;
  auto pq = be.pack(vq, WeightRole::kNorm), pk = be.pack(vk, WeightRole::kNorm);
  Tensor tq = to_device(be, q, {T, Hq, D}), tk = to_device(be, k, {T, Hkv, D}), tv = to_device(be, v, {T, Hkv, D});
  Tensor ko = be.empty({T, Hkv, D}), vo = be.empty({T, Hkv, D});
  be.qkv_norm_rope(tq, tk, tv, *pq, *pk, 1e-6f, p0, rope, ko, vo);
  const auto all_q = to_host(be, tq), all_k = to_host(be, ko), all_v = to_host(be, vo);
  for (int64_t t = 0; t < T; ++t) {
    const auto row = [&](const std::vector<float>& x, int64_t H) {
      return std::vector<float>(x.begin() + t * H * D, x.begin() + (t + 1) * H * D);
    };
    Tensor q1 = to_device(be, row(q, Hq), {1, Hq, D}), k1 = to_device(be, row(k, Hkv), {1, Hkv, D});
    Tensor v1 = to_device(be, row(v, Hkv), {1, Hkv, D});
    Tensor ko1 = be.empty({1, Hkv, D}), vo1 = be.empty({1, Hkv, D});
    be.qkv_norm_rope(q1, k1, v1, *pq, *pk, 1e-6f, p0 + t, rope, ko1, vo1);
    ASSERT_EQ(to_host(be, q1), row(all_q, Hq)) << "q, row " << t;
    ASSERT_EQ(to_host(be, ko1), row(all_k, Hkv)) << "k, row " << t;
    ASSERT_EQ(to_host(be, vo1), row(all_v, Hkv)) << "v, row " << t;
  }
}

// Residual add + layer scalar + next norm in one launch: the same operations in the same order as the
// CUDA backend's add_rms_norm, scale and rms_norm (identical results), and the ref's within 1e-5.
TEST_F(CudaTest, AddNormScaleNormMatchesComposedOps) {
  for (int64_t n : {256, 5376, 7}) {
    for (int64_t rows : {1, 3}) {
      for (float s : {1.0f, 0.37f}) {
        const auto x = randn(rng_, size_t(rows * n), 3.f), o = randn(rng_, size_t(rows * n), 2.f);
        const auto w1 = randn(rng_, size_t(n)), w2 = randn(rng_, size_t(n));
        WeightView v1{"post", DType::kF32, {n}, w1.data(), nullptr}, v2{"next", DType::kF32, {n}, w2.data(), nullptr};
        const std::string what = "n=" + std::to_string(n) + " rows=" + std::to_string(rows) + " s=" + std::to_string(s);
        auto r1 = ref_.pack(v1, WeightRole::kNorm), r2 = ref_.pack(v2, WeightRole::kNorm);
        Tensor rx = to_device(ref_, x, {rows, n}), ro = to_device(ref_, o, {rows, n}), rout = ref_.empty({rows, n});
        ref_.add_norm_scale_norm(rx, ro, *r1, s, *r2, 1e-6f, rout);
        const auto ref_x = to_host(ref_, rx), ref_out = to_host(ref_, rout);
        for (CudaBackend* be : {fast_.get(), precise_.get()}) {  // both modes
          const std::string mode = be == fast_.get() ? " fast" : " precise";
          std::vector<float> fused_x, fused_out, plain_x, plain_out;
          for (bool fused : {true, false}) {
            auto p1 = be->pack(v1, WeightRole::kNorm), p2 = be->pack(v2, WeightRole::kNorm);
            Tensor tx = to_device(*be, x, {rows, n}), to = to_device(*be, o, {rows, n}), out = be->empty({rows, n});
            if (fused) be->add_norm_scale_norm(tx, to, *p1, s, *p2, 1e-6f, out);
            else be->Backend::add_norm_scale_norm(tx, to, *p1, s, *p2, 1e-6f, out);
            (fused ? fused_x : plain_x) = to_host(*be, tx);
            (fused ? fused_out : plain_out) = to_host(*be, out);
          }
          expect_close(fused_x, plain_x, 0, "add_norm_scale_norm x vs plain CUDA ops " + what + mode);
          expect_close(fused_out, plain_out, 0, "add_norm_scale_norm out vs plain CUDA ops " + what + mode);
          expect_close(fused_x, ref_x, 1e-5, "add_norm_scale_norm x vs ref " + what + mode);
          expect_close(fused_out, ref_out, 1e-5, "add_norm_scale_norm out vs ref " + what + mode);
        }
      }
    }
  }
}

// With an int8 buffer, the fused norm also rounds its output for the integer GEMV (G4_CUDA_FUSE_QX): the
// same bytes as gemv_q8_quantize_x of that output, padding chunks zero (the buffers start as 0xAB bytes),
// at 1, 3 and 8 rows and at widths whose chunks fill, or do not fill, the last 32-chunk block.
TEST_F(CudaTest, AddNormScaleNormRoundsItsOutputAsTheGemvWould) {
  for (int64_t n : {256, 1056, 5376}) {
    for (int64_t rows : {1, 3, 8}) {
      const auto x = randn(rng_, size_t(rows * n), 3.f), o = randn(rng_, size_t(rows * n), 2.f);
      const auto w1 = randn(rng_, size_t(n)), w2 = randn(rng_, size_t(n));
      const size_t bytes = cuda::gemv_q8_x_bytes_cols(n, int(rows));
      float *dx = nullptr, *dO = nullptr, *dw1 = nullptr, *dw2 = nullptr, *dout = nullptr;
      void* fused = nullptr;
      for (auto [p, v] : {std::pair{&dx, &x}, std::pair{&dO, &o}, std::pair{&dw1, &w1}, std::pair{&dw2, &w2}}) {
        ASSERT_EQ(cudaMalloc(p, v->size() * 4), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(*p, v->data(), v->size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
      }
      ASSERT_EQ(cudaMalloc(&dout, size_t(rows * n) * 4), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&fused, bytes), cudaSuccess);
      ASSERT_EQ(cudaMemset(fused, 0xAB, bytes), cudaSuccess);
      ASSERT_TRUE(cuda::add_norm_scale_norm(dx, dO, dw1, 0.37f, dw2, 1e-6f, rows, n, dout, nullptr, fused));
      EXPECT_EQ(unlike_gemv_rounding(dout, rows, n, fused), "") << "n=" << n << " rows=" << rows;
      for (void* p : {static_cast<void*>(dx), static_cast<void*>(dO), static_cast<void*>(dw1),
                      static_cast<void*>(dw2), static_cast<void*>(dout), fused})
        cudaFree(p);
    }
  }
}

// gelu_mul_q8 (the down projection's input rounded where it is made; G4_CUDA_FUSE_QX_DOWN=0 turns it off):
// its values are gelu_mul's bit for bit, and its int8 words and scales gemv_q8_quantize_x's of them, padding
// chunks zero (the buffer starts as 0xAB bytes); 1, 3 and 8 rows, widths that fill the last 32-chunk block or
// not (21,504: the 31B's), and in place (out = gate, as the forward calls it).
TEST_F(CudaTest, GeluMulRoundsItsOutputAsTheGemvWould) {
  for (int64_t n : {256, 1056, 21504}) {
    for (int64_t rows : {1, 3, 8}) {
      const auto g = randn(rng_, size_t(rows * n), 2.f), u = randn(rng_, size_t(rows * n));
      const size_t bytes = cuda::gemv_q8_x_bytes_cols(n, int(rows)), vals = size_t(rows * n) * 4;
      float *dg = nullptr, *du = nullptr, *dplain = nullptr;
      void* fused = nullptr;
      ASSERT_EQ(cudaMalloc(&dg, vals), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&du, vals), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&dplain, vals), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(dg, g.data(), vals, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(du, u.data(), vals, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&fused, bytes), cudaSuccess);
      ASSERT_EQ(cudaMemset(fused, 0xAB, bytes), cudaSuccess);
      cuda::gelu_mul(dg, du, rows * n, dplain, nullptr);
      ASSERT_TRUE(cuda::gelu_mul_q8(dg, du, rows, n, dg, fused, nullptr));  // in place
      std::vector<float> got(size_t(rows * n)), want(size_t(rows * n));
      ASSERT_EQ(cudaMemcpy(got.data(), dg, vals, cudaMemcpyDeviceToHost), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(want.data(), dplain, vals, cudaMemcpyDeviceToHost), cudaSuccess);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), vals), 0) << "n=" << n << " rows=" << rows << ": values";
      EXPECT_EQ(unlike_gemv_rounding(dplain, rows, n, fused), "") << "n=" << n << " rows=" << rows;
      for (void* p : {static_cast<void*>(dg), static_cast<void*>(du), static_cast<void*>(dplain), fused}) cudaFree(p);
    }
  }
}

// The MLP's down projection of gelu(gate) * up, the CUDA backend's gelu_mul then matmul, against the ref's
// within the dp4a path's bound, at 1-9 tokens (9: the GEMV's groups of 8 and 1) and on both int4 layouts
// (the matmul takes gelu_mul's rounding up to 8 tokens; with G4_CUDA_FUSE_QX_DOWN=0 its own).
TEST_F(CudaTest, GeluMulThenMatmulMatchesRef) {
  const int64_t rows = 96, cols = 512;
  for (const auto& [sdt, asym] : {std::pair{DType::kBF16, true}, std::pair{DType::kF16, false}}) {
    RandomQuant rq(rng_, QuantKind::kInt4, rows, cols, 32, sdt, asym);
    const auto w32 = weight_f32(rq.view());
    const auto wf = fast_->pack(rq.view(), WeightRole::kLinear), wr = ref_.pack(rq.view(), WeightRole::kLinear);
    for (int64_t T : {1, 3, 8, 9}) {
      const auto g = randn(rng_, size_t(T * cols), 2.f), u = randn(rng_, size_t(T * cols));
      const std::string what = std::string(asym ? "g4 int4" : "Q4_0 layout") + " T=" + std::to_string(T);
      Tensor gp = to_device(*fast_, g, {T, cols}), up = to_device(*fast_, u, {T, cols}), yp = fast_->empty({T, rows});
      fast_->gelu_mul(gp, up, gp);
      fast_->matmul(gp, *wf, yp);
      Tensor gr = to_device(ref_, g, {T, cols}), ur = to_device(ref_, u, {T, cols}), yr = ref_.empty({T, rows});
      ref_.gelu_mul(gr, ur, gr);
      ref_.matmul(gr, *wr, yr);
      const auto gelu = to_host(*fast_, gp);  // the product the GEMV saw (up to its int8 rounding)
      expect_close(gelu, to_host(ref_, gr), 1e-5, "gelu_mul vs ref " + what);
      expect_matmul_close(to_host(*fast_, yp), to_host(ref_, yr), matmul_scales(gelu, T, w32, rows, cols),
                          cuda::gemv_q8_enabled() ? dp4a_path(cols) : f16_gemv_path(cols), "gelu_mul + matmul vs ref " + what);
    }
  }
}

}  // namespace
}  // namespace g4::test
