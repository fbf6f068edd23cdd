// GEMV micro-benchmark: the decode GEMV kernel variants (gemv.cu) on every weight shape of Gemma 4 31B,
// int4 g128 / int4 g32 / int8 g128 (bf16 scales, symmetric) and bf16, one token. Weights are random
// (never zeros) and rotated over enough copies to exceed the L2, the launches captured in a CUDA graph
// so launch gaps do not count; prints GB/s of weight bytes (codes + scales) and % of the device-to-device
// copy bandwidth measured in the same run. Each variant's output is checked against the first's.
// "tokens" instead of a format: T = 1..32 tokens on g4's int4 and the Q4_0 layout, the dp4a GEMV in groups of
// up to 8 tokens (what a matmul runs below the tensor-core kernel's threshold) against the tensor-core kernel (gemm_mma.cu)
// in each compiled shape; microseconds a launch and % of the copy bandwidth, x rounding excluded.
// "multi": the integer GEMV of 1-8 tokens in each compiled shape, against one-token launches (multi_sweep).
//   usage: cuda_gemv_bench [reps] [format name, all, tokens or multi] [MB of weight copies per timed graph, default 400]
//          [multi only: one shape, ROWSxCOLS, e.g. 21504x5376 (to profile one launch; any other COLS % 128 == 0)]
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "cuda_bench_util.cuh"

using namespace g4;
using namespace g4::cuda;

namespace {

__global__ void fill_kernel(uint32_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    p[i] = random_bits(i, seed);
  }
}

// bf16 (h false) or f16 (h true) values of either sign with magnitudes in [2^e, 2^(e+1)) from random bits.
__global__ void to_half_range_kernel(uint16_t* p, size_t n, bool h, int e) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = h ? uint16_t((p[i] & 0x83FF) | uint16_t((15 + e) << 10)) : uint16_t((p[i] & 0x807F) | uint16_t((127 + e) << 7));
}

void* dev_random(size_t bytes, uint32_t seed) {
  void* p = nullptr;
  G4_CUDA(cudaMalloc(&p, (bytes + 3) / 4 * 4));
  fill_kernel<<<1024, 256>>>(static_cast<uint32_t*>(p), (bytes + 3) / 4, seed);
  G4_CUDA_LAUNCHED();
  return p;
}

// n activations: random values in [-1, 1), the same for every run.
std::vector<float> random_x(size_t n) {
  std::vector<float> x(n);
  uint32_t st = 7;
  for (auto& v : x) st = st * 1664525u + 1013904223u, v = float(st >> 8) / float(1 << 23) - 1.f;
  return x;
}


struct Format {
  const char* name;
  WFmt fmt;
  int64_t gs;
  SType stype;
  bool asym;  // zero points beside the scales
};


// `copies` random copies of a weight of format f (codes, scales, zero points; never zeros), for rotating
// past the L2. Returns the bytes of one copy; the buffers go to bufs.
size_t make_copies(const Format& f, int64_t rows, int64_t cols, size_t rot_mb, std::vector<WeightDesc>& ws,
                   std::vector<void*>& bufs) {
  WeightDesc d;
  d.fmt = f.fmt, d.rows = rows, d.cols = cols, d.stype = f.stype;
  size_t code_bytes = 0, scale_bytes = 0;
  if (f.fmt == WFmt::kBF16) {
    code_bytes = size_t(rows * cols) * 2;
  } else {
    d.group_size = f.gs;
    code_bytes = size_t(rows * cols) / (f.fmt == WFmt::kInt4 ? 2 : 1);
    scale_bytes = size_t(rows * (cols / f.gs)) * 2;
  }
  const size_t bytes = code_bytes + scale_bytes * (f.asym ? 2 : 1);  // zero points as large as the scales
  const int copies = int(std::max<size_t>(1, (rot_mb << 20) / bytes + 1));
  ws.assign(size_t(copies), d);
  const float s0 = (f.fmt == WFmt::kInt4 ? 4.6f : 74.f) * std::sqrt(float(cols));
  int scale_exp = int(std::floor(std::log2(1.f / s0)));
  for (int c = 0; c < copies; ++c) {
    void* codes = dev_random(code_bytes, 1234u + 77u * uint32_t(c));
    bufs.push_back(codes);
    if (f.fmt == WFmt::kBF16)  // |w| ~ 2^-7
      to_half_range_kernel<<<1024, 256>>>(static_cast<uint16_t*>(codes), code_bytes / 2, false, -7);
    ws[size_t(c)].codes = codes;
    if (scale_bytes) {
      // Scales near 1 / s0 (bf16 or f16 bit patterns); zero points of magnitude 8-16 in the same type.
      void* sc = dev_random(scale_bytes, 999u + uint32_t(c));
      const bool h = f.stype == SType::kF16;
      to_half_range_kernel<<<1024, 256>>>(static_cast<uint16_t*>(sc), scale_bytes / 2, h, scale_exp);
      bufs.push_back(sc);
      ws[size_t(c)].scales = sc;
      if (f.asym) {
        void* z = dev_random(scale_bytes, 4321u + uint32_t(c));
        to_half_range_kernel<<<1024, 256>>>(static_cast<uint16_t*>(z), scale_bytes / 2, h, 3);
        bufs.push_back(z);
        ws[size_t(c)].zeros = z;
      }
    }
  }
  G4_CUDA_LAUNCHED();
  return bytes;
}

