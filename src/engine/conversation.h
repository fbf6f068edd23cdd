// Conversation: one sequence being generated, over a Session (a cache of its own or a slot of a shared
// one). New input is appended to what the cache already holds (a chat turn never re-processes earlier
// turns); a whole prompt reuses the longest common prefix with the cached tokens and rolls the rest back. Generation samples on the host, stops on the
// stop set, the token budget, the context limit or a callback asking to cancel, and times each phase.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/draft_control.h"
#include "engine/drafter.h"
#include "model/sampler.h"
#include "model/session.h"

namespace g4 {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
  int64_t prefill_chunk = 512;
  DraftOptions draft;  // speculative decoding (engine/speculative.h) when draft.drafter is set
  // Where tokens are chosen: false (default) where the logits are (Backend::sample_rows: on a GPU only the
  // ids reach the host), true from logits downloaded to the host. Same tokens either way (backend.h);
  // speculative decoding always works on the host's logits.
  bool host_sampling = false;
};

enum class StopReason { kStopToken, kMaxTokens, kContextFull, kCancelled };
const char* stop_reason_name(StopReason r);  // "stop", "length", "context", "cancelled"

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens, the final stop token included when there was one
  StopReason reason = StopReason::kMaxTokens;
  int64_t prompt_tokens = 0;    // new tokens processed for this call (not the reused prefix)
  int64_t reused_tokens = 0;    // cached tokens reused from earlier calls
  double prefill_s = 0, decode_s = 0;  // prefill includes the first sampled token (time to first token)
  DraftStats draft;             // speculative decoding: drafted, accepted, per position, what the monitor did
};

class Conversation {
 public:
  Conversation(const Model& model, int64_t ctx_size);
  Conversation(const Model& model, const KvCacheOptions& cache);
  // Sequence `seq` of a shared cache (which must outlive the conversation).
  Conversation(const Model& model, KvCache& kv, int seq);

  // on_token(id) is called for each generated token as it is sampled; returning false cancels.
  using TokenCallback = std::function<bool(int32_t)>;

  // Appends `input` to the conversation and generates. Throws g4::Error for bad ids, bad sampling
  // parameters or input that does not fit the context.
  GenerateResult append_and_generate(const std::vector<int32_t>& input, const GenerateOptions& opts,
                                     const TokenCallback& on_token);
  // Generates for `prompt` as a whole sequence: keeps the longest common prefix of `prompt` and the
  // cached tokens (at least the last prompt token is run again, for fresh logits) and rolls back the rest.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                          const TokenCallback& on_token);

  void reset();
  // Every token the model has seen or produced, in order (the last sampled token included).
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t ctx_size() const { return session_.ctx_size(); }
  Session& session() { return session_; }

 private:
  Session session_;
  const Model& model_;
  std::vector<int32_t> tokens_;  // tokens_[0 .. session_.pos()) are in the cache; at most one more pending
};

}  // namespace g4
