// Choosing a token from a logits row: the arithmetic of the host Sampler (model/sampler.h) without its
// random generator. It lives below model/ so that Backend::sample_rows can run it: the default
// implementation downloads the rows and calls choose_token, and a backend that chooses on the device
// (cuda) reproduces these steps, so a caller gets the same token either way for the same logits and u.
#pragma once

#include <cstdint>
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

// One row's choice as Backend::sample_rows takes it: the parameters, the tokens the penalties look at
// (at most the last repeat_last_n are read), the uniform number in [0, 1) the caller drew from its own
// generator for this token (unused when greedy), and the ids never to choose (their logits count as
// -infinity; ids outside the vocabulary are ignored), such as the stop tokens of a request that ignores
// them. model/sampler.h Sampler::next_row fills the first three.
struct RowSampling {
  SamplingParams params;
  std::vector<int32_t> history;
  double u = 0;
  std::vector<int32_t> banned;
};

// True when the penalties leave the logits as they are.
bool no_penalties(const SamplingParams& s);

// Index of the largest value; the lowest index wins ties.
int32_t argmax(const float* v, int64_t n);

// Sets logits[id] to -infinity for each banned id inside [0, V) (ids outside are ignored).
void ban_tokens(float* logits, int64_t V, const std::vector<int32_t>& banned);

// The distribution a sampled token is drawn from, explicit so that speculative decoding can accept or
// reject a drafted token against it: penalties over the last repeat_last_n of the history, then top-k,
// temperature, min-p and top-p, in that order, ties to the lower id.
struct TokenDistribution {
  std::vector<int32_t> ids;  // candidates kept, most likely first
  std::vector<double> p;     // their weights (sum = total; not normalised, as the draw uses them)
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
// The draw for a uniform u in [0, 1): r = u * total (of the weights left when `exclude` >= 0 is left
// out), then the first candidate whose running sum of weights exceeds r.
int32_t draw_token(const TokenDistribution& d, double u, int32_t exclude = -1);
// The whole choice: greedy_token at temperature <= 0 (u unused), else draw_token(token_distribution, u).
int32_t choose_token(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     double u);

}  // namespace g4
