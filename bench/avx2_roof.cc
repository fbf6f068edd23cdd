// The integer-dot roof of one x86 core with AVX2, for reading the CPU kernels' G MAC/s (cpu_gemm_bench)
// against it: the core clock from a chain of dependent vpaddd (latency 1 cycle), the throughput of
// independent vpmaddubsw ymm (32 u8 x s8 products each), and of vpmaddubsw paired with the vpaddw that the
// int4 tile (kernels_avx2.cc) spends on each of them. The instructions are written out (inline assembly)
// so that the compiler can neither drop nor reorder them. Run it on a quiet machine; three rounds.
//   usage: avx2_roof [iterations = 200000000]
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

double seconds(void (*f)(long), long n) {
  f(n / 10);  // warm-up (clock ramp)
  const auto t0 = std::chrono::steady_clock::now();
  f(n);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#define G4_R8(ins) ins ins ins ins ins ins ins ins

// 8 dependent vpaddd an iteration: 8 cycles.
__attribute__((target("avx2"))) void chain_add(long n) {
  asm volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n"
               "1:\n" G4_R8("vpaddd %%ymm0, %%ymm0, %%ymm0\n")
               "dec %0\n jnz 1b\n"
               : "+r"(n)::"xmm0", "cc");
}

// 8 independent vpmaddubsw an iteration.
__attribute__((target("avx2"))) void maddubs(long n) {
  asm volatile(
      "vpxor %%ymm8, %%ymm8, %%ymm8\n vpxor %%ymm9, %%ymm9, %%ymm9\n"
      "1:\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm0\n vpmaddubsw %%ymm8, %%ymm9, %%ymm1\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm2\n vpmaddubsw %%ymm8, %%ymm9, %%ymm3\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm4\n vpmaddubsw %%ymm8, %%ymm9, %%ymm5\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm6\n vpmaddubsw %%ymm8, %%ymm9, %%ymm7\n"
      "dec %0\n jnz 1b\n"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "cc");
}

// 8 vpmaddubsw and 8 vpaddw an iteration, as the int4 tile issues them: p += m1 + m2 into 4 sums.
__attribute__((target("avx2"))) void maddubs_add(long n) {
  asm volatile(
      "vpxor %%ymm8, %%ymm8, %%ymm8\n vpxor %%ymm9, %%ymm9, %%ymm9\n vpxor %%ymm10, %%ymm10, %%ymm10\n"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n vpxor %%ymm12, %%ymm12, %%ymm12\n vpxor %%ymm13, %%ymm13, %%ymm13\n"
      "1:\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm0\n vpmaddubsw %%ymm8, %%ymm9, %%ymm1\n"
      "vpaddw %%ymm0, %%ymm1, %%ymm0\n vpaddw %%ymm0, %%ymm10, %%ymm10\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm2\n vpmaddubsw %%ymm8, %%ymm9, %%ymm3\n"
      "vpaddw %%ymm2, %%ymm3, %%ymm2\n vpaddw %%ymm2, %%ymm11, %%ymm11\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm4\n vpmaddubsw %%ymm8, %%ymm9, %%ymm5\n"
      "vpaddw %%ymm4, %%ymm5, %%ymm4\n vpaddw %%ymm4, %%ymm12, %%ymm12\n"
      "vpmaddubsw %%ymm8, %%ymm9, %%ymm6\n vpmaddubsw %%ymm8, %%ymm9, %%ymm7\n"
      "vpaddw %%ymm6, %%ymm7, %%ymm6\n vpaddw %%ymm6, %%ymm13, %%ymm13\n"
      "dec %0\n jnz 1b\n"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "cc");
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx2")) {
    std::fprintf(stderr, "avx2_roof: this CPU has no AVX2\n");
    return 1;
  }
  const long n = argc > 1 ? std::atol(argv[1]) : 200000000;
  if (n < 10) {
    std::fprintf(stderr, "avx2_roof: iterations must be at least 10\n");
    return 1;
  }
  for (int r = 0; r < 3; ++r) {
    const double hz = 8.0 * double(n) / seconds(chain_add, n);
    const double m = 8.0 * double(n) / seconds(maddubs, n) / hz;
    const double ma = 8.0 * double(n) / seconds(maddubs_add, n) / hz;
    std::printf("core clock %.2f GHz; vpmaddubsw ymm: %.2f a cycle = %.1f int MAC a cycle = %.1f G MAC/s; "
                "with its vpaddw: %.2f a cycle = %.1f G MAC/s\n",
                hz / 1e9, m, 32 * m, 32 * m * hz / 1e9, ma, 32 * ma * hz / 1e9);
  }
  return 0;
}
