// CPU matmuls against the ref backend: int4/int8 (sym and asym, bf16/f16/f32 scales, several group
// sizes) through the int8-activation kernels, and dense f32/f16/bf16, over awkward shapes, for every
// kernel table this CPU runs. Bounds are derived, not tuned:
//  - quantized: activations are rounded to int8 per 32-group, |x - x^| <= amax_g / 254, so
//    |y - y_ref| <= sum_k |w_k| amax_g(k) / 254, plus f32 rounding of the group sums and of the
//    zero-point subtraction, bounded by (G + 32) eps sum_k |s_g| (u_k + |zu|) |x_k|;
//  - dense: f32 accumulation over n terms in 16 lanes, (n / 16 + 16) eps sum_k |w_k x_k|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "backend/ref/ref_backend.h"
#include "cpu_test_util.h"

namespace g4::test {
namespace {

struct QCase {
  QuantKind kind;
  DType scale_dtype;
  bool asym;
  int64_t rows, cols, gs, T;
};

std::string describe(const QCase& c, const char* isa) {
  return std::string(isa) + (c.kind == QuantKind::kInt4 ? " int4" : " int8") + " " + dtype_name(c.scale_dtype) +
         (c.asym ? " asym" : " sym") + " rows=" + std::to_string(c.rows) + " cols=" + std::to_string(c.cols) +
         " gs=" + std::to_string(c.gs) + " T=" + std::to_string(c.T);
}

void store_scalar(DType t, float v, void* dst) {
  if (t == DType::kF32) std::memcpy(dst, &v, 4);
  else { const uint16_t h = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v); std::memcpy(dst, &h, 2); }
}
float load_scalar(DType t, const void* src) {
  float f;
  convert_to_f32(t, src, 1, &f);
  return f;
}

void run_quant_case(const QCase& c, std::mt19937& rng) {
  const int64_t G = c.cols / c.gs;
  const size_t ss = dtype_size(c.scale_dtype);
  std::vector<uint8_t> codes(size_t(c.kind == QuantKind::kInt4 ? c.rows * c.cols / 2 : c.rows * c.cols));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : codes) b = uint8_t(byte(rng));
  std::vector<uint8_t> scales(size_t(c.rows * G) * ss), zeros(size_t(c.rows * G) * ss);
  std::uniform_real_distribution<float> sdist(0.001f, 0.05f), zdist(-3.0f, 3.0f);
  for (int64_t i = 0; i < c.rows * G; ++i) {
    store_scalar(c.scale_dtype, sdist(rng), scales.data() + size_t(i) * ss);
    const float z = (c.kind == QuantKind::kInt4 ? 7.5f : 0.0f) + zdist(rng);
    store_scalar(c.scale_dtype, z, zeros.data() + size_t(i) * ss);
  }
  QuantWeight q;
  q.kind = c.kind;
  q.rows = c.rows;
  q.cols = c.cols;
  q.group_size = c.gs;
  q.codes = codes.data();
  q.scale_dtype = c.scale_dtype;
  q.scales = scales.data();
  q.zeros = c.asym ? zeros.data() : nullptr;
  const WeightView wv{"test.weight", DType::kF32, {c.rows, c.cols}, nullptr, &q};
  // Activations with a few outliers, as real hidden states have.
  std::vector<float> x = randn(size_t(c.T * c.cols), rng);
  for (size_t i = 0; i < x.size(); i += 97) x[i] *= 20.0f;

  RefBackend ref;
  auto wref = ref.pack(wv, WeightRole::kLinear);
  Tensor xr = make(ref, {c.T, c.cols}, x), yr = ref.empty({c.T, c.rows});
  ref.matmul(xr, *wref, yr);
  const std::vector<float> want = fetch(ref, yr);

