// Host-side sampling from a logits row: greedy, temperature, top-k, top-p, min-p and repetition /
// presence / frequency penalties, with a seeded generator so runs are reproducible. Softcapping is
// already applied by the model (it must precede temperature; spec pitfall 10).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace g4 {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy (argmax)
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repeat_penalty = 1.0f;   // llama.cpp style: divide positive logits, multiply negative ones
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t repeat_last_n = 64;    // how many recent tokens the penalties look at
  uint64_t seed = 0;
};

// Throws g4::Error naming the first parameter that is out of range or not finite.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks a token from logits [V]; `history` is the tokens seen so far (for the penalties).
  int32_t sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history);
  // Speculative decoding's choice at a row that verifies the drafted token `draft` (accept_draft below),
  // drawn from this sampler's generator.
  int32_t verify(const float* logits, int64_t vocab, const std::vector<int32_t>& history, int32_t draft);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// Index of the largest value; the lowest index wins ties.
int32_t argmax(const float* v, int64_t n);

// The distribution Sampler::sample draws from, explicit so that speculative decoding can accept or reject a
// drafted token against it: penalties over the last repeat_last_n of the history, then top-k, temperature,
// min-p and top-p, in that order, ties to the lower id. Sampler::sample is greedy_token at temperature <= 0
// and sample_from(token_distribution(...)) above it.
struct TokenDistribution {
  std::vector<int32_t> ids;  // candidates kept, most likely first
  std::vector<double> p;     // their weights (sum = total; not normalised, as the Sampler draws)
  double total = 0;
  double prob(int32_t id) const;  // normalised probability of `id` (0 when cut)
};

// Logits after the repetition / presence / frequency penalties over the last repeat_last_n of `history`.
std::vector<float> penalized_logits(const SamplingParams& s, const float* logits, int64_t V,
                                    const std::vector<int32_t>& history);
// The token greedy decoding picks (temperature <= 0): argmax of the penalised logits.
int32_t greedy_token(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history);
// The kept candidates and weights for temperature > 0.
TokenDistribution token_distribution(const SamplingParams& s, const float* logits, int64_t V,
                                     const std::vector<int32_t>& history);
// One draw, as Sampler::sample draws; `exclude` (>= 0) is left out and the rest renormalised.
int32_t sample_from(const TokenDistribution& d, std::mt19937_64& rng, int32_t exclude = -1);
// Speculative decoding's acceptance rule at one verified row, for a deterministic drafter (q one-hot at
// the drafted token): greedy: the argmax, which accepts `draft` when it is that token; sampling: `draft`
// with probability p(draft), else a draw from p without it - the emitted token is distributed exactly as
// a plain draw. draft < 0 (the row after the last draft, or no draft): a plain draw.
int32_t accept_draft(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     int32_t draft, std::mt19937_64& rng);


}  // namespace g4
