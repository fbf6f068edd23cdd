// CudaBackend's recorded steps (backend.h, begin_step_recording): a step's ops captured once as a CUDA graph
// and replayed with new tokens and positions from a pinned slot, and the scratch memory a recording holds.
#include "backend/cuda/step_recording.h"

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda/env.h"
#include "base/error.h"

namespace g4 {

std::shared_ptr<void> CudaBackend::scratch(size_t bytes) {
  if (recording_) {
    const size_t n = cuda::pool_round(bytes ? bytes : 1);
    std::shared_ptr<RecordingArena> arena = recording_->arena_;
    std::vector<void*>& free = arena->released[n];
    void* p = nullptr;
    if (!free.empty()) {
      p = free.back();
      free.pop_back();
    } else {
      p = pool_->get(n);
      arena->owned.emplace_back(n, p);
    }
    return std::shared_ptr<void>(p, [arena, n](void* q) { arena->released[n].push_back(q); });
  }
  void* p = pool_->get(bytes);
  auto pool = pool_;
  return std::shared_ptr<void>(p, [pool, bytes](void* q) { pool->put(q, bytes); });
}

const int64_t* CudaBackend::rec_pos() const { return recording_ ? recording_->dev_->pos : nullptr; }

int64_t CudaBackend::rec_offset(size_t i, int64_t p) const {
  if (!recording_) return p;
  G4_CHECK(i < recording_->pos_.size(), "an op of a recorded step names sequence " + std::to_string(i) + " of " +
                                            std::to_string(recording_->pos_.size()));
  return p - recording_->pos_[i];
}

std::unique_ptr<StepRecording> CudaBackend::begin_step_recording(int n_tokens, const std::vector<int64_t>& pos) {
  // G4_CUDA_RECORD_TOKENS=N: record steps of at most N tokens (comparisons; 1 = decode steps only).
  // G4_CUDA_RECORD_BATCH=0: batched decode steps run op by op (comparisons; recorded, 8 sequences decode
  // 2.7% faster on the H200, docs/PERF.md).
  static const int max_tokens = cuda::env_int("G4_CUDA_RECORD_TOKENS", kMaxRecordedTokens);
  static const bool batches = cuda::env_switch("G4_CUDA_RECORD_BATCH", true);
  const int n_seq = int(pos.size());
  const bool one = n_seq == 1 && n_tokens >= 1 && n_tokens <= std::min(max_tokens, kMaxRecordedTokens);
  const bool batch = batches && n_seq > 1 && n_seq <= kMaxRecordedSeqs && n_tokens == n_seq;
  if (!opt_.step_graphs || recording_ || !(one || batch)) return nullptr;
  auto rec = std::make_unique<CudaStepGraph>(*this, n_tokens, pos);
  G4_CUDA(cudaStreamSynchronize(stream_));
  // Relaxed: the ops may still cudaMalloc a first-time scratch size while recording.
  G4_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  recording_ = rec.get();
  G4_CUDA(cudaMemcpyAsync(rec->dev_, rec->host_, sizeof(StepSlot), cudaMemcpyHostToDevice, stream_));
  return rec;
}

void CudaBackend::end_step_recording(StepRecording& r) {
  auto& rec = static_cast<CudaStepGraph&>(r);
  G4_CHECK(recording_ == &rec, "end_step_recording without begin");
  recording_ = nullptr;
  G4_CUDA(cudaStreamEndCapture(stream_, &rec.graph_));
  G4_CUDA(cudaGraphInstantiate(&rec.exec_, rec.graph_, 0));
}

void CudaBackend::replay_step(StepRecording& r, const std::vector<int32_t>& tokens, const std::vector<int64_t>& pos) {
  auto& rec = static_cast<CudaStepGraph&>(r);
  G4_CHECK(rec.exec_ && !recording_, "replay_step of an unfinished recording");
  G4_CHECK(int(tokens.size()) == rec.n_tokens_ && pos.size() == rec.pos_.size(),
           "replay_step: the recording takes " + std::to_string(rec.n_tokens_) + " tokens and " +
               std::to_string(rec.pos_.size()) + " positions, not " + std::to_string(tokens.size()) + " and " +
               std::to_string(pos.size()));
  G4_CUDA(cudaEventSynchronize(rec.done_));  // the previous replay has read the slot
  std::copy(tokens.begin(), tokens.end(), rec.host_->tokens);
  std::copy(pos.begin(), pos.end(), rec.host_->pos);
  G4_CUDA(cudaGraphLaunch(rec.exec_, stream_));
  G4_CUDA(cudaEventRecord(rec.done_, stream_));
}

}  // namespace g4
