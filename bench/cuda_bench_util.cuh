// The device-to-device copy bandwidth (bytes read + written per second, 2 GiB copied ten times): the
// floor the CUDA micro-benchmarks set their kernels' bytes against, measured in the same run.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

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