  // The bound needs the codes and scales per element.
  std::vector<double> bound(size_t(c.T * c.rows)), rounding(bound.size());
  for (int64_t t = 0; t < c.T; ++t) {
    const float* xt = x.data() + t * c.cols;
    for (int64_t r = 0; r < c.rows; ++r) {
      double quant = 0, mag = 0;
      for (int64_t k = 0; k < c.cols; ++k) {
        const int64_t g32 = k / 32;
        float amax = 0;
        for (int64_t j = g32 * 32; j < g32 * 32 + 32 && j < c.cols; ++j) amax = std::max(amax, std::fabs(xt[j]));
        const size_t gi = size_t(r * G + k / c.gs);
        const double s = std::fabs(load_scalar(c.scale_dtype, scales.data() + gi * ss));
        double u, zu;
        if (c.kind == QuantKind::kInt4) {
          const uint8_t b = codes[size_t(r * c.cols / 2 + k / 2)];
          u = (k & 1) ? (b >> 4) : (b & 15);
          zu = c.asym ? load_scalar(c.scale_dtype, zeros.data() + gi * ss) : 8.0;
        } else {
          u = double(int8_t(codes[size_t(r * c.cols + k)])) + 128.0;
          zu = (c.asym ? load_scalar(c.scale_dtype, zeros.data() + gi * ss) : 0.0) + 128.0;
        }
        const double w = (u - zu) * s;
        quant += std::fabs(w) * amax / 254.0;
        mag += s * (u + std::fabs(zu)) * std::fabs(xt[k]);
      }
      const double groups = double((c.cols + 255) / 256 * 8);
      rounding[size_t(t * c.rows + r)] = (groups + 32) * kF32Eps * mag * 1.02;
      bound[size_t(t * c.rows + r)] = quant * (1 + 1e-5) + rounding[size_t(t * c.rows + r)];
    }
  }
  // Every table rounds the activations to the same int8 codes and its integer dot products are exact, so
  // the tables may differ from one another (here: from the generic one) only by f32 rounding, on both sides.
  // This catches a wrong weight or activation block anywhere in a row, which the quantization bound
  // above, summed over the whole row, can be too loose to see.
  std::vector<double> two_roundings(rounding.size());
  for (size_t i = 0; i < rounding.size(); ++i) two_roundings[i] = 2 * rounding[i] + 1e-30;
  std::vector<float> generic;
  for (const cpu::KernelTable* kt : tables()) {
    CpuBackend cpu(2, kt);
    auto wc = cpu.pack(wv, WeightRole::kLinear);
    // The output starts as NaN, so an element the kernel never writes fails (a fresh buffer can hold the
    // previous table's answers).
    Tensor xc = make(cpu, {c.T, c.cols}, x), yc = make(cpu, {c.T, c.rows}, std::vector<float>(want.size(), NAN));
    cpu.matmul(xc, *wc, yc);
    const std::vector<float> got = fetch(cpu, yc);
    EXPECT_TRUE(within(got, want, bound)) << describe(c, kt->name);
    if (generic.empty()) generic = got;  // tables() starts with the generic table
    else EXPECT_TRUE(within(got, generic, two_roundings)) << describe(c, kt->name) << " against generic";
  }
}

// The value of the first /proc/cpuinfo line whose key is `key` (trimmed), or "" where there is none.
static std::string cpuinfo_field(const char* key) {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return "";
  char buf[8192];
  std::string out;
  const size_t n = std::strlen(key);
  while (std::fgets(buf, sizeof buf, f)) {
    if (std::strncmp(buf, key, n) == 0 && (buf[n] == ' ' || buf[n] == '\t' || buf[n] == ':')) {
      const char* colon = std::strchr(buf, ':');
      out = colon ? colon + 1 : "";
      while (!out.empty() && (out.front() == ' ' || out.front() == '\t')) out.erase(out.begin());
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      break;
    }
  }
  std::fclose(f);
  return out;
}

// The "flags" line of /proc/cpuinfo with a space on each side, or "" where there is none. Under qemu-user
// /proc/cpuinfo is the host's, so scripts/test-x86-isa.sh passes the emulated CPU's flags in
// G4_TEST_CPU_FLAGS instead.
static std::string cpuinfo_flags() {
  if (const char* e = std::getenv("G4_TEST_CPU_FLAGS")) return " " + std::string(e) + " ";
  const std::string flags = cpuinfo_field("flags");
  return flags.empty() ? "" : " " + flags + " ";
}

// The CPU vendor the AVX-512 table's prefetch choice reads (cpu_is_amd, from CPUID) is the kernel's
// vendor_id in /proc/cpuinfo.
TEST(CpuKernels, VendorIsTheKernelsVendor) {
#if defined(__x86_64__) && defined(__linux__)
  if (std::getenv("G4_TEST_CPU_FLAGS")) GTEST_SKIP() << "an emulated CPU: /proc/cpuinfo is the host's";
  const std::string vendor = cpuinfo_field("vendor_id");
  ASSERT_FALSE(vendor.empty()) << "no vendor_id line in /proc/cpuinfo";
  EXPECT_EQ(cpu::cpu_is_amd(), vendor == "AuthenticAMD") << "vendor_id " << vendor;
#else
  EXPECT_FALSE(cpu::cpu_is_amd());
#endif
}

