// Session: one sequence's state (KV caches and position) over a loaded Model, and the forward pass,
// the only code that knows Gemma 4's layer order (spec section 2). Sliding layers keep a ring of
// `window` slots; full layers a flat cache of ctx_size slots. Attention for a chunk reads earlier
// positions from the cache and the chunk's own keys directly, so chunks of any size (larger than the
// window too) give the same result as one pass.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace g4 {

enum class LogitsMode { kNone, kLast, kAll };

class Session {
 public:
  // ctx_size: the most positions this session may hold. Throws g4::Error when it is not positive.
  Session(const Model& model, int64_t ctx_size);

  // Runs `tokens` at positions pos() .. pos()+n-1 in chunks of at most `chunk` tokens (0 = one chunk)
  // and returns logits on the host: [n, V] for kAll, [V] for kLast, empty for kNone.
  // Throws g4::Error for an out-of-range token id or when the context would overflow.
  std::vector<float> forward(const std::vector<int32_t>& tokens, LogitsMode mode, int64_t chunk = 0);

  int64_t pos() const { return pos_; }
  int64_t ctx_size() const { return ctx_size_; }
  void reset() { pos_ = 0; }

 private:
  // One chunk; returns logits rows per mode (kAll: every row, kLast: the last, kNone: none).
  std::vector<float> forward_chunk(const std::vector<int32_t>& tokens, LogitsMode mode);
  // The ops of one chunk at position p0; returns the logits tensor (empty for kNone). Does not move pos_.
  Tensor enqueue_chunk(const std::vector<int32_t>& tokens, int64_t p0, LogitsMode mode);

  const Model& model_;
  Backend& be_;
  int64_t ctx_size_;
  int64_t pos_ = 0;
  std::vector<KvLayer> kv_;
  // A recorded single-token step (backends that support it) and the logits tensor it writes.
  std::unique_ptr<StepRecording> step_;
  Tensor step_logits_;
};

}  // namespace g4
