// What the CUDA micro-benchmarks share: random bits for their inputs and the copy bandwidth they set their
// kernels' bytes against.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"

// 32 random bits for element i under seed (a multiply-xorshift hash: the same data every run).
__device__ __forceinline__ uint32_t random_bits(size_t i, uint32_t seed) {
  uint32_t h = uint32_t(i) * 2654435761u ^ seed;
  h ^= h >> 15, h *= 0x2c1b3c6du, h ^= h >> 12, h *= 0x297a2d39u, h ^= h >> 15;
  return h;
}

// The device-to-device copy bandwidth: bytes read + written per second, 2 GiB copied ten times.
inline double copy_bandwidth() {
  const size_t n = size_t(1) << 31;
  void *a = nullptr, *b = nullptr;
  G4_CUDA(cudaMalloc(&a, n));
  G4_CUDA(cudaMalloc(&b, n));
  G4_CUDA(cudaMemset(a, 1, n));
  cudaEvent_t e0, e1;
  G4_CUDA(cudaEventCreate(&e0));
  G4_CUDA(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) G4_CUDA(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
  G4_CUDA(cudaEventRecord(e0));
  for (int i = 0; i < 10; ++i) G4_CUDA(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice));
  G4_CUDA(cudaEventRecord(e1));
  G4_CUDA(cudaEventSynchronize(e1));
  float ms = 0;
  G4_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  G4_CUDA(cudaFree(a));
  G4_CUDA(cudaFree(b));
  return 2.0 * double(n) * 10 / (double(ms) * 1e-3);
}

// Milliseconds that `replays` launches of a graph take on stream s, after one warm-up launch.
inline float graph_ms(cudaGraphExec_t g, cudaStream_t s, int replays) {
  cudaEvent_t e0, e1;
  G4_CUDA(cudaEventCreate(&e0));
  G4_CUDA(cudaEventCreate(&e1));
  G4_CUDA(cudaGraphLaunch(g, s));
  G4_CUDA(cudaEventRecord(e0, s));
  for (int r = 0; r < replays; ++r) G4_CUDA(cudaGraphLaunch(g, s));
  G4_CUDA(cudaEventRecord(e1, s));
  G4_CUDA(cudaEventSynchronize(e1));
  float ms = 0;
  G4_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  G4_CUDA(cudaEventDestroy(e0));
  G4_CUDA(cudaEventDestroy(e1));
  return ms;
}
