#include "backend/cuda/dequant_ahead.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "base/error.h"

namespace g4::cuda {

DequantAhead::DequantAhead(cudaStream_t main, size_t bytes) : main_(main), bytes_(bytes) {}

DequantAhead::~DequantAhead() {
  if (side_) cudaStreamSynchronize(side_);
  if (main_) cudaStreamSynchronize(main_);
  for (int b = 0; b < 2; ++b) {
    if (buf_[b]) cudaFree(buf_[b]);
    if (written_[b]) cudaEventDestroy(written_[b]);
    if (read_[b]) cudaEventDestroy(read_[b]);
  }
  if (side_) cudaStreamDestroy(side_);
}

bool DequantAhead::enabled() {
  static const bool on = [] {
    const char* e = std::getenv("G4_CUDA_DEQUANT_AHEAD");
    return e && std::strcmp(e, "1") == 0;
  }();
  return on;
}

const void* DequantAhead::dequant(const WeightDesc& w, int64_t r0, int64_t n, bool to_f32) {
  const size_t need = size_t(n) * size_t(w.cols) * (to_f32 ? 4 : 2);
  G4_CHECK(need <= bytes_, "dequantized weight block larger than its buffer");
  if (!side_) {
    G4_CUDA(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    for (int b = 0; b < 2; ++b) {
      G4_CUDA(cudaMalloc(&buf_[b], bytes_));
      G4_CUDA(cudaEventCreateWithFlags(&written_[b], cudaEventDisableTiming));
      G4_CUDA(cudaEventCreateWithFlags(&read_[b], cudaEventDisableTiming));
    }
  }
  const int b = next_;
  next_ ^= 1;
  if (pending_read_[b]) G4_CUDA(cudaStreamWaitEvent(side_, read_[b], 0));
  dequant_rows(w, r0, n, buf_[b], to_f32, side_);
  G4_CUDA(cudaEventRecord(written_[b], side_));
  G4_CUDA(cudaStreamWaitEvent(main_, written_[b], 0));
  last_ = b;
  return buf_[b];
}

void DequantAhead::read_done() {
  G4_CHECK(last_ >= 0, "DequantAhead::read_done without dequant");
  G4_CUDA(cudaEventRecord(read_[last_], main_));
  pending_read_[last_] = true;
  last_ = -1;
}

}  // namespace g4::cuda
