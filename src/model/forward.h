// The forward pass, the only code that knows Gemma 4's layer order (spec section 2), over a batch that
// mixes sequences: each chunk is some tokens of one sequence at that sequence's next positions. The
// projections and the MLP run once over all rows of the batch (the weights are read once per step);
// the per-position steps (norms + RoPE, attention, the cache write) run per chunk on row views.
#pragma once

#include <cstdint>
#include <vector>

#include "model/forward_taps.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace g4 {

enum class LogitsMode { kNone, kLast, kAll };

// The layers a drafter sharing the target's KV reads: {last sliding, last full} (-1 where absent).
void tapped_layers(const ModelSpec& s, int out[2]);

struct SeqChunk {
  int seq = 0;
  std::vector<int32_t> tokens;
  LogitsMode logits = LogitsMode::kLast;
  ForwardTaps* taps = nullptr;  // filled when set; the plain path leaves it null
};

// Runs one step and returns, per chunk, its logits on the host: [n, V] for kAll, [V] for kLast, empty for
// kNone. Throws g4::Error for an out-of-range sequence or token id, a sequence given twice, an empty chunk,
// or a chunk that would overflow its sequence's context.
std::vector<std::vector<float>> forward_batch(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch);

// forward_batch for callers that need only tokens: the backend chooses them where the logits are
// (Backend::sample_rows with picks[c]), so on a GPU only the token ids reach the host. Returns, chunk after
// chunk, the token of a kLast chunk's last row, -1 for a kNone chunk, and a token per row of a kAll chunk
// (a speculative verify), chosen greedily: row i with picks[c] and the chunk's tokens 1 .. i appended to
// its history. Throws g4::Error as forward_batch does, for a kAll chunk whose pick is not greedy, or when
// picks.size() != batch.size() (picks of kNone chunks are not read).
std::vector<int32_t> forward_pick(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch,
                                  const std::vector<RowSampling>& picks);

}  // namespace g4
