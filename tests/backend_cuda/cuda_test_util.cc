#include "cuda_test_util.h"

#include "backend/cuda/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/dtype.h"
#include "quant/format.h"

namespace g4::test {

void CudaTest::SetUp() {
  G4_SKIP_OR_FAIL_WITHOUT_GPU();
  fast_ = std::make_unique<CudaBackend>();
  CudaOptions p;
  p.precise = true;
  p.gemm_scratch_bytes = 1 << 16;  // small blocks: exercises the blocked GEMM path
  precise_ = std::make_unique<CudaBackend>(p);
}

std::vector<float> randn(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

Tensor to_device(Backend& be, const std::vector<float>& v, std::vector<int64_t> shape) {
  Tensor t = be.empty(std::move(shape));
  EXPECT_EQ(size_t(t.numel()), v.size());
  be.upload(t, v.data());
  return t;
}

std::vector<float> to_host(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.download(t, v.data());
  return v;
}

static void put_scalar(DType t, float f, uint8_t* dst) {
  if (t == DType::kF32) std::memcpy(dst, &f, 4);
  else {
    const uint16_t h = t == DType::kF16 ? f32_to_f16(f) : f32_to_bf16(f);
    std::memcpy(dst, &h, 2);
  }
}

RandomQuant::RandomQuant(std::mt19937& rng, QuantKind kind, int64_t rows, int64_t cols, int64_t gs, DType sdt,
                         bool asym) {
  q.kind = kind;
  q.rows = rows;
  q.cols = cols;
  q.group_size = gs;
  q.scale_dtype = sdt;
  codes.resize(q.code_bytes());
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& c : codes) c = uint8_t(byte(rng));
  const size_t ng = size_t(rows * (cols / gs)), es = dtype_size(sdt);
  scales.resize(ng * es);
  std::uniform_real_distribution<float> sd(0.002f, 0.03f), zd(0.f, kind == QuantKind::kInt4 ? 15.f : 20.f);
  for (size_t i = 0; i < ng; ++i) put_scalar(sdt, sd(rng), scales.data() + i * es);
  if (asym) {
    zeros.resize(ng * es);
    for (size_t i = 0; i < ng; ++i) put_scalar(sdt, zd(rng), zeros.data() + i * es);
  }
  q.codes = codes.data();
  q.scales = scales.data();
  q.zeros = asym ? zeros.data() : nullptr;
}

std::string unlike_gemv_rounding(const float* x, int64_t rows, int64_t cols, const void* fused) {
  const size_t bytes = cuda::gemv_q8_x_bytes_cols(cols, int(rows));
  void* plain = nullptr;
  if (cudaMalloc(&plain, bytes) != cudaSuccess || cudaMemset(plain, 0xCD, bytes) != cudaSuccess)
    throw Error("unlike_gemv_rounding: device buffer");
  cuda::WeightDesc w;  // the rounding reads only the width and the int4 format
  w.fmt = cuda::WFmt::kInt4, w.rows = 1, w.cols = cols, w.group_size = 32, w.stype = cuda::SType::kBF16;
  cuda::gemv_q8_quantize_x(w, x, int(rows), plain, nullptr);
  std::vector<uint8_t> a(bytes), b(bytes);
  const bool copied = cudaMemcpy(a.data(), fused, bytes, cudaMemcpyDeviceToHost) == cudaSuccess &&
                      cudaMemcpy(b.data(), plain, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
  cudaFree(plain);
  if (!copied) throw Error("unlike_gemv_rounding: copy back");
  size_t first = bytes, n = 0;
  for (size_t i = 0; i < bytes; ++i)
    if (a[i] != b[i]) first = std::min(first, i), ++n;
  if (n == 0) return "";
  // Where the first difference sits in the x layout (q8_act.cuh): token t's words, 32 bytes a chunk in two
  // 16-byte slots 512 bytes apart within blocks of 32 chunks; then the {d, d * sum(q)} pairs, 8 bytes each
  // (so 40 bytes a padded chunk: the padded count from the buffer's size).
  const size_t nch_pad = bytes / (40 * size_t(rows)), words = nch_pad * 32 * size_t(rows);
  std::string where;
  if (first < words) {
    const size_t t = first / (nch_pad * 32), in = first % (nch_pad * 32), blk = in / 1024, r = in % 1024;
    where = "token " + std::to_string(t) + " chunk " + std::to_string(blk * 32 + r % 512 / 16) + " word " +
            std::to_string((r / 512) * 4 + r % 16 / 4);
  } else {
    const size_t e = (first - words) / 8;
    where = "the scale pair of token " + std::to_string(e / nch_pad) + " chunk " + std::to_string(e % nch_pad);
  }
  return std::to_string(n) + " of " + std::to_string(bytes) + " bytes differ, the first (" + std::to_string(first) +
         ", " + where + ") " + std::to_string(a[first]) + " against the GEMV's " + std::to_string(b[first]);
}

double expect_close(const std::vector<float>& got, const std::vector<float>& want, double bound, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  double num = 0, den = 0, worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
    if (!(std::fabs(d) <= worst)) worst = std::fabs(d), at = i;
  }
  const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  EXPECT_LE(rel, bound) << what << ": relative error " << rel << " > " << bound << "; worst element " << at << " got "
                        << got[at] << " expected " << want[at];
  const double rms = want.empty() ? 0 : std::sqrt(den / double(want.size()));
  EXPECT_TRUE(testing_util::all_close_each(got, want, [&](size_t i) {
    return 8 * bound * std::max(std::fabs(double(want[i])), rms);
  })) << what << " (per element: 8 x " << bound << " x max(|expected|, rms " << rms << "))";
  return rel;
}

MatmulScales matmul_scales(const std::vector<float>& x, int64_t T, const std::vector<float>& w, int64_t N, int64_t K) {
  MatmulScales m;
  m.T = T, m.N = N, m.K = K;
  m.s.assign(size_t(T * N), 0), m.d.assign(size_t(T * N), 0);
  std::vector<double> step2(static_cast<size_t>(K));
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x.data() + t * K;
    for (int64_t b = 0; b < K; b += 32) {
      double amax = 0;
      for (int64_t k = b; k < std::min(K, b + 32); ++k) amax = std::max(amax, std::fabs(double(xt[k])));
      for (int64_t k = b; k < std::min(K, b + 32); ++k) step2[size_t(k)] = (amax / 127) * (amax / 127);
    }
    for (int64_t n = 0; n < N; ++n) {
      const float* wn = w.data() + n * K;
      double s = 0, d = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(xt[k]) * wn[k], w2 = double(wn[k]) * wn[k];
        s += p * p;
        d += w2 * step2[size_t(k)] / 12;
      }
      m.s[size_t(t * N + n)] = std::sqrt(s);
      m.d[size_t(t * N + n)] = std::sqrt(d);
    }
  }
  return m;
}

