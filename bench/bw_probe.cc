// Read-bandwidth probe: the floor for decode (bytes of weights per token / this number). Each thread
// streams its own slice of a large array with AVX-512 loads into 8 independent accumulators (a scalar
// loop reports far less, being latency-bound). Build: g++ -O2 -mavx512f -pthread bw_probe.cc
// Usage: bw_probe [GiB=2] [threads=2] [reps=10]; prints best and mean GB/s (1 GB = 1e9 bytes).
// The buffer is put on transparent huge pages when the kernel allows, as g4's packed CPU weights are, so
// the probe and the decode it is compared with pay the same TLB costs.
#include <immintrin.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const double gib = argc > 1 ? std::atof(argv[1]) : 2.0;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  const size_t bytes = size_t(gib * 1073741824.0) / 4096 * 4096;
  auto* buf = static_cast<float*>(std::aligned_alloc(4096, bytes));
  madvise(buf, bytes, MADV_HUGEPAGE);  // advisory: ignored where THP is off
  std::memset(buf, 1, bytes);
  const size_t n = bytes / 4, per = n / size_t(threads) / 128 * 128;
  std::vector<float> sink(static_cast<size_t>(threads));
  double best = 0, sum = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const float* p = buf + size_t(t) * per;
        __m512 a[8];
        for (auto& v : a) v = _mm512_setzero_ps();
        for (size_t i = 0; i < per; i += 128)
          for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_load_ps(p + i + 16 * j));
        for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
        sink[size_t(t)] = _mm512_reduce_add_ps(a[0]);
      });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = double(per * size_t(threads) * 4) / s / 1e9;
    best = gbs > best ? gbs : best;
    sum += gbs;
  }
  std::printf("bw_probe: %.2f GiB, %d threads, %d reps: best %.1f GB/s, mean %.1f GB/s (sink %g)\n", gib, threads,
              reps, best, sum / reps, double(sink[0]));
  return 0;
}
