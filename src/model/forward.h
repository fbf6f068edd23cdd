// The forward pass, the only code that knows Gemma 4's layer order (spec section 2), over a batch that
// mixes sequences: each chunk is some tokens of one sequence at that sequence's next positions. The
// projections and the MLP run once over all rows of the batch (the weights are read once per step);
// the per-position steps (norms + RoPE, attention, the cache write) run per chunk on row views.
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"

namespace g4 {

enum class LogitsMode { kNone, kLast, kAll };

struct SeqChunk {
  int seq = 0;
  std::vector<int32_t> tokens;
  LogitsMode logits = LogitsMode::kLast;
};

// Runs one step and returns, per chunk, its logits on the host: [n, V] for kAll, [V] for kLast, empty for
// kNone. Throws g4::Error for an out-of-range sequence or token id, a sequence given twice, an empty chunk,
// or a chunk that would overflow its sequence's context.
std::vector<std::vector<float>> forward_batch(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch);

}  // namespace g4