std::vector<float> weight_f32(const WeightView& w) {
  const int64_t N = w.shape.at(0), K = w.shape.at(1);
  std::vector<float> out(size_t(N * K));
  if (w.quant) {
    for (int64_t n = 0; n < N; ++n) dequantize_row(*w.quant, n, out.data() + n * K);
  } else {
    convert_to_f32(w.dtype, w.data, out.size(), out.data());
  }
  return out;
}

constexpr double kU32 = 1.0 / (1 << 24), kUBf16 = 1.0 / (1 << 8), kUF16 = 1.0 / (1 << 11);

MatmulPath f32_path(int64_t K) { return {6 * kU32 * std::sqrt(double(K)), 0, "f32"}; }
MatmulPath bf16_gemm_path(int64_t K) { return {4.9 * kUBf16 + f32_path(K).s_coef, 0, "bf16 GEMM"}; }
MatmulPath f16_gemv_path(int64_t K) { return {40 * kUF16 + f32_path(K).s_coef, 0, "f16 GEMV"}; }
MatmulPath dp4a_path(int64_t K) { return {f32_path(K).s_coef, 6, "dp4a GEMV"}; }

bool takes_mma(int64_t cols, int64_t gs, DType sdt, int64_t T) {
  cuda::WeightDesc d;
  d.fmt = cuda::WFmt::kInt4;
  d.cols = cols;
  d.group_size = gs;
  d.stype = sdt == DType::kF32 ? cuda::SType::kF32 : sdt == DType::kF16 ? cuda::SType::kF16 : cuda::SType::kBF16;
  return T >= cuda::gemm_mma_min_tokens() && T <= cuda::kMmaMaxT && cuda::gemm_mma_supported(d);
}

void expect_matmul_close(const std::vector<float>& got, const std::vector<float>& want, const MatmulScales& sc,
                         const MatmulPath& path, const std::string& what) {
  ASSERT_EQ(want.size(), sc.s.size()) << what;
  EXPECT_TRUE(testing_util::all_close_each(got, want, [&](size_t i) {
    return path.s_coef * sc.s[i] + path.d_coef * sc.d[i] + 1e-30;
  })) << what << " (" << path.name << ": per element " << path.s_coef << " x S + " << path.d_coef << " x D, K = "
      << sc.K << ")";
}

std::string test_data_dir() {
  if (const char* e = std::getenv("G4_TEST_DATA")) return e;
  return G4_TEST_DATA;
}

}  // namespace g4::test