// Every table the CPU supports is offered (so the tests below run it), and none it does not; the line
// printed lets scripts/test-arm.sh check which tables ran under each emulated CPU.
TEST(CpuKernels, TablesFollowCpuFeatures) {
  std::vector<std::string> names;
  for (const cpu::KernelTable* k : tables()) names.push_back(k->name);
  const auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  std::string line;
  for (const std::string& n : names) line += " " + n;
  std::printf("kernel tables:%s\n", line.c_str());
  // The tables this build compiles (src/backend/CMakeLists.txt) that this CPU cannot run: their tests are
  // skipped here, and the output says so.
#if defined(__x86_64__)
  const std::vector<std::string> built = {"generic", "avx2", "avx512"};
#elif defined(__aarch64__)
  const std::vector<std::string> built = {"generic", "neon", "neon-dot"};
#else
  const std::vector<std::string> built = {"generic"};
#endif
  std::string skipped;
  for (const std::string& n : built)
    if (!has(n.c_str())) skipped += " " + n;
  std::printf("kernel tables skipped (not supported by this CPU):%s\n", skipped.empty() ? " none" : skipped.c_str());
  if (skipped.find("avx512") != std::string::npos)
    std::printf("[ note ] avx512 kernels not run: this CPU lacks AVX-512 VNNI, and no emulator from Debian provides "
                "it (qemu-user implements up to AVX2; Intel SDE is not packaged); run on an AVX-512 machine\n");
  EXPECT_EQ(names.front(), "generic");
  EXPECT_EQ(std::string(cpu::select_kernels().name), names.back());
#if defined(__x86_64__) && defined(__linux__)
  // The kernel's own view of the CPU, independent of the compiler builtins the dispatcher uses.
  const std::string flags = cpuinfo_flags();
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  const auto flag = [&](const char* f) { return flags.find(" " + std::string(f) + " ") != std::string::npos; };
  EXPECT_EQ(has("avx2"), flag("avx2") && flag("fma") && flag("f16c"));
  EXPECT_EQ(has("avx512"), flag("avx512f") && flag("avx512bw") && flag("avx512vl") && flag("avx512_vnni"));
#elif defined(__aarch64__) && defined(__linux__)
  EXPECT_TRUE(has("neon"));
  EXPECT_EQ(has("neon-dot"), (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0);
#endif
}

TEST(CpuMatmul, QuantizedMatchesRefOverAwkwardShapes) {
  std::mt19937 rng(1);
  const int64_t cols_list[] = {32, 96, 256, 544, 800, 1024, 1312};
  const int64_t rows_list[] = {1, 7, 33};
  const int64_t T_list[] = {1, 3, 6};
  int n = 0;
  for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8})
    for (DType sd : {DType::kBF16, DType::kF16, DType::kF32})
      for (bool asym : {false, true})
        for (int64_t cols : cols_list)
          for (int64_t gs : {int64_t(32), int64_t(64), cols}) {
            if (cols % gs != 0 || gs % 32 != 0) continue;
            const int64_t rows = rows_list[size_t(n) % 3], T = T_list[size_t(n / 3) % 3];
            ++n;
            run_quant_case({kind, sd, asym, rows, cols, gs, T}, rng);
          }
  EXPECT_GT(n, 100);
}

TEST(CpuMatmul, QuantizedGemmTilesAndLongRows) {
  std::mt19937 rng(2);
  // Several tokens over the 31B hidden size (5376 columns) and group sizes up to a whole row.
  run_quant_case({QuantKind::kInt4, DType::kBF16, false, 37, 5376, 32, 9}, rng);
  run_quant_case({QuantKind::kInt8, DType::kF16, false, 10, 5376, 5376, 4}, rng);
  run_quant_case({QuantKind::kInt4, DType::kF16, true, 5, 2048, 128, 13}, rng);
  // int4 decode of rows of 12,288+ columns walks two packed tiles at once (AVX-512). 69 rows on the test's
  // 2 threads split into ranges of 12 rows (a pair and a tile) and a last one of 9 (a pair and a row);
  // 13,056 columns end in a half block; both symmetries.
  run_quant_case({QuantKind::kInt4, DType::kBF16, true, 69, 21504, 32, 1}, rng);
  run_quant_case({QuantKind::kInt4, DType::kF16, false, 69, 13056, 64, 1}, rng);
  run_quant_case({QuantKind::kInt8, DType::kBF16, false, 9, 12288, 32, 1}, rng);
}