// Median time of one launch in a graph of max(copies, 8) launches over the copies.
template <class Launch>
double time_launches(int copies, int reps, cudaStream_t s, Launch launch) {
  const int n_launch = std::max(copies, 8);
  cudaGraph_t g;
  cudaGraphExec_t ge;
  G4_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < n_launch; ++i) launch(i % copies);
  G4_CUDA(cudaStreamEndCapture(s, &g));
  G4_CUDA(cudaGraphInstantiate(&ge, g, 0));
  G4_CUDA(cudaGraphLaunch(ge, s));  // warm-up
  cudaEvent_t e0, e1;
  G4_CUDA(cudaEventCreate(&e0));
  G4_CUDA(cudaEventCreate(&e1));
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) {
    G4_CUDA(cudaEventRecord(e0, s));
    G4_CUDA(cudaGraphLaunch(ge, s));
    G4_CUDA(cudaEventRecord(e1, s));
    G4_CUDA(cudaEventSynchronize(e1));
    float ms = 0;
    G4_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    times.push_back(ms / float(n_launch));
  }
  std::sort(times.begin(), times.end());
  G4_CUDA(cudaGraphExecDestroy(ge));
  G4_CUDA(cudaGraphDestroy(g));
  G4_CUDA(cudaEventDestroy(e0));
  G4_CUDA(cudaEventDestroy(e1));
  return double(times[times.size() / 2]) * 1e-3;
}

// The weights of the several-token sweeps: the 31B's GEMV shapes (q/k/v share a launch: 16,384 rows), on
// g4's int4 and the Q4_0 layout.
const std::vector<std::pair<int64_t, int64_t>> kTokenShapes = {{5376, 8192}, {21504, 5376}, {5376, 21504},
                                                               {16384, 5376}, {262144, 5376}};
const std::vector<Format> kTokenFormats = {{"int4-g32a", WFmt::kInt4, 32, SType::kBF16, true},
                                           {"q4_0", WFmt::kInt4, 32, SType::kF16, false}};

