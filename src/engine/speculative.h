// Speculative decoding: a drafter guesses k tokens, ONE target forward of the pending token plus the k
// guesses returns logits at every position, and the guesses are accepted left to right by accept_draft
// (model/sampler.h) - greedy: while they equal the argmax; sampling: draft x with probability p(x), else
// a token drawn from p with x removed, which leaves the output distribution exactly that of plain
// sampling. Every emitted token passes the stop checks of plain decoding in order, so generation ends
// exactly where plain decoding would; rejected positions are rolled back (in place: the draft length is
// capped at the ring's slack + 1).
//
// SpeculativeStream is one sequence's part of that, between target forwards that its caller runs:
// generate_speculative drives it over a Session, the server's scheduler (server/scheduler.h) over one
// slot of each batched step. It holds the drafter, the acceptance monitor (engine/draft_control.h), the
// proposals scored while drafting is off, and the statistics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/conversation.h"

namespace g4 {

class SpeculativeStream {
 public:
  // o.drafter must be set and belong to this sequence alone (Drafter::fork). backend: the target's (the
  // default draft length and verify cost, the longest exact verify); slack: the KV cache's rollback slack;
  // vocab: the target's. Throws g4::Error for draft lengths < 0 or min > max.
  SpeculativeStream(const DraftOptions& o, const Backend& backend, int64_t slack, int64_t vocab);

  // The buffer every target forward of this sequence must fill (null: the drafter needs none).
  ForwardTaps* taps() { return taps_; }
  // After the prompt's last forward (tapped when taps() is set). Throws g4::Error when it was not.
  void prompt_done();

  // Before a target forward whose first token is the pending one, tokens.back() (everything the sequence
  // has seen or produced is `tokens`; the cache, session's, holds all but the pending one): the drafted
  // tokens to run after it (empty: a plain one-token step). room: how many more tokens may be emitted
  // after the pending one (token budget, context). Throws g4::Error when the drafter proposes a token
  // outside the vocabulary.
  std::vector<int32_t> propose(Session& session, const std::vector<int32_t>& tokens, int64_t room);

  // After that forward (in `seconds`; one row per token run: the pending token and the drafts): decides the
  // tokens left to right - decide(j, draft) gives the token emitted at row j (draft: the drafted token it
  // verifies, -1 on the row after the last draft; the caller's accept_draft on the row's logits, with
  // whatever masks it applies, or the token the backend chose there; -1 returned ends generation there, no
  // token emitted) and
  // emit(token) hands it on (false: generation ends there). emitted_before: tokens emitted before this
  // step. The caller then rolls the cache back to (the pending token's position + emitted): the pending
  // token and every emitted token but the last, which is the next pending one.
  struct Verdict {
    int emitted = 0;   // tokens emitted
    int accepted = 0;  // drafted tokens accepted
    bool go = true;    // false: generation ended in this step
  };
  Verdict verify(const std::vector<int32_t>& drafts, double seconds, int64_t emitted_before,
                 const std::function<int32_t(size_t row, int32_t draft)>& decide,
                 const std::function<bool(int32_t token)>& emit);

  // A new generation on the same sequence (the server's next request in a slot): statistics, the shadow
  // proposal and the tap row start afresh; the monitor keeps what it learned (acceptance decays within
  // ~20 drafts, so it follows the new text; the measured step times stay valid), so a short reply does not
  // end before the monitor has seen enough to turn drafting on.
  void restart();

  DraftStats& stats() { return st_; }
  // Seconds on the monitor's clock (DraftOptions::clock): the caller times its target forwards with it.
  double now() const { return clock_(); }
  // Records the monitor's final length into stats() (at the end of the generation).
  void finish() { st_.final_length = ctl_.length(); }

 private:
  void check_vocab(const std::vector<int32_t>& tokens) const;

  std::shared_ptr<Drafter> drafter_;
  std::function<double()> clock_;  // DraftOptions::clock, or the steady clock
  ForwardTaps* taps_ = nullptr;
  int64_t V_;
  DraftStats st_;
  struct Lengths {
    int max = 0, min = 0;
    std::string capped;  // why max is below what was asked (empty: it is not)
  };
  static Lengths lengths(const DraftOptions& o, const Backend& backend, int64_t slack);
  Lengths len_;
  DraftControl ctl_;
  bool off_ = false;             // drafting was off when the current step was proposed
  int64_t tap_row_ = -1;         // the row of taps() holding position pos - 1
  // While drafting is off: a proposal scored against the tokens produced. A drafter that can extend its
  // proposals is asked for one token at a time while it keeps matching (the proposal counts as `max`
  // long, as when drafted whole); others propose whole.
  std::vector<int32_t> shadow_;
  size_t shadow_at_ = 0;
  int shadow_len_ = 0;
};

// Continues a generation whose prompt has just been run: `first` is the logits row after the prompt,
// `tokens` everything seen so far (extended with each emitted token), t0 when the prefill began.
void generate_speculative(const Model& model, Session& session, std::vector<int32_t>& tokens, const std::vector<float>& first,
                          const GenerateOptions& opts, const Conversation::TokenCallback& on_token, GenerateResult& r,
                          std::chrono::steady_clock::time_point t0);

}  // namespace g4
