// The GEMM path's weight blocks (CudaBackend::matmul with many tokens: int4/int8 rows dequantized to bf16
// or f32, then cuBLAS) dequantized on a stream of their own, into two buffers used in turn, so that a
// block's dequantization (memory-bound) runs while the main stream still computes earlier work (the
// previous GEMM, attention): the host enqueues ahead of the device, so the side stream starts a block as
// soon as the GEMM two blocks back has read its buffer. Both streams' order is kept with events: the main
// stream waits for a block's dequantization before its GEMM, the side stream for the GEMM that last read a
// buffer before writing it again. Off until measured on a GPU: G4_CUDA_DEQUANT_AHEAD=1 turns it on (else the
// caller dequantizes on the main stream).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace g4::cuda {

class DequantAhead {
 public:
  // main: the backend's stream; bytes: the largest block (the buffers are allocated on first use).
  DequantAhead(cudaStream_t main, size_t bytes);
  ~DequantAhead();
  DequantAhead(const DequantAhead&) = delete;
  DequantAhead& operator=(const DequantAhead&) = delete;
  static bool enabled();

  // Rows [r0, r0 + n) of w, dequantized into the next buffer on the side stream; the main stream waits for
  // them. The returned buffer holds them for the main stream's work enqueued until read_done().
  const void* dequant(const WeightDesc& w, int64_t r0, int64_t n, bool to_f32);
  // The main stream's reads of the last dequant()'s buffer are enqueued.
  void read_done();

 private:
  cudaStream_t main_, side_ = nullptr;
  size_t bytes_;
  void* buf_[2] = {nullptr, nullptr};
  cudaEvent_t written_[2] = {nullptr, nullptr}, read_[2] = {nullptr, nullptr};
  bool pending_read_[2] = {false, false};
  int next_ = 0, last_ = -1;
};

}  // namespace g4::cuda
