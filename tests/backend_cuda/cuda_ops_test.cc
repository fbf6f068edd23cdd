// Every CUDA op against the ref backend on random inputs with awkward shapes. Bounds: f32 paths 1e-5
// relative (order of summation only); int4/int8 GEMV 4e-3 (activations and products in f16 within a
// 16-byte chunk); bf16 tensor-core GEMM 1e-2 (activations rounded to bf16). The fast backend's int4 GEMV
// rounds x to int8 per 32 values (dp4a): the step is max|x|/127, about 2.2/127 = 0.017 for 32 standard
// normal values, a uniform rounding error of 0.017/sqrt(12) = 0.005 per value, so the relative error of
// the dot products is about 5e-3, more on the short rows (96 columns: 3 blocks, one large value sets a
// block's step; 1.06e-2 seen on an H200); bound 2e-2. The exact check is the next test.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace g4::test {
namespace {

// x (a whole number of 32-value blocks) rounded to int8 per block as the integer kernels round it (step
// max|x| / 127, round half to even), back in f32.
std::vector<float> int8_rounded(const std::vector<float>& x) {
  std::vector<float> xr(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0.f;
    for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
    for (size_t j = b; j < b + 32; ++j) xr[j] = d * std::nearbyint(x[j] * inv);
  }
  return xr;
}

struct MatCase {
  QuantKind kind;
  bool quant;
  int64_t gs;
  DType sdt;
  bool asym;
};

std::string describe(const MatCase& c) {
  if (!c.quant) return "bf16";
  return std::string(c.kind == QuantKind::kInt4 ? "int4" : "int8") + " g" + std::to_string(c.gs) + " " +
         dtype_name(c.sdt) + (c.asym ? " asym" : " sym");
}

TEST_F(CudaTest, MatmulAllFormatsShapesAndPaths) {
  const std::vector<MatCase> cases = {
      {QuantKind::kInt4, true, 32, DType::kBF16, false}, {QuantKind::kInt4, true, 128, DType::kBF16, false},
      {QuantKind::kInt4, true, 64, DType::kF16, true},   {QuantKind::kInt4, true, 32, DType::kF32, true},
      {QuantKind::kInt8, true, 16, DType::kF32, false},  {QuantKind::kInt8, true, 0, DType::kBF16, false},
      {QuantKind::kInt8, true, 48, DType::kF16, true},   {QuantKind{}, false, 0, DType::kBF16, false}};
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 96}, {7, 192}, {33, 1056}, {300, 2112}, {65, 5376}};
  for (const MatCase& mc : cases) {
    for (auto [rows, cols] : shapes) {
      const int64_t gs = mc.gs == 0 ? cols : mc.gs;
      if (mc.quant && cols % gs) continue;
      if (mc.quant && mc.kind == QuantKind::kInt4 && gs % 32) continue;
      std::unique_ptr<RandomQuant> rq;
      std::vector<uint16_t> bf;
      WeightView wv;
      if (mc.quant) {
        rq = std::make_unique<RandomQuant>(rng_, mc.kind, rows, cols, gs, mc.sdt, mc.asym);
        wv = rq->view();
      } else {
        const auto f = randn(rng_, size_t(rows * cols), 0.05f);
        bf.resize(f.size());
        for (size_t i = 0; i < f.size(); ++i) bf[i] = f32_to_bf16(f[i]);
        wv = WeightView{"test.bf16", DType::kBF16, {rows, cols}, bf.data(), nullptr};
      }
      auto wr = ref_.pack(wv, WeightRole::kLinear);
      auto wf = fast_->pack(wv, WeightRole::kLinear);
      auto wp = precise_->pack(wv, WeightRole::kLinear);
      const std::vector<float> w32 = weight_f32(wv);
      for (int64_t T : {1, 2, 3, 4, 5, 8, 17, 32}) {
        const auto x = randn(rng_, size_t(T * cols));
        const MatmulScales sc = matmul_scales(x, T, w32, rows, cols);
        Tensor xr = to_device(ref_, x, {T, cols}), yr = ref_.empty({T, rows});
        ref_.matmul(xr, *wr, yr);
        const auto want = to_host(ref_, yr);
        const std::string what = describe(mc) + " [" + std::to_string(rows) + "x" + std::to_string(cols) + "] T=" +
                                 std::to_string(T);
        Tensor xf = to_device(*fast_, x, {T, cols}), yf = fast_->empty({T, rows});
        fast_->matmul(xf, *wf, yf);
        const bool int4 = mc.kind == QuantKind::kInt4 && mc.quant;
        const bool mma = int4 && takes_mma(cols, gs, mc.sdt, T);
        const bool gemv = mma || T <= cuda::kGemvGroupMaxT;  // fast mode: GEMV in groups of kGemvQ8MaxT (int4) rows
        const bool dp4a = gemv && int4;
        const auto got_fast = to_host(*fast_, yf);
        expect_close(got_fast, want, dp4a ? 2e-2 : gemv ? (mc.quant ? 4e-3 : 1e-5) : 1e-2, what + " fast");
        const bool dp4a_on = mma || (dp4a && cuda::gemv_q8_enabled());
        expect_matmul_close(got_fast, want, sc,
                            dp4a_on ? dp4a_path(cols)
                            : gemv  ? (mc.quant ? f16_gemv_path(cols) : f32_path(cols))
                                    : bf16_gemm_path(cols),
                            what + " fast");
        Tensor xp = to_device(*precise_, x, {T, cols}), yp = precise_->empty({T, rows});
        precise_->matmul(xp, *wp, yp);
        const auto got_precise = to_host(*precise_, yp);
        const bool gemv_p = T <= cuda::kGemvMaxT;  // precise mode: one GEMV of at most kGemvMaxT rows
        expect_close(got_precise, want, gemv_p && mc.quant ? 4e-3 : 1e-5, what + " precise");
        expect_matmul_close(got_precise, want, sc, gemv_p && mc.quant ? f16_gemv_path(cols) : f32_path(cols),
                            what + " precise");
      }
    }
  }
}

