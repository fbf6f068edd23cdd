// Error checking for every CUDA runtime and cuBLAS call: a failure throws g4::Error naming the call,
// the runtime's message and the source line, so a bad launch or an out-of-memory never goes unnoticed.
// Kernel launches are followed by G4_CUDA_LAUNCHED(), which reads cudaGetLastError (no device sync).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "base/error.h"

namespace g4::cuda {

[[noreturn]] inline void fail_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
              ") at " + file + ":" + std::to_string(line));
}
[[noreturn]] inline void fail_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
  throw Error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusString(s) + " at " + file + ":" +
              std::to_string(line));
}

}  // namespace g4::cuda

#define G4_CUDA(expr)                                                                     \
  do {                                                                                    \
    cudaError_t g4_e_ = (expr);                                                           \
    if (g4_e_ != cudaSuccess) ::g4::cuda::fail_cuda(g4_e_, #expr, __FILE__, __LINE__);    \
  } while (0)
#define G4_CUBLAS(expr)                                                                         \
  do {                                                                                          \
    cublasStatus_t g4_s_ = (expr);                                                              \
    if (g4_s_ != CUBLAS_STATUS_SUCCESS) ::g4::cuda::fail_cublas(g4_s_, #expr, __FILE__, __LINE__); \
  } while (0)
#define G4_CUDA_LAUNCHED() G4_CUDA(cudaGetLastError())
