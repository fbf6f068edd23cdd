// Read-bandwidth probe: the floor for decode (bytes of weights per token / this number). Each thread
// streams its own slice of a large array with the widest vector loads the CPU has (AVX-512, AVX2 or NEON)
// into 8 independent accumulators (a scalar loop reports far less, being latency-bound).
// Build: g++ -O2 -pthread bw_probe.cc (each x86 loop carries its own target attribute, picked at run time).
// Usage: bw_probe [GiB=2] [threads=2] [reps=10] [isa=auto|avx512|avx2|neon]; prints the ISA used and the
// best and mean GB/s (1 GB = 1e9 bytes). isa forces one loop (an error if this CPU cannot run it), so the
// AVX2 loop can be timed on an AVX-512 machine too.
// The buffer is put on transparent huge pages when the kernel allows, as g4's packed CPU weights are, so
// the probe and the decode it is compared with pay the same TLB costs.
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Each sums n floats (n a multiple of 128, p 64-byte aligned) into one float, so the loads cannot be elided.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
  __m512 a[8];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 128)
    for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_load_ps(p + i + 16 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  alignas(64) float t[16];  // (_mm512_reduce_add_ps warns under a target attribute with GCC 12)
  _mm512_store_ps(t, a[0]);
  float s = 0;
  for (float v : t) s += v;
  return s;
}

// 8 ymm accumulators, two 64-byte lines per iteration as the AVX-512 loop reads.
__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (size_t i = 0; i < n; i += 64)
    for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(p + i + 8 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
  alignas(32) float t[8];
  _mm256_store_ps(t, a[0]);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#elif defined(__aarch64__)
float sum_neon(const float* p, size_t n) {
  float32x4_t a[8];
  for (auto& v : a) v = vdupq_n_f32(0);
  for (size_t i = 0; i < n; i += 32)
    for (int j = 0; j < 8; ++j) a[j] = vaddq_f32(a[j], vld1q_f32(p + i + 4 * j));
  for (int j = 1; j < 8; ++j) a[0] = vaddq_f32(a[0], a[j]);
  return vaddvq_f32(a[0]);
}
#endif

using SumFn = float (*)(const float*, size_t);

// The loop for `isa` ("auto": the widest this CPU runs), or nullptr with *why set.
SumFn pick(const std::string& isa, std::string* name, std::string* why) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f"), has2 = __builtin_cpu_supports("avx2");
  if (isa == "avx512" || (isa == "auto" && has512)) {
    if (!has512) return *why = "this CPU has no AVX-512F", nullptr;
    return *name = "avx512", sum_avx512;
  }
  if (isa == "avx2" || (isa == "auto" && has2)) {
    if (!has2) return *why = "this CPU has no AVX2", nullptr;
    return *name = "avx2", sum_avx2;
  }
  *why = isa == "auto" ? "this CPU has neither AVX-512F nor AVX2" : "isa '" + isa + "' is not avx512 or avx2 on x86-64";
  return nullptr;
#elif defined(__aarch64__)
  if (isa == "auto" || isa == "neon") return *name = "neon", sum_neon;
  *why = "isa '" + isa + "' is not neon on AArch64";
  return nullptr;
#else
  *why = "no vector loop for this architecture";
  return nullptr;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const double gib = argc > 1 ? std::atof(argv[1]) : 2.0;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  const std::string isa = argc > 4 ? argv[4] : "auto";
  if (!(gib > 0) || threads < 1 || reps < 1) {
    std::fprintf(stderr, "bw_probe: error: usage: bw_probe [GiB>0] [threads>=1] [reps>=1] [isa=auto|avx512|avx2|neon]\n");
    return 1;
  }
  std::string name, why;
  const SumFn sum = pick(isa, &name, &why);
  if (!sum) {
    std::fprintf(stderr, "bw_probe: error: %s\n", why.c_str());
    return 1;
  }
  const size_t bytes = size_t(gib * 1073741824.0) / 4096 * 4096;
  auto* buf = static_cast<float*>(std::aligned_alloc(4096, bytes));
  if (!buf) {
    std::fprintf(stderr, "bw_probe: error: cannot allocate %.2f GiB\n", gib);
    return 1;
  }
  madvise(buf, bytes, MADV_HUGEPAGE);  // advisory: ignored where THP is off
  std::memset(buf, 1, bytes);
  const size_t n = bytes / 4, per = n / size_t(threads) / 128 * 128;
  std::vector<float> sink(static_cast<size_t>(threads));
  double best = 0, total = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) ts.emplace_back([&, t] { sink[size_t(t)] = sum(buf + size_t(t) * per, per); });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = double(per * size_t(threads) * 4) / s / 1e9;
    best = gbs > best ? gbs : best;
    total += gbs;
  }
  std::printf("bw_probe: %s loads, %.2f GiB, %d threads, %d reps: best %.1f GB/s, mean %.1f GB/s (sink %g)\n",
              name.c_str(), gib, threads, reps, best, total / reps, double(sink[0]));
  std::free(buf);
  return 0;
}