// The dp4a GEMV and the tensor-core kernel (gemm_mma.cu), as the fast backend's matmul picks them by T,
// compute exactly sum(w * x') with x' = x rounded to int8 per 32 values (step max|x| / 127, round half to
// even, as the kernels do): the ref backend given x' must agree up to f32 rounding (bound 2e-5), so any error
// in the nibble order, the x layout, the fragment layout, the padding of T or the zero-point term shows.
// Shapes: rows not a multiple of 8 or 16, columns with a partial last quad of chunks and split unevenly over
// K-splitting warps, row counts on both sides of the kernel's short/long shape choice, every scale type.
TEST_F(CudaTest, Int4IntegerKernelsEqualRefOnRoundedActivations) {
  if (!cuda::gemv_q8_enabled()) GTEST_SKIP() << "G4_CUDA_INT4_DP4A=0";
  struct Case {
    int64_t rows, cols, gs;
    DType sdt;
    bool asym;
  };
  int mma_runs = 0;
  for (const Case& c : {Case{7, 192, 32, DType::kBF16, false}, Case{300, 2112, 64, DType::kF16, true},
                        Case{65, 5376, 128, DType::kBF16, true}, Case{33, 1056, 32, DType::kF32, true},
                        Case{40, 8192, 32, DType::kBF16, true}, Case{17, 1024, 64, DType::kF16, false},
                        // More than 8,192 rows: the long-matrix shape.
                        Case{9000, 256, 32, DType::kBF16, true}, Case{20000, 64, 32, DType::kF16, false},
                        Case{40000, 64, 32, DType::kBF16, true}}) {
    RandomQuant rq(rng_, QuantKind::kInt4, c.rows, c.cols, c.gs, c.sdt, c.asym);
    auto wr = ref_.pack(rq.view(), WeightRole::kLinear);
    auto wf = fast_->pack(rq.view(), WeightRole::kLinear);
    for (int64_t T : {1, 2, 4, 5, 8, 9, 10, 16, 17, 32}) {
      const bool mma = takes_mma(c.cols, c.gs, c.sdt, T);
      if (!mma && T > cuda::kGemvGroupMaxT) continue;  // the bf16 GEMM path: not this arithmetic
      mma_runs += mma;
      auto x = randn(rng_, size_t(T * c.cols));
      for (size_t i = 0; i < x.size(); i += 97) x[i] *= 9.f;  // a few outliers set the step of their block
      const std::vector<float> xr = int8_rounded(x);
      Tensor xt = to_device(ref_, xr, {T, c.cols}), yr = ref_.empty({T, c.rows});
      ref_.matmul(xt, *wr, yr);
      Tensor xf = to_device(*fast_, x, {T, c.cols}), yf = fast_->empty({T, c.rows});
      fast_->matmul(xf, *wf, yf);
      const std::string what = std::string(mma ? "mma [" : "dp4a [") + std::to_string(c.rows) + "x" +
                               std::to_string(c.cols) + "] g" + std::to_string(c.gs) + " T=" + std::to_string(T);
      const auto got = to_host(*fast_, yf), want = to_host(ref_, yr);
      expect_close(got, want, 2e-5, what);
      // Only f32 rounding separates the two: the S bound of the rounded activations.
      expect_matmul_close(got, want, matmul_scales(xr, T, weight_f32(rq.view()), c.rows, c.cols), f32_path(c.cols), what);
    }
  }
  // Every layout suits the tensor-core kernel, at every T of the list it takes.
  int mma_ts = 0;
  for (int64_t T : {1, 2, 4, 5, 8, 9, 10, 16, 17, 32}) mma_ts += T >= cuda::gemm_mma_min_tokens() && T <= cuda::kMmaMaxT;
  EXPECT_EQ(mma_runs, 9 * mma_ts);
  if (cuda::gemm_mma_min_tokens() <= cuda::kMmaMaxT) {
    EXPECT_GE(mma_runs, 5);
  }
}

// An int4 weight laid out by hand on the host and the device (so the packing is checked too), and its
// product with int8-rounded activations as a host sum in double with the sum of |terms| (the f32 bound).
struct HandInt4 {
  cuda::WeightDesc wd;
  std::vector<uint8_t> codes;
  std::vector<uint16_t> sc, zp;
  std::vector<void*> dev;

