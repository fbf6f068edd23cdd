#include "engine/conversation.h"

#include <algorithm>
#include <chrono>

#include "base/error.h"
#include "engine/speculative.h"

namespace g4 {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kStopToken: return "stop";
    case StopReason::kMaxTokens: return "length";
    case StopReason::kContextFull: return "context";
    case StopReason::kCancelled: return "cancelled";
  }
  return "?";
}

Conversation::Conversation(const Model& model, int64_t ctx_size) : session_(model, ctx_size), model_(model) {}
Conversation::Conversation(const Model& model, const KvCacheOptions& cache) : session_(model, cache), model_(model) {}
Conversation::Conversation(const Model& model, KvCache& kv, int seq) : session_(model, kv, seq), model_(model) {}

void Conversation::reset() {
  session_.reset();
  tokens_.clear();
}

GenerateResult Conversation::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                      const TokenCallback& on_token) {
  int64_t keep = session_.cache().common_prefix(session_.seq(), prompt);
  keep = std::min<int64_t>(keep, std::max<int64_t>(0, int64_t(prompt.size()) - 1));  // fresh logits need one token run
  session_.truncate(keep, opts.prefill_chunk);
  tokens_ = session_.tokens();
  std::vector<int32_t> rest(prompt.begin() + std::ptrdiff_t(keep), prompt.end());
  return append_and_generate(rest, opts, on_token);
}

GenerateResult Conversation::append_and_generate(const std::vector<int32_t>& input, const GenerateOptions& opts,
                                                 const TokenCallback& on_token) {
  validate(opts.sampling);
  if (opts.max_new_tokens < 0) throw Error("max new tokens must be >= 0");
  const int64_t V = model_.spec().vocab_size;
  for (size_t i = 0; i < input.size(); ++i)
    if (input[i] < 0 || input[i] >= V)
      throw Error("token id " + std::to_string(input[i]) + " is out of range for the vocabulary of " + std::to_string(V));

  GenerateResult r;
  r.reused_tokens = session_.pos();
  // The cache lacks the last sampled token of an earlier call (it was never fed): feed it with the input.
  std::vector<int32_t> feed(tokens_.begin() + std::ptrdiff_t(session_.pos()), tokens_.end());
  feed.insert(feed.end(), input.begin(), input.end());
  r.prompt_tokens = int64_t(feed.size());
  if (feed.empty()) throw Error("nothing to generate from: the prompt is empty");
  if (session_.pos() + int64_t(feed.size()) > session_.ctx_size())
    throw Error("the prompt needs " + std::to_string(session_.pos() + int64_t(feed.size())) +
                " positions but the context size is " + std::to_string(session_.ctx_size()));
  tokens_.insert(tokens_.end(), input.begin(), input.end());

  Sampler sampler(opts.sampling);
  const auto t0 = std::chrono::steady_clock::now();
  if (opts.draft.drafter) {
    std::vector<float> logits = session_.forward(feed, LogitsMode::kLast, opts.prefill_chunk, opts.draft.drafter->taps());
    generate_speculative(model_, session_, tokens_, logits, opts, on_token, r, t0);
    return r;
  }
  // Runs `in` and returns the next token: chosen by the backend, or by the sampler from host logits.
  auto step = [&](const std::vector<int32_t>& in, int64_t chunk) {
    if (!opts.host_sampling) return session_.forward_pick(in, sampler.next_row(tokens_), chunk);
    const std::vector<float> logits = session_.forward(in, LogitsMode::kLast, chunk);
    return sampler.sample(logits.data(), V, tokens_);
  };
  auto t_decode = t0;
  int32_t tok = -1;  // the token chosen last (-1: none, max_new_tokens == 0)
  if (opts.max_new_tokens == 0) session_.forward(feed, LogitsMode::kNone, opts.prefill_chunk);
  else tok = step(feed, opts.prefill_chunk);
  r.reason = StopReason::kMaxTokens;
  for (int64_t i = 0; tok >= 0; ++i) {
    if (i == 0) {
      r.prefill_s = seconds_since(t0);
      t_decode = std::chrono::steady_clock::now();
    }
    tokens_.push_back(tok);
    r.tokens.push_back(tok);
    if (on_token && !on_token(tok)) { r.reason = StopReason::kCancelled; break; }
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), tok) != opts.stop_ids.end()) {
      r.reason = StopReason::kStopToken;
      break;
    }
    if (session_.pos() >= session_.ctx_size()) { r.reason = StopReason::kContextFull; break; }
    if (i + 1 == opts.max_new_tokens) { r.reason = StopReason::kMaxTokens; break; }
    tok = step({tok}, 0);
  }
  if (!r.tokens.empty()) r.decode_s = seconds_since(t_decode);
  else r.prefill_s = seconds_since(t0);
  return r;
}

}  // namespace g4
