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

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// Index of the largest value; the lowest index wins ties.
int32_t argmax(const float* v, int64_t n);

}  // namespace g4
