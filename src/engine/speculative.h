// Speculative decoding over a Session: a drafter guesses k tokens, ONE target forward of the pending token
// plus the k guesses returns logits at every position, and the guesses are accepted left to right -
// greedy: while they equal the argmax; sampling: draft x with probability p(x), else a token drawn from p
// with x removed (the drafter is deterministic, q one-hot), which leaves the output distribution exactly
// that of plain sampling. Every emitted token passes the stop checks of plain decoding in order, so
// generation ends exactly where plain decoding would; rejected positions are rolled back with
// Session::truncate (in place: the draft length is capped at the ring's slack + 1).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/conversation.h"

namespace g4 {

// Continues a generation whose prompt has just been run: `first` is the logits row after the prompt,
// `tokens` everything seen so far (extended with each emitted token), t0 when the prefill began.
void generate_speculative(const Model& model, Session& session, std::vector<int32_t>& tokens, const std::vector<float>& first,
                          const GenerateOptions& opts, const Conversation::TokenCallback& on_token, GenerateResult& r,
                          std::chrono::steady_clock::time_point t0);

}  // namespace g4