// The tokens sweep (see the top of the file).
void tokens_sweep(int reps, size_t rot_mb, double bw, cudaStream_t s) {
  const std::vector<std::pair<int64_t, int64_t>>& shapes = kTokenShapes;
  const std::vector<Format>& formats = kTokenFormats;
  // {R, KS, U}: {0, 0, 0} is the default for the weight.
  const std::vector<std::array<int, 3>> mma_shapes = {{0, 0, 0}, {1, 4, 2}, {1, 8, 2}, {1, 2, 2},
                                                      {1, 4, 1}, {1, 8, 1}, {2, 2, 2}, {1, 4, 4}};
  std::printf("\n%-10s %-14s %3s %16s", "format", "shape", "T", "dp4a groups");
  for (const auto& m : mma_shapes) {
    if (m[0]) std::printf("     mma %dx%dx%d", m[0], m[1], m[2]);
    else std::printf("     mma default");
  }
  std::printf("   (us a launch, %% of copy bandwidth; mma shapes other than the default only up to 16 tokens)\n");
  for (const Format& f : formats) {
    for (const auto& shape : shapes) {
      const int64_t rows = shape.first, cols = shape.second;
      std::vector<WeightDesc> ws;
      std::vector<void*> bufs;
      const size_t bytes = make_copies(f, rows, cols, rot_mb, ws, bufs);
      const int copies = int(ws.size());
      for (int T : {1, 2, 4, 8, 16, 32}) {
        const std::vector<float> xh = random_x(size_t(T * cols));
        float *x = nullptr, *y = nullptr;
        void *xq = nullptr, *xm = nullptr;
        G4_CUDA(cudaMalloc(&x, xh.size() * 4));
        G4_CUDA(cudaMalloc(&y, size_t(T * rows) * 4));
        G4_CUDA(cudaMalloc(&xq, gemv_q8_x_bytes(ws[0], std::min(T, kGemvQ8MaxT)) * size_t((T + kGemvQ8MaxT - 1) / kGemvQ8MaxT)));
        G4_CUDA(cudaMalloc(&xm, gemm_mma_x_bytes(ws[0], T)));
        G4_CUDA(cudaMemcpy(x, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice));
        const int G = std::min(T, kGemvQ8MaxT), n_grp = (T + G - 1) / G;
        const size_t grp_bytes = gemv_q8_x_bytes(ws[0], G);
        for (int i = 0; i < n_grp; ++i)
          gemv_q8_quantize_x(ws[0], x + int64_t(i) * G * cols, std::min(G, T - i * G), static_cast<char*>(xq) + i * grp_bytes, s);
        gemm_mma_quantize_x(ws[0], x, T, xm, s);
        auto gemv_groups = [&](int c) {
          for (int i = 0; i < n_grp; ++i)
            gemv_q8_quantized(ws[size_t(c)], static_cast<char*>(xq) + i * grp_bytes, std::min(G, T - i * G),
                              y + int64_t(i) * G * rows, s);
        };
        std::vector<float> ref(size_t(T * rows)), got(size_t(T * rows));
        auto fetch = [&](std::vector<float>& out) {
          G4_CUDA(cudaMemcpyAsync(out.data(), y, out.size() * 4, cudaMemcpyDeviceToHost, s));
          G4_CUDA(cudaStreamSynchronize(s));
        };
        G4_CUDA(cudaMemsetAsync(y, 0xFF, size_t(T * rows) * 4, s));
        gemv_groups(0);
        fetch(ref);
        std::printf("%-10s %6lldx%-7lld %3d", f.name, (long long)rows, (long long)cols, T);
        auto report = [&](double per) { std::printf("  %6.1f (%4.1f%%)", per * 1e6, 100.0 * double(bytes) / per / bw); };
        report(time_launches(copies, reps, s, gemv_groups));
        std::string bad;
        for (const auto& sh : mma_shapes) {
          if (sh[0] && T > 16) {
            std::printf("  %15s", "-");
            continue;
          }
          const MmaTuning tu{sh[0], sh[1], sh[2], -1};
          auto mma = [&](int c) { gemm_mma_quantized(ws[size_t(c)], xm, T, y, s, tu); };
          G4_CUDA(cudaMemsetAsync(y, 0xFF, size_t(T * rows) * 4, s));
          mma(0);
          fetch(got);
          // The same per-chunk arithmetic as the GEMV, summed in another order: f32 rounding apart.
          double num = 0, den = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            const double dd = double(got[i]) - double(ref[i]);
            num += dd * dd, den += double(ref[i]) * ref[i];
          }
          if (!(std::sqrt(num / std::max(den, 1e-30)) < 1e-5)) bad += " mma " + std::to_string(sh[0]) + "x" + std::to_string(sh[1]) + "x" + std::to_string(sh[2]);
          report(time_launches(copies, reps, s, mma));
        }
        std::printf("%s\n", bad.empty() ? "" : ("  MISMATCH:" + bad).c_str());
        G4_CUDA(cudaFree(x));
        G4_CUDA(cudaFree(y));
        G4_CUDA(cudaFree(xq));
        G4_CUDA(cudaFree(xm));
      }
      for (void* p : bufs) G4_CUDA(cudaFree(p));
    }
  }
}

