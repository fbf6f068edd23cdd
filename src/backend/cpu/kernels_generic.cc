// Portable C++ kernels over the packed layouts: the fallback on any CPU, and the readable statement of
// what the SIMD versions compute (integer group dots, one float scale per 32-element group).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/attn_blocks.h"
#include "backend/cpu/kernels.h"
#include "base/error.h"

#if defined(G4_HAVE_NEON_KERNELS) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(G4_HAVE_X86_KERNELS)
#include <cpuid.h>
#endif

namespace g4::cpu {

namespace {

void quantize_row_generic(const float* x, int64_t cols, QAct& a, int64_t t) {
  int8_t* q = reinterpret_cast<int8_t*>(a.qa.data()) + t * a.cols_p;
  float* sa = a.sa.data() + t * a.groups;
  float* asum = a.asum.data() + t * a.groups;
  for (int64_t g = 0; g < a.groups; ++g) {
    float amax = 0;
    for (int64_t k = g * 32; k < std::min<int64_t>(cols, g * 32 + 32); ++k) amax = std::max(amax, std::fabs(x[k]));
    const float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int64_t k = g * 32; k < g * 32 + 32; ++k) {
      const int v = k < cols ? int(std::nearbyint(x[k] * inv)) : 0;
      q[element_pos(k, a.cols_p)] = int8_t(v);
      sum += v;
    }
    sa[g] = s;
    asum[g] = s * float(sum);
  }
}

void qgemm_generic(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const bool int4 = w.kind == QuantKind::kInt4;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t = 0; t < a.T; ++t) {
      const int8_t* qa = a.row(t);
      const float* sa = a.sa.data() + t * a.groups;
      const float* asum = a.asum.data() + t * a.groups;
      float acc = 0, accz = 0;
      for (int64_t g = 0; g < w.groups; ++g) {
        int dot = 0;
        for (int64_t k = g * 32; k < g * 32 + 32; ++k) {
          bool high;
          const uint8_t b = *w.code_at(r, k, &high);
          const int u = int4 ? (high ? (b >> 4) : (b & 15)) : b;
          dot += u * int(qa[element_pos(k, a.cols_p)]);
        }
        const float s = scale_at(w, r, g);
        acc += s * sa[g] * float(dot);
        accz += s * zero_at(w, r, g) * asum[g];
      }
      y[t * ldy + r] = acc - accz;
    }
  }
}

void dgemm_generic(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    dense_row_f32(w, r, row.data());
    for (int64_t t = 0; t < T; ++t) {
      const float* xr = x + t * w.cols;
      float acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += row[size_t(k)] * xr[k];
      y[t * ldy + r] = acc;
    }
  }
}

float dot_generic(const float* a, const float* b, int64_t n) {
  float acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void axpy_generic(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

void gelu_mul_generic(const float* g, const float* up, float* out, int64_t n) {
  const float k = float(std::sqrt(2.0 / M_PI));
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    out[i] = 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x))) * up[i];
  }
}

void softcap_generic(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// One float as attn_blocks.h's vector: the generic table's block attention, a multiply and an add as
// dot_generic and axpy_generic do them.
struct ScalarVec {
  using Vec = float;
  static constexpr int64_t kWidth = 1;
  static Vec zero() { return 0.0f; }
  static Vec load_x(const float* p) { return *p; }
  static Vec fma(Vec a, Vec b, Vec acc) { return acc + a * b; }
  static float hsum(Vec v) { return v; }
  static Vec set(float v) { return v; }
  static void store(float* p, Vec v) { *p = v; }
};

void attn_scores_generic(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n, float* out,
                         int64_t ldo) {
  attn_scores_blocks<ScalarVec, 4, 4>(q, nq, k, nk, n, out, ldo);
}
void attn_values_generic(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                         float* const* o) {
  attn_values_blocks<ScalarVec, 4, 4>(s, lds, nq, v, nk, n, o);
}

}  // namespace

const KernelTable& generic_kernels() {
  static const KernelTable t{"generic", quantize_row_generic, qgemm_generic, dgemm_generic, dot_generic, axpy_generic,
                             gelu_mul_generic, softcap_generic, attn_scores_generic, attn_values_generic};
  return t;
}

#if defined(G4_HAVE_X86_KERNELS)
const KernelTable* avx512_table();  // kernels_avx512.cc, compiled for AVX-512: call only after this check
const KernelTable* avx2_table();    // kernels_avx2.cc, compiled for AVX2 + FMA + F16C: likewise
const KernelTable* avx512_kernels() {
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return ok ? avx512_table() : nullptr;
}
const KernelTable* avx2_kernels() {
  __builtin_cpu_init();
  // clang 14 does not know "f16c" as a __builtin_cpu_supports feature, so that bit is read from CPUID leaf 1
  // (ECX bit 29); AVX2 and FMA checks also cover the OS saving the YMM registers.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  return ok ? avx2_table() : nullptr;
}
#else
const KernelTable* avx512_kernels() { return nullptr; }
const KernelTable* avx2_kernels() { return nullptr; }
#endif

#if defined(G4_HAVE_NEON_KERNELS)
const KernelTable* neon_table();      // kernels_neon.cc: baseline AArch64, always runnable there
const KernelTable* neon_dot_table();  // kernels_neon_dot.cc, compiled with +dotprod: only after this check
const KernelTable* neon_kernels() { return neon_table(); }
const KernelTable* neon_dot_kernels() {
#if defined(__APPLE__)
  return neon_dot_table();  // every Apple Silicon CPU (M1 and later) has the dot-product instructions
#elif defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? neon_dot_table() : nullptr;
#else
  return nullptr;
#endif
}
#else
const KernelTable* neon_kernels() { return nullptr; }
const KernelTable* neon_dot_kernels() { return nullptr; }
#endif

std::vector<const KernelTable*> available_kernels() {
  // Ordered from slowest to fastest: select_kernels() takes the last.
  std::vector<const KernelTable*> v{&generic_kernels()};
  for (const KernelTable* k : {avx2_kernels(), avx512_kernels(), neon_kernels(), neon_dot_kernels()})
    if (k) v.push_back(k);
  return v;
}

int64_t prefetch_ahead_override() {
  static const int64_t v = [] {
    const char* e = std::getenv("G4_CPU_PREFETCH");
    if (!e || !*e) return int64_t(-1);
    char* end = nullptr;
    const long long n = std::strtoll(e, &end, 10);
    if (*end || n < 0 || n > (int64_t(1) << 20))
      throw Error(std::string("G4_CPU_PREFETCH=") + e + ": expected bytes ahead, 0 .. 1048576");
    return int64_t(n);
  }();
  return v;
}

bool cpu_is_amd() {
#if defined(G4_HAVE_X86_KERNELS)
  static const bool amd = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    char v[13];
    std::memcpy(v, &ebx, 4), std::memcpy(v + 4, &edx, 4), std::memcpy(v + 8, &ecx, 4);
    v[12] = 0;
    return std::strcmp(v, "AuthenticAMD") == 0;
  }();
  return amd;
#else
  return false;
#endif
}

const KernelTable& select_kernels() {
  const char* env = std::getenv("G4_CPU_ISA");
  if (env && *env) {
    for (const KernelTable* k : available_kernels())
      if (std::strcmp(k->name, env) == 0) return *k;
    throw Error(std::string("G4_CPU_ISA=") + env + " is not available on this CPU (try generic)");
  }
  const std::vector<const KernelTable*> v = available_kernels();
  return *v.back();
}

}  // namespace g4::cpu
