// What a recorded step of the CUDA backend holds (step_recording.cc): its graph, the pinned slot of tokens and
// positions each replay fills, and the scratch memory the graph uses.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_pool.h"

namespace g4 {

// What a recorded step's graph needs besides the backend: its pinned slot of tokens and first positions
// (one a sequence), the device copy the graph reads, and its arena of scratch blocks.
struct StepSlot {
  int32_t tokens[std::max(kMaxRecordedTokens, kMaxRecordedSeqs)];
  int64_t pos[kMaxRecordedSeqs];
};
static_assert(kMaxRecordedSeqs <= cuda::kMaxSeqs, "a recorded batch fits one sequence table");

// The device blocks handed out while a step is recorded. The graph keeps using their addresses, so they
// stay the recording's until it goes (then they return to the pool); one released during the recording is
// handed out again within it, as the pool does for eager ops: the graph runs its ops in the order they were
// recorded. So a recording holds about one step's live scratch, not the sum over its ops (a batch of 8
// rows at 16K capacity: ~35 MB of attention partials a full layer).
struct RecordingArena {
  explicit RecordingArena(std::shared_ptr<cuda::DevicePool> p) : pool(std::move(p)) {}
  ~RecordingArena() {
    for (auto& [bytes, p] : owned) pool->put(p, bytes);
  }
  std::shared_ptr<cuda::DevicePool> pool;
  std::vector<std::pair<size_t, void*>> owned;
  std::map<size_t, std::vector<void*>> released;  // by rounded size
};

class CudaStepGraph : public StepRecording {
 public:
  CudaStepGraph(CudaBackend& be, int n_tokens, const std::vector<int64_t>& pos)
      : be_(be), n_tokens_(n_tokens), pos_(pos), arena_(std::make_shared<RecordingArena>(be.pool_)) {
    G4_CUDA(cudaMallocHost(&host_, sizeof(StepSlot)));
    G4_CUDA(cudaMalloc(&dev_, sizeof(StepSlot)));
    G4_CUDA(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~CudaStepGraph() override {
    if (be_.recording_ == this) {  // abandoned mid-recording (an op threw): end the capture, drop it
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(be_.stream_, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      be_.recording_ = nullptr;
    }
    if (done_) cudaEventSynchronize(done_);  // a replay in flight still reads the slot and the blocks
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    if (done_) cudaEventDestroy(done_);
    if (dev_) cudaFree(dev_);
    if (host_) cudaFreeHost(host_);
  }
  CudaBackend& be_;
  const int n_tokens_;
  const std::vector<int64_t> pos_;  // the positions it was recorded at: ops keep theirs relative to them
  std::shared_ptr<RecordingArena> arena_;
  StepSlot* host_ = nullptr;
  StepSlot* dev_ = nullptr;
  cudaEvent_t done_ = nullptr;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace g4