TEST(CpuMatmul, DecodeTilesEveryFormat) {
  std::mt19937 rng(5);
  // One token through the decode walk (AVX-512 and AVX2: whole tiles at constant offsets, pairs of tiles
  // past 12,288 columns, single rows at the ends) in every scale type and symmetry, int4 and int8; the
  // GGUF Q4_0-like layout (int4 g32 symmetric, f16 scales) first. 544 columns end in a half block; 30 rows
  // on 2 threads leave single rows after the tiles.
  run_quant_case({QuantKind::kInt4, DType::kF16, false, 69, 21504, 32, 1}, rng);
  for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8})
    for (DType sd : {DType::kBF16, DType::kF16, DType::kF32})
      for (bool asym : {false, true}) {
        run_quant_case({kind, sd, asym, 30, 544, 32, 1}, rng);
        run_quant_case({kind, sd, asym, 13, 12800, 64, 1}, rng);
      }
}

TEST(CpuMatmul, SeveralTokensAndChunks) {
  std::mt19937 rng(6);
  // A decode step of several sequences: T tokens through the tile walk (kernel_loops.h), each tile's
  // weights loaded once for all tokens, taken in groups of 4 (AVX-512) or 2 (AVX2, NEON) with the last
  // group smaller: T = 2, 3, 5 and 8 cover whole groups and every remainder on both. 30 rows on 2 threads
  // leave single rows after the tiles; 544 columns end in a half block; the long int4 rows (pairs of tiles
  // for one token) walk single tiles for several tokens.
  for (int64_t T : {2, 3, 5, 8})
    for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8})
      for (bool asym : {false, true}) run_quant_case({kind, DType::kBF16, asym, 30, 544, 32, T}, rng);
  run_quant_case({QuantKind::kInt4, DType::kF16, false, 13, 1312, 32, 7}, rng);
  run_quant_case({QuantKind::kInt8, DType::kF32, true, 13, 1280, 64, 6}, rng);
  run_quant_case({QuantKind::kInt4, DType::kBF16, true, 9, 13056, 32, 4}, rng);
  // Past 64 tokens the walk starts a second chunk of tokens (with a remainder group on every table).
  run_quant_case({QuantKind::kInt4, DType::kBF16, true, 11, 544, 32, 67}, rng);
  run_quant_case({QuantKind::kInt8, DType::kF16, false, 11, 544, 32, 66}, rng);
}

TEST(CpuMatmul, SmallGroupsFallBackToDense) {
  std::mt19937 rng(3);
  const QCase c{QuantKind::kInt4, DType::kBF16, false, 5, 48, 16, 3};
  // The dense fallback computes with dequantized f32 weights and f32 activations: a dense bound applies,
  // which the quantized bound of run_quant_case comfortably contains.
  run_quant_case(c, rng);
}

void run_dense_case(DType dt, int64_t rows, int64_t cols, int64_t T, std::mt19937& rng) {
  std::vector<float> wf = randn(size_t(rows * cols), rng, 0.05f);
  std::vector<uint8_t> raw(size_t(rows * cols) * dtype_size(dt));
  for (size_t i = 0; i < wf.size(); ++i) {
    store_scalar(dt, wf[i], raw.data() + i * dtype_size(dt));
    wf[i] = load_scalar(dt, raw.data() + i * dtype_size(dt));
  }
  const WeightView wv{"dense.weight", dt, {rows, cols}, raw.data(), nullptr};
  const std::vector<float> x = randn(size_t(T * cols), rng);
  RefBackend ref;
  auto wr = ref.pack(wv, WeightRole::kLinear);
  Tensor xr = make(ref, {T, cols}, x), yr = ref.empty({T, rows});
  ref.matmul(xr, *wr, yr);
  const std::vector<float> want = fetch(ref, yr);
  std::vector<double> bound(size_t(T * rows));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double mag = 0;
      for (int64_t k = 0; k < cols; ++k) mag += std::fabs(double(wf[size_t(r * cols + k)]) * x[size_t(t * cols + k)]);
      bound[size_t(t * rows + r)] = (double(cols) / 16 + 16) * kF32Eps * mag + 1e-30;
    }
  for (const cpu::KernelTable* kt : tables()) {
    CpuBackend cpu(2, kt);
    auto wc = cpu.pack(wv, WeightRole::kLinear);
    Tensor xc = make(cpu, {T, cols}, x), yc = cpu.empty({T, rows});
    cpu.matmul(xc, *wc, yc);
    EXPECT_TRUE(within(fetch(cpu, yc), want, bound))
        << kt->name << " " << dtype_name(dt) << " rows=" << rows << " cols=" << cols << " T=" << T;
  }
}

TEST(CpuMatmul, DenseMatchesRef) {
  std::mt19937 rng(4);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16})
    for (int64_t cols : {1, 15, 16, 17, 100, 1000})
      for (int64_t rows : {1, 5, 9})
        for (int64_t T : {1, 4, 7}) run_dense_case(dt, rows, cols, T, rng);
}

}  // namespace
}  // namespace g4::test
