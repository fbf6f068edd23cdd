// Quantized matmul throughput of each CPU kernel table this machine runs (the integer kernels alone,
// one thread, no pool): rows x cols int4/int8 g32 weights against T tokens, best of R repetitions, in
// GB/s of packed weights streamed (the decode view) and G int-MAC/s (the prefill view).
// Usage: cpu_gemm_bench [rows=5376] [cols=5376] [reps=5] [formats=int4,int8] [isa=all] [T=1,16,64]
//   formats: int4 (g32 asymmetric, bf16 scales: g4's default), int4sym (g32 symmetric, f16 scales: GGUF
//   Q4_0's 4.5 bits per weight), int8 (g32 symmetric, bf16 scales); isa: one kernel table's name, or all.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"

using namespace g4;

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 5376, cols = argc > 2 ? std::atoll(argv[2]) : 5376;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  const auto list = [](const char* s) {
    std::vector<std::string> v;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');) v.push_back(x);
    return v;
  };
  const std::vector<std::string> formats = list(argc > 4 ? argv[4] : "int4,int8");
  const std::string isa = argc > 5 ? argv[5] : "all";
  std::vector<int64_t> Ts;
  for (const std::string& t : list(argc > 6 ? argv[6] : "1,16,64")) Ts.push_back(std::atoll(t.c_str()));
  if (rows < 1 || cols < 32 || cols % 32 != 0 || reps < 1) {
    std::fprintf(stderr, "cpu_gemm_bench: error: rows >= 1, cols a multiple of 32, reps >= 1\n");
    return 1;
  }
  bool isa_found = isa == "all";
  for (const cpu::KernelTable* k : cpu::available_kernels()) isa_found |= isa == k->name;
  if (!isa_found) {
    std::fprintf(stderr, "cpu_gemm_bench: error: kernel table '%s' is not available on this CPU\n", isa.c_str());
    return 1;
  }
  std::mt19937 rng(1);
  for (const std::string& fmt : formats) {
    if (fmt != "int4" && fmt != "int4sym" && fmt != "int8") {
      std::fprintf(stderr, "cpu_gemm_bench: error: format '%s' is not int4, int4sym or int8\n", fmt.c_str());
      return 1;
    }
    const QuantKind kind = fmt == "int8" ? QuantKind::kInt8 : QuantKind::kInt4;
    const bool i4 = kind == QuantKind::kInt4, sym_f16 = fmt == "int4sym";
    std::vector<uint8_t> codes(size_t(i4 ? rows * cols / 2 : rows * cols));
    for (uint8_t& b : codes) b = uint8_t(rng());
    std::vector<uint16_t> scales(size_t(rows * cols / 32), sym_f16 ? f32_to_f16(0.01f) : f32_to_bf16(0.01f)),
        zeros(scales.size(), f32_to_bf16(7.5f));
    QuantWeight q;
    q.kind = kind;
    q.rows = rows;
    q.cols = cols;
    q.group_size = 32;
    q.codes = codes.data();
    q.scale_dtype = sym_f16 ? DType::kF16 : DType::kBF16;
    q.scales = scales.data();
    q.zeros = i4 && !sym_f16 ? zeros.data() : nullptr;
    cpu::QPacked w;
    cpu::pack_quant(q, "bench", w);
    const double bytes = double(w.data.size);
    for (int64_t T : Ts) {
      std::normal_distribution<float> nd;
      std::vector<float> x(size_t(T * cols));
      for (float& v : x) v = nd(rng);
      std::vector<float> y(size_t(T * rows));
      for (const cpu::KernelTable* k : cpu::available_kernels()) {
        if (isa != "all" && isa != k->name) continue;
        if (isa == "all" && std::string(k->name) == "generic" && T > 1) continue;  // minutes per call
        cpu::QAct a;
        a.resize(T, w.cols_p);
        for (int64_t t = 0; t < T; ++t) k->quantize_row(x.data() + t * cols, cols, a, t);
        double best = 1e30;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          k->qgemm(w, a, y.data(), rows, 0, rows);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("%-7s %-9s T=%-3lld %8.2f ms  %6.2f GB/s weights  %7.1f G MAC/s\n", fmt.c_str(), k->name,
                    (long long)T, best * 1e3, bytes / best / 1e9, double(rows) * double(cols) * double(T) / best / 1e9);
      }
    }
  }
}
