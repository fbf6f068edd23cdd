// Shared helpers of the CUDA backend tests: a fixture that skips without a GPU, random tensors put on
// both the CUDA and the ref backend, random quantized weights, and a relative-error comparison that
// reports the worst element.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"
#include "util/compare.h"
#include "util/gpu.h"

namespace g4::test {

// Skips the test when no CUDA device can be used (fails instead under G4_REQUIRE_GPU=1, util/gpu.h);
// otherwise provides fast and precise backends.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  std::unique_ptr<CudaBackend> fast_, precise_;
  RefBackend ref_;
  std::mt19937 rng_{1234};
};

std::vector<float> randn(std::mt19937& rng, size_t n, float scale = 1.f);
Tensor to_device(Backend& be, const std::vector<float>& v, std::vector<int64_t> shape);
std::vector<float> to_host(Backend& be, const Tensor& t);

// A random quantized weight whose storage lives in this object.
struct RandomQuant {
  QuantWeight q;
  std::vector<uint8_t> codes, scales, zeros;
  RandomQuant(std::mt19937& rng, QuantKind kind, int64_t rows, int64_t cols, int64_t gs, DType sdt, bool asym);
  WeightView view() const { return WeightView{"test.weight", DType::kF32, {q.rows, q.cols}, nullptr, &q}; }
};

// Two checks, each a gtest failure naming the worst element: the whole tensor, ||got - want|| / ||want|| <=
// bound, and every element, |got_i - want_i| <= 8 * bound * max(|want_i|, rms(want)) (NaN fails both). The
// factor 8 is the worst element's error over the rms error of a few hundred thousand independent roundings
// (a Gaussian tail at ~5 sigma) with margin; one element off by the typical output size fails.
double expect_close(const std::vector<float>& got, const std::vector<float>& want, double bound, const std::string& what);

// x [rows, cols] f32 on the device rounded by gemv_q8_quantize_x (the integer GEMV's own rounding) into a
// buffer of its own, compared byte for byte with `fused` (gemv_q8_x_bytes_cols(cols, rows) bytes on the
// device, what a fused kernel wrote): empty when all agree, else how many bytes differ and where the first
// sits (token, chunk and word, or a scale pair) with both values.
std::string unlike_gemv_rounding(const float* x, int64_t rows, int64_t cols, const void* fused);

// Per-element bounds for y = x W^T (x [T, K], W [N, K] as f32, dequantized). For y[t, n] = sum_k x_k w_k:
//  S[t, n] = sqrt(sum_k (x_k w_k)^2): the rounding error of the sum when each product carries an independent
//    relative error of standard deviation e is e * S (rounding to a dtype of unit roundoff u: e = u / sqrt(3));
//  D[t, n] = sqrt(sum_k w_k^2 step_k^2 / 12): the error when x is rounded to int8 per block of 32 with step
//    max|x| / 127 over the block (dp4a GEMV), each value's error uniform in [-step/2, step/2].
struct MatmulScales {
  int64_t T = 0, N = 0, K = 0;
  std::vector<double> s, d;  // [T, N]
};
MatmulScales matmul_scales(const std::vector<float>& x, int64_t T, const std::vector<float>& w, int64_t N, int64_t K);
// W [N, K] of a weight view as f32 (dequantized rows for quantized weights, converted for BF16/F16/F32).
std::vector<float> weight_f32(const WeightView& w);

// The arithmetic of one CUDA matmul path, as the multiple of S (and D) each element may be off by: six
// standard deviations (no false failure over ~1e6 elements), summed over the path's roundings.
struct MatmulPath {
  double s_coef = 0, d_coef = 0;
  const char* name = "";
};
// f32 throughout (precise GEMM, f32 GEMV of float weights): only the order of summation differs; partial sums
// grow as sqrt(k), so the summation error is about u32 * sqrt(K / 2) * S; coefficient 6 * u32 * sqrt(K).
MatmulPath f32_path(int64_t K);
// bf16 tensor-core GEMM (fast, T > kGemvMaxT): x and w rounded to bf16 (u = 2^-8) before f32 products:
// two independent relative errors of sd u / sqrt(3) each; 6 * sqrt(2) * u / sqrt(3) = 4.9 u.
MatmulPath bf16_gemm_path(int64_t K);
// Quantized GEMV in f16 (T <= kGemvMaxT, precise, and fast when dp4a is off): x, the dequantized weight and
// the products rounded to f16, partial sums of a 16-byte chunk (up to 32 values) in f16 (u = 2^-11); the
// chunk's sum of up to 32 terms has a summation error of about u * sqrt(32 / 2) = 4u in units of S: sd
// (3 * 0.58 + 4) u = 5.7 u; six sd 34 u, taken as 40 u.
MatmulPath f16_gemv_path(int64_t K);
// dp4a GEMV (fast int4, T <= kGemvMaxT): x rounded to int8 per 32 values (6 * D), then exact integer dot
// products and an f32 combination of the blocks.
MatmulPath dp4a_path(int64_t K);
// True when the fast backend multiplies T tokens by this int4 layout on the tensor cores (gemm_mma.cu),
// whose arithmetic is the dp4a GEMV's (x rounded to int8 per 32 values, exact integer sums per chunk).
bool takes_mma(int64_t cols, int64_t gs, DType sdt, int64_t T);

// Every element within path.s_coef * S + path.d_coef * D (+ 1e-30); NaN fails.
void expect_matmul_close(const std::vector<float>& got, const std::vector<float>& want, const MatmulScales& sc,
                         const MatmulPath& path, const std::string& what);

// Directory of the test data (G4_TEST_DATA, overridable by the environment variable of that name so a
// binary built elsewhere finds the data on the GPU machine).
std::string test_data_dir();

}  // namespace g4::test
