// Decode attention micro-benchmark: attn_decode (the split kernel and the merge of its splits, attention.cu)
// alone on Gemma 4 31B's two layer shapes, a bf16 cache of random values at several depths, one query row
// (a decode step) or four (a verify). The launches are captured in a CUDA graph, rotated over enough layer
// copies to exceed the L2 (as a step's 60 layers do), so that launch gaps and L2 hits do not flatter it.
// Prints microseconds a layer and the K/V bytes a layer reads over that time, against the device-to-device
// copy bandwidth of the same run. Environment switches of attention.cu (G4_CUDA_ATTN_*) apply; so does
// G4_CUDA_KNOCKOUT=combine (the split kernel alone); G4_ATTN_BENCH_MB sets the footprint the copies exceed.
// "full-derived": the full layer storing V only, its keys derived in the kernel (K = RoPE(V * kw), 64 rotated
// pairs as the 31B's partial RoPE), V's bytes counted.
//   usage: cuda_attn_bench [reps, default 20] [depths, default 512,4096,16384,65536]
//          [sliding|full|full-derived, default sliding and full]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "cuda_bench_util.cuh"

using namespace g4;
using namespace g4::cuda;

namespace {

__global__ void fill_bf16_kernel(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    p[i] = __float2bfloat16(float(random_bits(i, seed) & 0xFFFF) / 32768.f - 1.f);
  }
}

__global__ void fill_f32_kernel(float* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    p[i] = float(random_bits(i, seed) & 0xFFFF) / 65536.f - 0.5f;
  }
}

template <class T>
T* dev_alloc(size_t n) {
  void* p = nullptr;
  G4_CUDA(cudaMalloc(&p, n * sizeof(T)));
  return static_cast<T*>(p);
}

struct Shape {
  const char* name;
  int64_t Hkv, D, window;
  bool derived = false;  // V only; keys derived from it (AttnArgs::kw)
};

// One layer copy: its cache (K and V, bf16) and its new rows; the query and output are shared.
struct Copy {
  __nv_bfloat16 *ck, *cv;
  float *k, *v;
};