  HandInt4(std::mt19937& rng, int64_t rows, int64_t cols, cuda::SType st, bool asym, int64_t gs) {
    std::uniform_int_distribution<int> nib(0, 15);
    std::uniform_real_distribution<float> uni(0.5f, 1.5f), zu(6.f, 10.f);
    const int64_t G = cols / gs;
    codes.resize(size_t(rows * cols / 2));
    for (auto& b : codes) b = uint8_t(nib(rng) | nib(rng) << 4);  // value 2k low nibble, 2k+1 high
    sc.resize(size_t(rows * G));
    for (auto& h : sc) h = bits(st, uni(rng) * 0.01f);
    if (asym) {
      zp.resize(size_t(rows * G));
      for (auto& h : zp) h = bits(st, zu(rng));
    }
    wd.fmt = cuda::WFmt::kInt4, wd.rows = rows, wd.cols = cols, wd.group_size = gs, wd.stype = st;
    wd.codes = upload(codes.data(), codes.size());
    wd.scales = upload(sc.data(), sc.size() * 2);
    if (asym) wd.zeros = upload(zp.data(), zp.size() * 2);
  }
  ~HandInt4() {
    for (void* p : dev) cudaFree(p);
  }
  static uint16_t bits(cuda::SType st, float v) { return st == cuda::SType::kF16 ? f32_to_f16(v) : f32_to_bf16(v); }
  float value(uint16_t h) const { return wd.stype == cuda::SType::kF16 ? f16_to_f32(h) : bf16_to_f32(h); }
  void* upload(const void* p, size_t bytes) {
    void* d = nullptr;
    EXPECT_EQ(cudaMalloc(&d, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(d, p, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    dev.push_back(d);
    return d;
  }
  // want[t * rows + r] = sum_k w[r, k] xr[t, k] for T tokens of xr.
  void product(const std::vector<float>& xr, int64_t T, std::vector<float>& want, std::vector<double>& mag) const {
    const int64_t rows = wd.rows, cols = wd.cols, gs = wd.group_size, G = cols / gs;
    want.clear(), mag.clear();
    for (int64_t tr = 0; tr < T * rows; ++tr) {
      const int64_t t = tr / rows, r = tr % rows;
      double sum = 0, m = 0;
      for (int64_t g = 0; g < G; ++g) {
        const double s = value(sc[size_t(r * G + g)]);
        const double z = wd.zeros ? value(zp[size_t(r * G + g)]) : 8.0;
        for (int64_t k = g * gs; k < (g + 1) * gs; ++k) {
          const uint8_t b = codes[size_t((r * cols + k) / 2)];
          const double term = s * (double(k % 2 ? b >> 4 : b & 15) - z) * double(xr[size_t(t * cols + k)]);
          sum += term, m += std::fabs(term);
        }
      }
      want.push_back(float(sum)), mag.push_back(m);
    }
  }
};

// Two int4 weights (g32; g4's int4 with zero points or Q4_0's layout) of the same columns sharing one token's
// activation, rounded to int8 on the device, as q/k/v share x: run(tu) is one launch of gemv_q8_multi over both,
// its outputs the first weight's rows, then the second's (outputs start as NaN bits).
struct TwoWeightsOneToken {
  HandInt4 w0, w1;
  cuda::WeightDesc wd[2];
  int64_t rows[2];
  float* xd = nullptr;
  void* xq = nullptr;
  float* yd[2] = {};

  TwoWeightsOneToken(std::mt19937& rng, int64_t rows0, int64_t rows1, int64_t cols, bool q4_0)
      : w0(rng, rows0, cols, stype(q4_0), !q4_0, 32), w1(rng, rows1, cols, stype(q4_0), !q4_0, 32), wd{w0.wd, w1.wd},
        rows{rows0, rows1} {
    auto x = randn(rng, size_t(cols));
    for (size_t j = 0; j < x.size(); j += 97) x[j] *= 9.f;
    EXPECT_EQ(cudaMalloc(&xd, x.size() * 4), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&xq, cuda::gemv_q8_x_bytes(wd[0], 1)), cudaSuccess);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(cudaMalloc(&yd[i], size_t(rows[i]) * 4), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(xd, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    cuda::gemv_q8_quantize_x(wd[0], xd, 1, xq, nullptr);
  }
  ~TwoWeightsOneToken() { cudaFree(xd), cudaFree(xq), cudaFree(yd[0]), cudaFree(yd[1]); }
  static cuda::SType stype(bool q4_0) { return q4_0 ? cuda::SType::kF16 : cuda::SType::kBF16; }

  std::vector<float> run(cuda::GemvTuning tu) {
    for (int i = 0; i < 2; ++i) EXPECT_EQ(cudaMemset(yd[i], 0xFF, size_t(rows[i]) * 4), cudaSuccess);
    cuda::gemv_q8_multi(wd, yd, 2, xq, 1, nullptr, tu);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> got(size_t(rows[0] + rows[1]));
    EXPECT_EQ(cudaMemcpy(got.data(), yd[0], size_t(rows[0]) * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(got.data() + rows[0], yd[1], size_t(rows[1]) * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    return got;
  }
  // Outputs of `got` whose bits differ from `want`'s.
  static int bit_diffs(const std::vector<float>& got, const std::vector<float>& want) {
    EXPECT_EQ(got.size(), want.size());
    int diff = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) diff += std::memcmp(&got[i], &want[i], 4) != 0;
    return diff;
  }
  void expect_error(cuda::GemvTuning tu) { EXPECT_THROW(cuda::gemv_q8_multi(wd, yd, 2, xq, 1, nullptr, tu), Error); }
};

// got within f32 rounding of the host sum; at most 3 failures reported.
void expect_host_sum(const std::vector<float>& got, const std::vector<float>& want, const std::vector<double>& mag,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t r = 0; r < got.size(); ++r)
    if (!(std::fabs(double(got[r]) - want[r]) <= 2e-5 * mag[r] + 1e-30) && bad++ < 3)
      ADD_FAILURE() << what << " output " << r << ": " << got[r] << " vs " << want[r];
  EXPECT_EQ(bad, 0) << what;
}

struct HandLayout {
  cuda::SType st;
  bool asym;
  int64_t gs;
  std::string name() const {
    return "g" + std::to_string(gs) + (asym ? " asym" : " sym") + (st == cuda::SType::kF16 ? " f16" : " bf16");
  }
};

// Every kernel shape compiled into the integer GEMV (gemv_q8.cu: rows per warp, chunks per load, warps
// splitting K, pipelined loads, L2 prefetch depth) for one token, and the two shapes of 2-8 tokens for three
// and seven (the 8-token kernel with a token short),
// computes exactly sum(s (q - z) x') with x' the int8-rounded activation: a host sum in double must agree up
// to f32 rounding. Rows not a multiple of any row group, chunk counts that split unevenly over K-splitting
// warps and load rounds (33, 34 and 256 chunks), two segments sharing x, both decode layouts (bf16 scales with
// zero points; f16 symmetric) and the benchmark's (bf16 symmetric). A shape not compiled is a clear error.
TEST_F(CudaTest, Int4IntegerGemvEveryKernelShapeEqualsHostSum) {
  struct Shape {
    int R, U, KS, pipe, prefetch;
    bool one, multi;  // compiled for one token, for 2-8 tokens
  };
  const Shape shapes[] = {{2, 2, 1, 0, 1, true, true},  {2, 1, 4, 1, 1, true, true},   {4, 2, 1, 0, 1, true, false},
                          {4, 2, 1, 0, 3, true, false}, {4, 1, 4, 1, 2, true, false}};
  using cuda::SType;
  for (const HandLayout& L :
       {HandLayout{SType::kBF16, true, 32}, HandLayout{SType::kF16, false, 32}, HandLayout{SType::kBF16, false, 64}}) {
    for (int64_t cols : {L.gs == 64 ? int64_t(1088) : int64_t(1056), int64_t(8192)}) {
      const int64_t rows_of[2] = {301, 70};
      HandInt4 w0(rng_, rows_of[0], cols, L.st, L.asym, L.gs), w1(rng_, rows_of[1], cols, L.st, L.asym, L.gs);
      const cuda::WeightDesc wd[2] = {w0.wd, w1.wd};
      constexpr int64_t kT = 7;  // tokens: the first alone (every shape), 3 and 7 (the shapes compiled for 2-8)
      auto x = randn(rng_, size_t(kT * cols));
      for (size_t j = 0; j < x.size(); j += 97) x[j] *= 9.f;
      const std::vector<float> xr = int8_rounded(x);
      std::vector<float> want[2];
      std::vector<double> mag[2];
      w0.product(xr, kT, want[0], mag[0]);
      w1.product(xr, kT, want[1], mag[1]);
      float* xd = nullptr;
      void* xq = nullptr;
      float* yd[2] = {};
      ASSERT_EQ(cudaMalloc(&xd, size_t(kT * cols) * 4), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&xq, cuda::gemv_q8_x_bytes(wd[0], int(kT))), cudaSuccess);
      for (int i = 0; i < 2; ++i) ASSERT_EQ(cudaMalloc(&yd[i], size_t(kT * rows_of[i]) * 4), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(xd, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
      for (const int T : {1, 3, int(kT)}) {
        for (const Shape& sh : shapes) {
          if (T > 1 ? !sh.multi : !sh.one) continue;
          cuda::gemv_q8_quantize_x(wd[0], xd, T, xq, nullptr);
          const cuda::GemvTuning tu{sh.R, sh.U, sh.KS, 1, sh.pipe, sh.prefetch};
          for (int i = 0; i < 2; ++i) ASSERT_EQ(cudaMemset(yd[i], 0xFF, size_t(T * rows_of[i]) * 4), cudaSuccess);
          cuda::gemv_q8_multi(wd, yd, 2, xq, T, nullptr, tu);
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          const std::string what = "T" + std::to_string(T) + " R" + std::to_string(sh.R) + " U" + std::to_string(sh.U) +
                                   " KS" + std::to_string(sh.KS) + (sh.pipe ? " pipelined" : "") + " cols " +
                                   std::to_string(cols) + " " + L.name();
          for (int i = 0; i < 2; ++i) {
            std::vector<float> got(size_t(T * rows_of[i]));
            ASSERT_EQ(cudaMemcpy(got.data(), yd[i], got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
            const size_t n = got.size();
            expect_host_sum(got, std::vector<float>(want[i].begin(), want[i].begin() + long(n)),
                            std::vector<double>(mag[i].begin(), mag[i].begin() + long(n)), what + " segment " + std::to_string(i));
          }
        }
      }
      cuda::gemv_q8_quantize_x(wd[0], xd, 1, xq, nullptr);
      EXPECT_THROW(cuda::gemv_q8_multi(wd, yd, 2, xq, 1, nullptr, cuda::GemvTuning{3, 3, 3, 1, 1, 1}), Error);
      EXPECT_THROW(cuda::gemv_q8_multi(wd, yd, 2, xq, 1, nullptr, cuda::GemvTuning{8, 1, 1, 1, 0, 1}), Error);  // dropped
      cudaFree(xd), cudaFree(xq), cudaFree(yd[0]), cudaFree(yd[1]);
    }
  }
}

// The one-token GEMV through the shared-memory ring (gemv_q8_ring.cu) in every compiled shape (rows and
// buffers a warp) equals the one-token kernel with K unsplit (4 rows a warp, 2 chunks a round) bit for bit:
// a partial last round (5,376 columns: 168 chunks), rows not a multiple of a row group, two segments, many
// row groups a warp (20,000 rows of 256 columns: more groups than the GPU holds warps, so each warp's ring runs
// on from one group into the next), both decode layouts. A shape not compiled is a clear error, which also
// shows that the ring was taken (a layout it refused would fall back to the other kernel in silence).
TEST_F(CudaTest, Int4RingGemvEqualsTheOneTokenKernelBitwise) {
  struct Case {
    int64_t rows0, rows1, cols;
  };
  for (const Case& c : {Case{301, 70, 5376}, Case{20000, 3, 256}, Case{64, 5, 8192}}) {
    for (const bool q4_0 : {false, true}) {
      TwoWeightsOneToken g(rng_, c.rows0, c.rows1, c.cols, q4_0);
      cuda::GemvTuning plain{4, 2, 1, 1, 0, 0};
      plain.ring_rows = -1;
      const std::vector<float> want = g.run(plain);
      for (const auto& [R, ST] : {std::pair{4, 3}, {4, 4}, {4, 6}, {2, 8}, {8, 3}}) {
        cuda::GemvTuning tu{4, 2, 1, 1, 0, 0};
        tu.ring_rows = R, tu.ring_stages = ST;
        EXPECT_EQ(TwoWeightsOneToken::bit_diffs(g.run(tu), want), 0)
            << "ring of " << R << " rows x " << ST << " buffers, " << c.rows0 << " + " << c.rows1 << " rows x " << c.cols
            << (q4_0 ? " (Q4_0 layout)" : " (int4 with zero points)") << ": outputs that differ from the one-token kernel";
      }
      cuda::GemvTuning bad{4, 2, 1, 1, 0, 0};
      bad.ring_rows = 3, bad.ring_stages = 4;
      g.expect_error(bad);
    }
  }
}

// The one-token GEMV through bulk copies (gemv_q8_bulk.cu) in every compiled shape (rows and buffers a warp)
// equals the one-token register kernel bit for bit, in both sum orders: K unsplit (4 rows a warp, 2 chunks a
// round) and K split over 4 warps (4 x 1 x 4 pipelined, the short outputs' shape). A partial last round (5,376
// columns: 168 chunks, rounds of 128), rows not a multiple of a row group, two segments, many row groups a warp
// (20,000 rows of 256 columns), two full rounds (8,192 columns), both decode layouts. A shape not compiled is a
// clear error, which also shows that the bulk kernel was taken (a layout it refused would fall back to the
// register kernel in silence). Skipped on GPUs without the TMA (compute capability below 9.0).
TEST_F(CudaTest, Int4BulkGemvEqualsTheOneTokenKernelBitwise) {
  int dev = 0, major = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), cudaSuccess);
  if (major < 9) GTEST_SKIP() << "bulk copies need compute capability 9.0";
  struct Case {
    int64_t rows0, rows1, cols;
  };
  for (const Case& c : {Case{301, 70, 5376}, Case{20000, 3, 256}, Case{64, 5, 8192}}) {
    for (const bool q4_0 : {false, true}) {
      TwoWeightsOneToken g(rng_, c.rows0, c.rows1, c.cols, q4_0);
      // The register kernel's shapes whose orders the bulk kernel repeats: K unsplit, K split over 4 warps.
      for (const cuda::GemvTuning shape : {cuda::GemvTuning{4, 2, 1, 1, 0, 0}, cuda::GemvTuning{4, 1, 4, 1, 1, 0}}) {
        cuda::GemvTuning plain = shape;
        plain.bulk_rows = -1, plain.ring_rows = -1;
        const std::vector<float> want = g.run(plain);
        for (const auto& [R, ST] : {std::pair{2, 3}, {2, 4}, {4, 2}}) {
          cuda::GemvTuning tu = shape;
          tu.bulk_rows = R, tu.bulk_stages = ST;
          EXPECT_EQ(TwoWeightsOneToken::bit_diffs(g.run(tu), want), 0)
              << "bulk copies, " << R << " rows x " << ST << " buffers, K split " << shape.ksplit << ", " << c.rows0
              << " + " << c.rows1 << " rows x " << c.cols << (q4_0 ? " (Q4_0 layout)" : " (int4 with zero points)")
              << ": outputs that differ from the one-token kernel";
        }
        cuda::GemvTuning bad = shape;
        bad.bulk_rows = 3, bad.bulk_stages = 4;
        g.expect_error(bad);
      }
    }
  }
}

// The integer GEMV in its default shapes computes each token of a 2-8-token launch bit for bit as a launch of
// that token alone, on short launches (at most 8,192 rows: one token splits K over 4 warps) and long ones:
// so a verify of up to 8 tokens reproduces one-token steps exactly at the 31B's widths (K = 8,192: 256
// chunks, every warp of a K split busy), not only on small fixtures. Both decode layouts (g4's int4: the
// tensor cores from 7 tokens; Q4_0's: from 2), and the 31B's short shape (5,376 rows: 168 tiles of 32 rows,
// K split in 4 passes).
TEST_F(CudaTest, Int4GemvTokensOfAGroupEqualTheTokenAloneBitwise) {
  for (const auto& [rows, q4_0] : {std::pair<int64_t, bool>{301, false}, {5376, false}, {9000, false}, {301, true},
                                   {5376, true}, {9000, true}}) {
    const int64_t cols = 8192;
    HandInt4 w(rng_, rows, cols, q4_0 ? cuda::SType::kF16 : cuda::SType::kBF16, !q4_0, 32);
    constexpr int kT = 8;
    auto x = randn(rng_, size_t(kT * cols));
    float *xd = nullptr, *yd = nullptr;
    void* xq = nullptr;
    ASSERT_EQ(cudaMalloc(&xd, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&xq, cuda::gemv_q8_x_bytes(w.wd, kT)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&yd, size_t(kT * rows) * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(xd, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    auto run = [&](const float* xs, int T) {
      cuda::gemv_q8_quantize_x(w.wd, xs, T, xq, nullptr);
      cuda::gemv_q8_quantized(w.wd, xq, T, yd, nullptr);
      std::vector<float> got(size_t(T * rows));
      EXPECT_EQ(cudaMemcpy(got.data(), yd, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
      return got;
    };
    std::vector<float> alone;
    for (int t = 0; t < kT; ++t) {
      const std::vector<float> one = run(xd + int64_t(t) * cols, 1);
      alone.insert(alone.end(), one.begin(), one.end());
    }
    for (int T : {2, 3, 4, 5, 8}) {
      const std::vector<float> group = run(xd, T);
      int diff = 0;
      for (size_t i = 0; i < group.size(); ++i) diff += std::memcmp(&group[i], &alone[i], 4) != 0;
      EXPECT_EQ(diff, 0) << rows << " rows" << (q4_0 ? " (Q4_0 layout), " : ", ") << T
                         << " tokens: outputs that differ from the token alone";
    }
    cudaFree(xd), cudaFree(xq), cudaFree(yd);
  }
}

// The tensor-core kernel (gemm_mma.cu) in every compiled shape (8-row tiles a warp x warps splitting K) equals
// the host sum on int8-rounded activations up to f32 rounding, and a token's result does not depend on how
// many tokens share the launch: tokens 0..T-1 of every T from 1 to 17 (one, two and four groups of 8 tokens)
// are bitwise those of the 17-token launch. So a decode step of several sequences gives each the logits it
// would get alone, and a speculative verify the logits of one-token steps through the same kernel. Rows not a
// multiple of 8 or 16, chunk counts with a partial last quad (33, 34) and uneven K splits, group sizes 32, 64
// and 128, every scale type, and a shape that is not compiled (a clear error).
TEST_F(CudaTest, Int4TensorCoreKernelEqualsHostSumAtEveryT) {
  using cuda::SType;
  struct Shape {
    int R, KS, U;  // 0: the default
  };
  const Shape shapes[] = {{0, 0, 0}, {1, 4, 2}, {1, 8, 2}, {1, 2, 2}, {1, 4, 1}, {1, 8, 1}, {2, 2, 2}, {1, 4, 4}};
  for (const HandLayout& L : {HandLayout{SType::kBF16, true, 32}, HandLayout{SType::kF16, false, 32},
                              HandLayout{SType::kBF16, false, 64}, HandLayout{SType::kF16, true, 128}}) {
    for (int64_t cols : {L.gs == 32 ? int64_t(1056) : int64_t(1088), int64_t(8192)}) {
      if (cols % L.gs) continue;
      const int64_t rows = 301;
      HandInt4 w(rng_, rows, cols, L.st, L.asym, L.gs);
      constexpr int kT = 17;
      auto x = randn(rng_, size_t(kT * cols));
      for (size_t j = 0; j < x.size(); j += 97) x[j] *= 9.f;
      std::vector<float> want;
      std::vector<double> mag;
      w.product(int8_rounded(x), kT, want, mag);
      float *xd = nullptr, *yd = nullptr;
      void* xq = nullptr;
      ASSERT_EQ(cudaMalloc(&xd, x.size() * 4), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&xq, cuda::gemm_mma_x_bytes(w.wd, kT)), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&yd, size_t(kT * rows) * 4), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(xd, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
      // Swept shapes are compiled for the two decode layouts up to 16 tokens; the defaults everywhere.
      const bool swept = (L.st == SType::kBF16 && L.asym && L.gs == 32) || (L.st == SType::kF16 && !L.asym && L.gs == 32);
      auto run = [&](int T, Shape sh) {
        cuda::gemm_mma_quantize_x(w.wd, xd, T, xq, nullptr);
        EXPECT_EQ(cudaMemset(yd, 0xFF, size_t(T * rows) * 4), cudaSuccess);
        cuda::gemm_mma_quantized(w.wd, xq, T, yd, nullptr, cuda::MmaTuning{sh.R, sh.KS, sh.U, 1});
        std::vector<float> got(size_t(T * rows));
        EXPECT_EQ(cudaMemcpy(got.data(), yd, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        return got;
      };
      const std::string where = " cols " + std::to_string(cols) + " " + L.name();
      const std::vector<float> all = run(kT, {0, 0, 0});
      expect_host_sum(all, want, mag, "default shape T17" + where);
      for (int T : {1, 2, 3, 8, 9, 16}) {
        for (auto sh : shapes) {
          // The defaults ({1, 4, 2}, {1, 8, 2}) are compiled for every layout.
          if (sh.R && !swept && !(sh.R == 1 && sh.U == 2 && (sh.KS == 4 || sh.KS == 8))) continue;
          const std::vector<float> got = run(T, sh);
          const std::string what = "T" + std::to_string(T) + " R" + std::to_string(sh.R) + " KS" +
                                   std::to_string(sh.KS) + " U" + std::to_string(sh.U) + where;
          expect_host_sum(got, std::vector<float>(want.begin(), want.begin() + long(got.size())),
                          std::vector<double>(mag.begin(), mag.begin() + long(got.size())), what);
          if (sh.R == 0) {  // the default shape: bitwise the 17-token launch's rows
            int diff = 0;
            for (size_t i = 0; i < got.size(); ++i) diff += std::memcmp(&got[i], &all[i], 4) != 0;
            EXPECT_EQ(diff, 0) << what << ": results differ from the same tokens in a 17-token launch";
          }
        }
      }
      cuda::gemm_mma_quantize_x(w.wd, xd, 1, xq, nullptr);
      EXPECT_THROW(cuda::gemm_mma_quantized(w.wd, xq, 1, yd, nullptr, cuda::MmaTuning{3, 3, 3, 1}), Error);
      cudaFree(xd), cudaFree(xq), cudaFree(yd);
    }
  }
}

TEST_F(CudaTest, PackRejectsUnsupportedGroupSize) {
  RandomQuant rq(rng_, QuantKind::kInt4, 4, 64, 16, DType::kBF16, false);
  EXPECT_THROW(fast_->pack(rq.view(), WeightRole::kLinear), Error);
  std::vector<uint16_t> bf(4 * 12);
  WeightView odd{"odd.weight", DType::kBF16, {4, 12}, bf.data(), nullptr};
  EXPECT_THROW(fast_->pack(odd, WeightRole::kLinear), Error);
}

TEST_F(CudaTest, EmbedAllFormats) {
  const int64_t V = 50, H = 256;
  std::vector<int32_t> tokens = {0, 49, 7, 7, 23};
  RandomQuant q4(rng_, QuantKind::kInt4, V, H, 64, DType::kBF16, true), q8(rng_, QuantKind::kInt8, V, H, 256, DType::kF32, false);
  const auto f = randn(rng_, size_t(V * H));
  std::vector<uint16_t> bf(f.size());
  for (size_t i = 0; i < f.size(); ++i) bf[i] = f32_to_bf16(f[i]);
  for (const WeightView& wv : {q4.view(), q8.view(), WeightView{"e", DType::kBF16, {V, H}, bf.data(), nullptr}}) {
    auto wr = ref_.pack(wv, WeightRole::kEmbedding);
    auto wc = fast_->pack(wv, WeightRole::kEmbedding);
    Tensor yr = ref_.empty({5, H}), yc = fast_->empty({5, H});
    ref_.embed(*wr, tokens, 73.5f, yr);
    fast_->embed(*wc, tokens, 73.5f, yc);
    expect_close(to_host(*fast_, yc), to_host(ref_, yr), 1e-6, "embed");
  }
}

TEST_F(CudaTest, NormsAndElementwise) {
  for (int64_t n : {1, 7, 256, 5376}) {
    for (int64_t rows : {1, 3, 37}) {
      const auto x = randn(rng_, size_t(rows * n), 3.f), o = randn(rng_, size_t(rows * n), 2.f);
      const auto wv = randn(rng_, size_t(n));
      WeightView w{"norm", DType::kF32, {n}, wv.data(), nullptr};
      auto wr = ref_.pack(w, WeightRole::kNorm);
      auto wc = fast_->pack(w, WeightRole::kNorm);
      const std::string what = "n=" + std::to_string(n) + " rows=" + std::to_string(rows);
      for (bool with_w : {true, false}) {
        Tensor xr = to_device(ref_, x, {rows, n}), yr = ref_.empty({rows, n});
        Tensor xc = to_device(*fast_, x, {rows, n}), yc = fast_->empty({rows, n});
        ref_.rms_norm(xr, with_w ? wr.get() : nullptr, 1e-6f, yr);
        fast_->rms_norm(xc, with_w ? wc.get() : nullptr, 1e-6f, yc);
        expect_close(to_host(*fast_, yc), to_host(ref_, yr), 1e-5, "rms_norm " + what);
      }
      {  // in place, as the forward pass uses it
        Tensor xc = to_device(*fast_, x, {rows, n});
        Tensor xr = to_device(ref_, x, {rows, n});
        ref_.rms_norm(xr, wr.get(), 1e-6f, xr);
        fast_->rms_norm(xc, wc.get(), 1e-6f, xc);
        expect_close(to_host(*fast_, xc), to_host(ref_, xr), 1e-5, "rms_norm in place " + what);
      }
      Tensor xr = to_device(ref_, x, {rows, n}), orr = to_device(ref_, o, {rows, n});
      Tensor xc = to_device(*fast_, x, {rows, n}), oc = to_device(*fast_, o, {rows, n});
      ref_.add_rms_norm(xr, orr, *wr, 1e-6f);
      fast_->add_rms_norm(xc, oc, *wc, 1e-6f);
      expect_close(to_host(*fast_, xc), to_host(ref_, xr), 1e-5, "add_rms_norm " + what);
      ref_.scale(xr, 0.37f);
      fast_->scale(xc, 0.37f);
      expect_close(to_host(*fast_, xc), to_host(ref_, xr), 1e-6, "scale " + what);
      ref_.softcap(xr, 3.f);
      fast_->softcap(xc, 3.f);
      expect_close(to_host(*fast_, xc), to_host(ref_, xr), 1e-6, "softcap " + what);
      Tensor gr = ref_.empty({rows, n}), gc = fast_->empty({rows, n});
      ref_.gelu_mul(xr, orr, gr);
      fast_->gelu_mul(xc, oc, gc);
      expect_close(to_host(*fast_, gc), to_host(ref_, gr), 1e-6, "gelu_mul " + what);
      Tensor sr = ref_.slice_rows(orr, rows / 2, rows - rows / 2), sc = fast_->slice_rows(oc, rows / 2, rows - rows / 2);
      expect_close(to_host(*fast_, sc), to_host(ref_, sr), 0, "slice_rows " + what);
    }
  }
}

TEST_F(CudaTest, RopeFullAndPartial) {
  struct C { int64_t T, H, D; int pairs; float theta; int64_t p0; };
  for (const C& c : {C{1, 32, 256, 128, 10000.f, 0}, C{5, 3, 512, 64, 1e6f, 4093}, C{19, 2, 32, 16, 10000.f, 7},
                     C{3, 4, 64, 0, 10000.f, 3}, C{2, 1, 256, 128, 10000.f, 250000}}) {
    const auto x = randn(rng_, size_t(c.T * c.H * c.D));
    Tensor xr = to_device(ref_, x, {c.T, c.H, c.D}), xc = to_device(*fast_, x, {c.T, c.H, c.D});
    ref_.rope(xr, c.p0, RopeSpec{c.theta, c.pairs});
    fast_->rope(xc, c.p0, RopeSpec{c.theta, c.pairs});
    expect_close(to_host(*fast_, xc), to_host(ref_, xr), 1e-6, "rope D=" + std::to_string(c.D) + " p0=" + std::to_string(c.p0));
  }
}

TEST_F(CudaTest, KvAppendRingAndFlat) {
  struct C { int64_t cap; bool ring; int64_t T, p0; };
  for (const C& c : {C{8, true, 3, 6}, C{8, true, 21, 5}, C{8, true, 1, 1001}, C{40, false, 17, 11}, C{40, false, 1, 39}}) {
    const int64_t H = 2, D = 32;
    KvLayer kr = ref_.make_kv_layer(c.cap, H, D, c.ring), kc = fast_->make_kv_layer(c.cap, H, D, c.ring);
    const auto init = randn(rng_, size_t(c.cap * H * D));
    ref_.upload(kr.k, init.data()), ref_.upload(kr.v, init.data());
    fast_->upload(kc.k, init.data()), fast_->upload(kc.v, init.data());
    const auto k = randn(rng_, size_t(c.T * H * D)), v = randn(rng_, size_t(c.T * H * D));
    ref_.kv_append(kr, to_device(ref_, k, {c.T, H, D}), to_device(ref_, v, {c.T, H, D}), c.p0);
    fast_->kv_append(kc, to_device(*fast_, k, {c.T, H, D}), to_device(*fast_, v, {c.T, H, D}), c.p0);
    expect_close(to_host(*fast_, kc.k), to_host(ref_, kr.k), 0, "kv_append k");
    expect_close(to_host(*fast_, kc.v), to_host(ref_, kr.v), 0, "kv_append v");
  }
}

// copy: a device copy into a row view of a larger tensor, leaving its other rows alone; a size mismatch is
// one clear error.
TEST_F(CudaTest, CopyIntoARowViewLeavesTheOtherRows) {
  const std::vector<float> a = randn(rng_, 3 * 40), b = randn(rng_, 40);
  Tensor big = to_device(*fast_, a, {3, 40});
  Tensor src = to_device(*fast_, b, {1, 40});
  Tensor row = big.rows(1, 1);
  fast_->copy(src, row);
  std::vector<float> want = a;
  std::copy(b.begin(), b.end(), want.begin() + 40);
  EXPECT_EQ(to_host(*fast_, big), want);
  Tensor small = fast_->empty({1, 39});
  EXPECT_THROW(fast_->copy(src, small), Error);
}

// gather_rows: a few runs of consecutive rows (a copy each) and thousands of scattered ones (the ids uploaded,
// one kernel: the assistant's centroid mask gathers 4,096 logits of a [1, 262144] row seen as 262,144 rows of
// one value) give exactly the host's gather; an id out of range is one clear error.
TEST_F(CudaTest, GatherRowsFewRunsAndScatteredEqualTheHost) {
  const int64_t V = 262144;
  const std::vector<float> row = randn(rng_, size_t(V));
  Tensor logits = to_device(*fast_, row, {1, V});
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 4096; ++i) ids.push_back((i * 7919 + 13) % V);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const std::vector<float> got = to_host(*fast_, fast_->gather_rows(logits.view({V, 1}), ids));
  std::vector<float> want;
  for (int64_t i : ids) want.push_back(row[size_t(i)]);
  EXPECT_EQ(got, want);
  const std::vector<float> m = randn(rng_, 100 * 7);
  Tensor t = to_device(*fast_, m, {100, 7});
  for (const std::vector<int64_t>& rs : {std::vector<int64_t>{3, 4, 5, 99}, std::vector<int64_t>{9, 1, 50, 2, 77, 0, 13, 8, 64, 31, 32}}) {
    const std::vector<float> g = to_host(*fast_, fast_->gather_rows(t, rs));
    std::vector<float> w;
    for (int64_t r : rs) w.insert(w.end(), m.begin() + r * 7, m.begin() + (r + 1) * 7);
    EXPECT_EQ(g, w) << rs.size() << " rows";
  }
  EXPECT_THROW(fast_->gather_rows(t, {1, 100}), Error);
}

}  // namespace
}  // namespace g4::test
