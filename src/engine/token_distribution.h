// The distribution the Sampler (model/sampler.h) draws from, made explicit so speculative decoding can
// accept or reject a drafted token against it: the same penalties over the same history window, then
// top-k, temperature, min-p and top-p in the same order with the same ties. sample_from() draws exactly
// as Sampler::sample does, so for one seed the two pick the same token (tests/engine check this; keep
// the two in step when the Sampler changes).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "model/sampler.h"

namespace g4 {

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

}  // namespace g4