// The "multi" sweep: the integer GEMV for 1-8 tokens (a verify, a batch of sequences) in each compiled shape
// for several tokens, against one-token launches: us a launch, % of copy bandwidth, and whether every
// token's outputs equal its one-token launch bit for bit ("=", what the backend requires of a shape: the
// same K split as the one-token shape; "~" otherwise).
void multi_sweep(int reps, size_t rot_mb, double bw, const std::string& only_shape, cudaStream_t s) {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (const auto& sh : kTokenShapes)
    if (only_shape.empty() || only_shape == std::to_string(sh.first) + "x" + std::to_string(sh.second)) shapes.push_back(sh);
  if (shapes.empty() && !only_shape.empty()) {  // any other shape named ROWSxCOLS (COLS a multiple of 128)
    long long r = 0, c = 0;
    char end = 0;
    if (std::sscanf(only_shape.c_str(), "%lldx%lld%c", &r, &c, &end) == 2 && r > 0 && c > 0 && c % 128 == 0)
      shapes.push_back({r, c});
  }
  if (shapes.empty()) throw std::runtime_error("multi: no shape " + only_shape + " (ROWSxCOLS, COLS a multiple of 128)");
  const std::vector<Format>& formats = kTokenFormats;
  // {R, U, KS, pipelined}; the first is the default for the weight.
  const std::vector<std::array<int, 4>> cand = {{0, 0, 0, 0}, {2, 2, 1, 0}, {2, 1, 4, 1}};
  std::printf("\n%-10s %-14s %2s", "format", "shape", "T");
  for (const auto& c : cand) {
    if (c[0]) std::printf("    %dx%dx%d%s", c[0], c[1], c[2], c[3] ? "p" : " ");
    else std::printf("    default");
  }
  std::printf("   (us a launch and %% of copy bandwidth; = equals one-token launches bit for bit)\n");
  for (const Format& f : formats)
    for (const auto& shape : shapes) {
      const int64_t rows = shape.first, cols = shape.second;
      std::vector<WeightDesc> ws;
      std::vector<void*> bufs;
      const size_t bytes = make_copies(f, rows, cols, rot_mb, ws, bufs);
      const int copies = int(ws.size());
      const int T_max = kGemvQ8MaxT;
      const std::vector<float> xh = random_x(size_t(T_max * cols));
      float *x = nullptr, *y = nullptr;
      G4_CUDA(cudaMalloc(&x, xh.size() * 4));
      G4_CUDA(cudaMalloc(&y, size_t(T_max * rows) * 4));
      G4_CUDA(cudaMemcpy(x, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice));
      // One-token results of each token (default shape): the reference.
      std::vector<float> solo(size_t(T_max * rows));
      void* xq1 = nullptr;
      G4_CUDA(cudaMalloc(&xq1, gemv_q8_x_bytes(ws[0], 1)));
      for (int t = 0; t < T_max; ++t) {
        gemv_q8_quantize_x(ws[0], x + int64_t(t) * cols, 1, xq1, s);
        gemv_q8_quantized(ws[0], xq1, 1, y, s);
        G4_CUDA(cudaMemcpyAsync(solo.data() + int64_t(t) * rows, y, size_t(rows) * 4, cudaMemcpyDeviceToHost, s));
      }
      G4_CUDA(cudaStreamSynchronize(s));
      for (int T : {1, 2, 3, 4, 8}) {
        void* xq = nullptr;
        G4_CUDA(cudaMalloc(&xq, gemv_q8_x_bytes(ws[0], T)));
        gemv_q8_quantize_x(ws[0], x, T, xq, s);
        std::printf("%-10s %6lldx%-7lld %2d", f.name, (long long)rows, (long long)cols, T);
        for (const auto& c : cand) {
          const GemvTuning tu{c[0], c[1], c[2], 1, c[3], 0};
          auto run = [&](int i) { gemv_q8_quantized(ws[size_t(i)], xq, T, y, s, tu); };
          std::vector<float> got(size_t(T * rows));
          G4_CUDA(cudaMemsetAsync(y, 0xFF, size_t(T * rows) * 4, s));
          try {
            run(0);
          } catch (const std::exception&) {
            std::printf("  %11s", "-");
            continue;
          }
          G4_CUDA(cudaMemcpyAsync(got.data(), y, got.size() * 4, cudaMemcpyDeviceToHost, s));
          G4_CUDA(cudaStreamSynchronize(s));
          const bool same = std::equal(got.begin(), got.end(), solo.begin(), [](float a, float b) {
            return std::memcmp(&a, &b, 4) == 0;
          });
          const double per = time_launches(copies, reps, s, run);
          std::printf("  %5.1f %3.0f%%%s", per * 1e6, 100.0 * double(bytes) / per / bw, same ? "=" : "~");
        }
        std::printf("\n");
        G4_CUDA(cudaFree(xq));
      }
      G4_CUDA(cudaFree(x));
      G4_CUDA(cudaFree(y));
      G4_CUDA(cudaFree(xq1));
      for (void* p : bufs) G4_CUDA(cudaFree(p));
    }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int reps = argc > 1 ? std::stoi(argv[1]) : 15;
    const std::string only = argc > 2 ? argv[2] : "all";
    const size_t rot_mb = argc > 3 ? size_t(std::stoul(argv[3])) : 400;
    cudaDeviceProp prop;
    G4_CUDA(cudaGetDeviceProperties(&prop, 0));
    const double bw = copy_bandwidth();
    std::printf("device: %s, %d SMs, L2 %d MB; copy bandwidth (read+write) %.0f GB/s\n", prop.name,
                prop.multiProcessorCount, prop.l2CacheSize >> 20, bw / 1e9);
    cudaStream_t s;
    G4_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (only == "tokens") {
      tokens_sweep(reps, rot_mb, bw, s);
      return 0;
    }
    if (only == "multi") {
      multi_sweep(reps, rot_mb, bw, argc > 4 ? argv[4] : "", s);
      return 0;
    }

    const std::vector<std::pair<int64_t, int64_t>> shapes = {{5376, 8192},  {8192, 5376},  {21504, 5376}, {5376, 21504},
                                                             {16384, 5376}, {2048, 5376},  {262144, 5376}};
    // int4-g32a is g4's default recipe (bf16 scales and zero points), q4_0 a Q4_0 GGUF as g4 packs it (f16
    // scales, symmetric).
    const std::vector<Format> formats = {{"int4-g128", WFmt::kInt4, 128, SType::kBF16, false},
                                         {"int4-g32a", WFmt::kInt4, 32, SType::kBF16, true},
                                         {"q4_0", WFmt::kInt4, 32, SType::kF16, false},
                                         {"int8-g128", WFmt::kInt8, 128, SType::kBF16, false},
                                         {"bf16", WFmt::kBF16, 0, SType::kBF16, false}};
    // The f16 kernel of gemv.cu (dp4a = -1: what precise mode runs for int4), then the integer kernel of gemv_q8.cu
    // (x rounded to int8 per 32 values, dp4a) in the shapes compiled for one token: rows a warp x chunks a load
    // round x warps splitting K, "p" pipelined; the x rounding is excluded except in the last one (gemv() as
    // the backend calls it: quantize kernel + GEMV in the default shapes).
    auto q8 = [](int r, int u, int ks, int pipe, int prefetch = 0) { return GemvTuning{r, u, ks, 1, pipe, prefetch}; };
    const std::vector<std::pair<const char*, GemvTuning>> variants = {
        {"f16-2row-2deep", {2, 2, 0, -1}},
        {"dp4a-2x2x1", q8(2, 2, 1, 0)}, {"dp4a-4x2x1", q8(4, 2, 1, 0)}, {"dp4a-4x1x4p", q8(4, 1, 4, 1)},
        {"dp4a+quant", {0, 0, 0, 2}}};

    std::printf("%-10s %-14s", "format", "shape");
    for (auto& v : variants) std::printf(" %16s", v.first);
    std::printf("   (GB/s, %% of copy; the f16 and dp4a kernels exclude their x preparation (permute / int8 rounding, one more kernel), dp4a+quant includes it)\n");
    for (const Format& f : formats) {
      if (only != "all" && only != f.name) continue;
      for (auto [rows, cols] : shapes) {
        std::vector<WeightDesc> ws;
        std::vector<void*> bufs;
        const size_t bytes = make_copies(f, rows, cols, rot_mb, ws, bufs);
        const int copies = int(ws.size());
        const WeightDesc& d = ws[0];
        const std::vector<float> xh = random_x(static_cast<size_t>(cols));
        float *x = nullptr, *y = nullptr;
        void* xp = nullptr;
        G4_CUDA(cudaMalloc(&x, size_t(cols) * 4));
        G4_CUDA(cudaMalloc(&y, size_t(rows) * 4));
        G4_CUDA(cudaMalloc(&xp, gemv_x_bytes(d, 1)));
        void* xq = nullptr;
        G4_CUDA(cudaMalloc(&xq, gemv_x_bytes(d, 1)));
        G4_CUDA(cudaMemcpy(x, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice));
        gemv_permute_x(d, x, 1, xp, s);
        if (gemv_q8_supported(d)) gemv_q8_quantize_x(d, x, 1, xq, s);
        std::printf("%-10s %6lldx%-7lld", f.name, (long long)rows, (long long)cols);
        std::vector<float> ref(static_cast<size_t>(rows)), got(static_cast<size_t>(rows));
        std::string bad;
        for (size_t vi = 0; vi < variants.size(); ++vi) {
          const GemvTuning tu = variants[vi].second;
          const bool q8 = tu.dp4a > 0;
          if (q8 && f.fmt != WFmt::kInt4) {
            std::printf("  %22s", "-");
            continue;
          }
          auto launch = [&](const WeightDesc& wd) {
            if (tu.dp4a == 2) gemv(wd, x, 1, xq, y, s, GemvTuning{0, 0, 0, 1});
            else if (q8) gemv_q8_quantized(wd, xq, 1, y, s, tu);
            else gemv_permuted(wd, xp, 1, y, s, tu);
          };
          // Check against the first variant on copy 0 (poisoned output first).
          G4_CUDA(cudaMemsetAsync(y, 0xFF, size_t(rows) * 4, s));
          launch(ws[0]);
          G4_CUDA(cudaMemcpyAsync(vi == 0 ? ref.data() : got.data(), y, size_t(rows) * 4, cudaMemcpyDeviceToHost, s));
          G4_CUDA(cudaStreamSynchronize(s));
          if (vi > 0) {
            double num = 0, den = 0;
            for (int64_t r = 0; r < rows; ++r) {
              const double dd = double(got[size_t(r)]) - double(ref[size_t(r)]);
              num += dd * dd, den += double(ref[size_t(r)]) * ref[size_t(r)];
            }
            const double rel = std::sqrt(num / std::max(den, 1e-30));
            // The dp4a kernels round x to int8 (about 5e-3 relative, see tests/backend_cuda/cuda_ops_test.cc).
            if (!(rel < (q8 ? 2e-2 : 2e-3))) bad += std::string(" ") + variants[vi].first + " rel " + std::to_string(rel);
          }
          const double per = time_launches(copies, reps, s, [&](int c) { launch(ws[size_t(c)]); });
          std::printf("  %5.0f (%4.1f%%) %5.1fus", double(bytes) / per / 1e9, 100.0 * double(bytes) / per / bw, per * 1e6);
        }
        std::printf("%s\n", bad.empty() ? "" : ("  MISMATCH:" + bad).c_str());
        for (void* p : bufs) G4_CUDA(cudaFree(p));
        G4_CUDA(cudaFree(x));
        G4_CUDA(cudaFree(y));
        G4_CUDA(cudaFree(xp));
        G4_CUDA(cudaFree(xq));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gemv_bench: error: %s\n", e.what());
    return 1;
  }
}
