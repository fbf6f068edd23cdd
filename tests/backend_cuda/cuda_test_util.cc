#include "cuda_test_util.h"

#include <cmath>
#include <cstdlib>

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
  return rel;
}

std::string test_data_dir() {
  if (const char* e = std::getenv("G4_TEST_DATA")) return e;
  return G4_TEST_DATA;
}

}  // namespace g4::test
