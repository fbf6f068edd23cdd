// The one place where a logits row becomes the next token: the request's Sampler, restricted to the tokens
// a TokenConstraint allows (constrained decoding) and without banned tokens, plus the token's log
// probability and the most likely alternatives when asked (logprobs).
//
// Log probabilities are the log-softmax of the model's logits as the forward pass returns them (final
// softcapping applied), before the sampler's penalties, temperature, truncation and the constraint's
// mask: the model's own distribution, which is what the OpenAI API reports.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/token_mask.h"
#include "model/sampler.h"

namespace g4 {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
};

struct PickedToken {
  int32_t id = -1;                // -1: no token may come next (the constraint dead-ended)
  float logprob = 0;              // of `id` (when logprobs were asked for)
  std::vector<TokenLogprob> top;  // the top_n most likely tokens, most likely first (ties: lower id)
};

// top_n < 0: no log probabilities; 0..: the chosen token's and top_n alternatives. `constraint` may be null.
// Greedy decoding under a constraint checks the unconstrained choice first and masks the whole vocabulary
// only when that token is not allowed; sampling masks the whole vocabulary.
// draft >= 0: the row verifies that drafted token (speculative decoding): the choice is Sampler::verify's
// (accept_draft: greedy picks the same token as without a draft; sampling keeps the draft with its
// probability under the masked distribution, else draws from the rest), so constraints, banned tokens
// and log probabilities apply to drafted tokens exactly as to plain ones.
PickedToken pick_token(Sampler& sampler, const float* logits, int64_t V, const std::vector<int32_t>& history,
                       const TokenConstraint* constraint, const std::vector<int32_t>& banned, int top_n,
                       int32_t draft = -1);

// log-softmax of logits[id], and the top_n most likely tokens.
PickedToken token_logprobs(const float* logits, int64_t V, int32_t id, int top_n);

}  // namespace g4
