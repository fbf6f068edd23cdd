// Quantized matmul throughput of each CPU kernel table this machine runs (the integer kernels alone,
// one thread, no pool): rows x cols int4/int8 g32 weights against T tokens, best of R repetitions, in
// GB/s of packed weights streamed (the decode view) and G int-MAC/s (the prefill view).
// Usage: cpu_gemm_bench [rows=5376] [cols=5376] [reps=5]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cpu/kernels.h"

using namespace g4;

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 5376, cols = argc > 2 ? std::atoll(argv[2]) : 5376;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  std::mt19937 rng(1);
  for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8}) {
    const bool i4 = kind == QuantKind::kInt4;
    std::vector<uint8_t> codes(size_t(i4 ? rows * cols / 2 : rows * cols));
    for (uint8_t& b : codes) b = uint8_t(rng());
    std::vector<uint16_t> scales(size_t(rows * cols / 32), f32_to_bf16(0.01f)), zeros(scales.size(), f32_to_bf16(7.5f));
    QuantWeight q;
    q.kind = kind;
    q.rows = rows;
    q.cols = cols;
    q.group_size = 32;
    q.codes = codes.data();
    q.scale_dtype = DType::kBF16;
    q.scales = scales.data();
    q.zeros = i4 ? zeros.data() : nullptr;  // int4 asymmetric (the g4 default), int8 symmetric
    cpu::QPacked w;
    cpu::pack_quant(q, "bench", w);
    const double bytes = double(w.data.size);
    for (int64_t T : {1, 16, 64}) {
      std::normal_distribution<float> nd;
      std::vector<float> x(size_t(T * cols));
      for (float& v : x) v = nd(rng);
      std::vector<float> y(size_t(T * rows));
      for (const cpu::KernelTable* k : cpu::available_kernels()) {
        if (std::string(k->name) == "generic" && T > 1) continue;  // minutes per call
        cpu::QAct a;
        a.resize(T, w.cols_p);
        for (int64_t t = 0; t < T; ++t) k->quantize_row(x.data() + t * cols, cols, a, t);
        double best = 1e30;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          k->qgemm(w, a, y.data(), rows, 0, rows);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("%-5s %-9s T=%-3lld %8.2f ms  %6.2f GB/s weights  %7.1f G MAC/s\n", i4 ? "int4" : "int8", k->name,
                    (long long)T, best * 1e3, bytes / best / 1e9, double(rows) * double(cols) * double(T) / best / 1e9);
      }
    }
  }
}
