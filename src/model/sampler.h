// Host-side sampling from a logits row: greedy, temperature, top-k, top-p, min-p and repetition /
// presence / frequency penalties, with a seeded generator so runs are reproducible. Softcapping is
// already applied by the model (it must precede temperature; spec pitfall 10). The arithmetic of the
// choice is backend/sampling.h (shared with Backend::sample_rows); this adds the generator.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "backend/sampling.h"

namespace g4 {

// Throws g4::Error naming the first parameter that is out of range or not finite.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks a token from logits [V]; `history` is the tokens seen so far (for the penalties).
  int32_t sample(const float* logits, int64_t V, const std::vector<int32_t>& history);
  // The same choice made elsewhere (Backend::sample_rows, forward_pick): the parameters, the part of
  // `history` the penalties read, and the uniform number sample() would draw next (drawn now, so the
  // generator advances exactly as one sample() call advances it; greedy draws nothing).
  RowSampling next_row(const std::vector<int32_t>& history);
  // Speculative decoding's choice at a row that verifies the drafted token `draft` (accept_draft below),
  // drawn from this sampler's generator.
  int32_t verify(const float* logits, int64_t vocab, const std::vector<int32_t>& history, int32_t draft);
  const SamplingParams& params() const { return p_; }

 private:
  double next_uniform();
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// One draw from `d` with `rng`, as Sampler::sample draws; `exclude` (>= 0) is left out and the rest
// renormalised (speculative decoding's residual draw).
int32_t sample_from(const TokenDistribution& d, std::mt19937_64& rng, int32_t exclude = -1);
// Speculative decoding's acceptance rule at one verified row, for a deterministic drafter (q one-hot at
// the drafted token): greedy: the argmax, which accepts `draft` when it is that token; sampling: `draft`
// with probability p(draft), else a draw from p without it - the emitted token is distributed exactly as
// a plain draw. draft < 0 (the row after the last draft, or no draft): a plain draw.
int32_t accept_draft(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     int32_t draft, std::mt19937_64& rng);

}  // namespace g4