// Microseconds a layer: `copies` layers cycled, graph of `launches` attention calls, replayed reps times.
double time_layer(const Shape& sh, int64_t depth, int64_t T, int reps, int n_sm, double* kv_bytes) {
  const int64_t Hq = 32, D = sh.D, Hkv = sh.Hkv;
  const bool ring = sh.window > 0;
  const int64_t capacity = ring ? sh.window + 256 : depth + 64;
  const int64_t row = Hkv * D;
  const int tensors = sh.derived ? 1 : 2;  // cached K and V, or V alone
  const size_t cache_bytes = size_t(capacity) * row * tensors * sizeof(__nv_bfloat16);
  // G4_ATTN_BENCH_MB: the layer copies' footprint to exceed (default 600 MB, past the L2); a step's weights and
  // cache span ~22 GB at depth 65,536, so a larger footprint shows what address translation costs.
  const char* mb = std::getenv("G4_ATTN_BENCH_MB");
  const size_t footprint = size_t(std::max(600, mb ? std::atoi(mb) : 600));
  const int copies = int(std::max<size_t>(2, std::min<size_t>(256, (footprint << 20) / cache_bytes + 1)));
  std::vector<Copy> cp(copies);
  for (int c = 0; c < copies; ++c) {
    cp[c].ck = sh.derived ? nullptr : dev_alloc<__nv_bfloat16>(size_t(capacity) * row);
    cp[c].cv = dev_alloc<__nv_bfloat16>(size_t(capacity) * row);
    cp[c].k = dev_alloc<float>(size_t(T) * row);
    cp[c].v = dev_alloc<float>(size_t(T) * row);
    if (cp[c].ck) fill_bf16_kernel<<<1024, 256>>>(cp[c].ck, size_t(capacity) * row, 11u + c);
    fill_bf16_kernel<<<1024, 256>>>(cp[c].cv, size_t(capacity) * row, 1011u + c);
    fill_f32_kernel<<<256, 256>>>(cp[c].k, size_t(T) * row, 7u + c);
    fill_f32_kernel<<<256, 256>>>(cp[c].v, size_t(T) * row, 77u + c);
  }
  float* q = dev_alloc<float>(size_t(T) * Hq * D);
  float* out = dev_alloc<float>(size_t(T) * Hq * D);
  fill_f32_kernel<<<256, 256>>>(q, size_t(T) * Hq * D, 5u);
  G4_CUDA_LAUNCHED();

  AttnArgs a{};
  a.q = q, a.T = T, a.Hq = Hq, a.Hkv = Hkv, a.D = D, a.capacity = capacity, a.ring = ring;
  a.window = int(sh.window), a.out = out, a.cache_bf16 = true;
  float *kw = nullptr, *rope_cs = nullptr;
  if (sh.derived) {  // a k_norm weight near 1 and a {cos, sin} table of the right shape (values in [-0.5, 0.5])
    const int pairs = 64;
    kw = dev_alloc<float>(size_t(D));
    rope_cs = dev_alloc<float>(size_t(capacity) * pairs * 2);
    fill_f32_kernel<<<16, 256>>>(kw, size_t(D), 3u);
    fill_f32_kernel<<<1024, 256>>>(rope_cs, size_t(capacity) * pairs * 2, 4u);
    G4_CUDA_LAUNCHED();
    a.kw = kw, a.rope_cs = rope_cs, a.pairs = pairs;
  }
  a.seqs.n = 1;
  a.seqs.e[0].p0 = depth, a.seqs.e[0].row0 = 0, a.seqs.e[0].n = int32_t(T);
  void* scratch = nullptr;
  G4_CUDA(cudaMalloc(&scratch, attn_decode_scratch_bytes(a, n_sm)));

  cudaStream_t s;
  G4_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int launches = std::max(copies, 60);
  cudaGraph_t g;
  G4_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < launches; ++i) {
    const Copy& c = cp[i % copies];
    a.k = c.k, a.v = c.v, a.seqs.e[0].ck = c.ck, a.seqs.e[0].cv = c.cv;
    attn_decode(a, scratch, n_sm, s);
  }
  G4_CUDA(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t ge;
  G4_CUDA(cudaGraphInstantiate(&ge, g, 0));
  const float ms = graph_ms(ge, s, reps);
  const int64_t visible = ring ? std::min<int64_t>(sh.window, depth + T) : depth + T;
  *kv_bytes = double(visible) * double(row) * 2 * tensors;  // K and V (or V), bf16 (the new rows are noise)

  cudaGraphExecDestroy(ge), cudaGraphDestroy(g), cudaStreamDestroy(s);
  for (auto& c : cp) cudaFree(c.ck), cudaFree(c.cv), cudaFree(c.k), cudaFree(c.v);
  cudaFree(q), cudaFree(out), cudaFree(scratch), cudaFree(kw), cudaFree(rope_cs);
  return double(ms) * 1e3 / (double(reps) * launches);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
    std::vector<int64_t> depths;
    std::stringstream ds(argc > 2 ? argv[2] : "512,4096,16384,65536");
    for (std::string t; std::getline(ds, t, ',');) depths.push_back(std::stoll(t));
    int dev = 0, n_sm = 0;
    G4_CUDA(cudaGetDevice(&dev));
    G4_CUDA(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    const double bw = copy_bandwidth() / 1e9;
    std::printf("copy bandwidth %.0f GB/s, %d SMs\n", bw, n_sm);
    const Shape shapes[] = {{"sliding", 16, 256, 1024}, {"full", 4, 512, 0}, {"full-derived", 4, 512, 0, true}};
    std::printf("%-12s %7s %2s | %9s %9s %6s\n", "layer", "depth", "T", "us/layer", "GB/s", "%copy");
    const std::string only = argc > 3 ? argv[3] : "";
    for (const Shape& sh : shapes) {
      if (only.empty() ? sh.derived : only != sh.name) continue;
      for (int64_t depth : depths)
        for (int64_t T : {1, 4}) {
          double bytes = 0;
          const double us = time_layer(sh, depth, T, reps, n_sm, &bytes);
          const double gbs = bytes / (us * 1e-6) / 1e9;
          std::printf("%-12s %7lld %2lld | %9.2f %9.0f %5.1f%%\n", sh.name, (long long)depth, (long long)T, us, gbs,
                      100.0 * gbs / bw);
        }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_attn_bench: %s\n", e.what());
    return 1;
  }
}
