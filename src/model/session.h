// Session: one sequence of a KvCache (its own, or a slot of a shared one) and the calls a single stream
// needs: forward in chunks, rollback (truncate) and reset. The forward pass itself is model/forward.h.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace g4 {

class Session {
 public:
  // A session with a cache of its own: one sequence, f32 storage, ctx_size positions.
  // Throws g4::Error when ctx_size is not positive.
  Session(const Model& model, int64_t ctx_size);
  // A session with a cache of its own built with `opts` (opts.n_seq is ignored: one sequence).
  Session(const Model& model, const KvCacheOptions& opts);
  // Sequence `seq` of a shared cache, which must outlive the session.
  Session(const Model& model, KvCache& kv, int seq);

  // Runs `tokens` at positions pos() .. pos()+n-1 in chunks of at most `chunk` tokens (0 = one chunk)
  // and returns logits on the host: [n, V] for kAll, [V] for kLast, empty for kNone.
  // Throws g4::Error for an out-of-range token id or when the context would overflow.
  // taps (optional): filled for the rows of the last chunk (model/forward.h).
  std::vector<float> forward(const std::vector<int32_t>& tokens, LogitsMode mode, int64_t chunk = 0,
                             ForwardTaps* taps = nullptr);

  // forward(tokens, kLast, chunk) followed by the choice of the next token where the logits are
  // (model/forward.h forward_pick): returns the token instead of the logits row.
  int32_t forward_pick(const std::vector<int32_t>& tokens, const RowSampling& pick, int64_t chunk = 0);
  // forward(tokens, kAll) in one chunk followed by the greedy choice at every row where the logits are (a
  // speculative verify; model/forward.h forward_pick): returns a token per row. Throws g4::Error as
  // forward_pick does (a pick that is not greedy).
  std::vector<int32_t> forward_pick_all(const std::vector<int32_t>& tokens, const RowSampling& pick,
                                        ForwardTaps* taps = nullptr);

  // Drops every position >= n, exactly as if they had never been run: in place when the sliding rings'
  // slack allows it, else by recomputing the kept tokens. Returns the positions recomputed (0 in place).
  // Throws g4::Error for n < 0 or n > pos().
  int64_t truncate(int64_t n, int64_t chunk = 0);

  int64_t pos() const { return kv_->pos(seq_); }
  int64_t ctx_size() const { return kv_->ctx_size(); }
  // The tokens whose keys and values the cache holds, in order.
  const std::vector<int32_t>& tokens() const { return kv_->seq(seq_).tokens; }
  KvCache& cache() { return *kv_; }
  int seq() const { return seq_; }
  void reset() { kv_->clear(seq_); }

 private:
  const Model& model_;
  std::unique_ptr<KvCache> own_;
  KvCache* kv_;
  int seq_ = 0;
};

}  // namespace g4
