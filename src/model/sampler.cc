#include "model/sampler.h"

#include <cmath>

#include "base/error.h"

namespace g4 {

void validate(const SamplingParams& p) {
  auto finite = [](float x) { return std::isfinite(x); };
  if (!finite(p.temperature) || p.temperature < 0) throw Error("temperature must be a finite number >= 0");
  if (p.top_k < 0) throw Error("top-k must be >= 0");
  if (!finite(p.top_p) || p.top_p <= 0 || p.top_p > 1) throw Error("top-p must be in (0, 1]");
  if (!finite(p.min_p) || p.min_p < 0 || p.min_p > 1) throw Error("min-p must be in [0, 1]");
  if (!finite(p.repeat_penalty) || p.repeat_penalty <= 0) throw Error("repeat penalty must be > 0");
  if (!finite(p.presence_penalty) || !finite(p.frequency_penalty)) throw Error("penalties must be finite");
  if (p.repeat_last_n < 0) throw Error("repeat-last-n must be >= 0");
}

namespace {
// uniform_real_distribution<double>(0, 1): one 64-bit output scaled to [0, 1). draw_token scales it by the
// total weight, which is what uniform_real_distribution<double>(0, total) computes (u * (total - 0) + 0).
double uniform01(std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate(p); }

double Sampler::next_uniform() { return uniform01(rng_); }

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (p_.temperature <= 0) return greedy_token(p_, logits, V, history);
  return draw_token(token_distribution(p_, logits, V, history), next_uniform());
}

RowSampling Sampler::next_row(const std::vector<int32_t>& history) {
  RowSampling r;
  r.params = p_;
  if (!no_penalties(p_)) {
    const size_t start = history.size() > size_t(p_.repeat_last_n) ? history.size() - size_t(p_.repeat_last_n) : 0;
    r.history.assign(history.begin() + std::ptrdiff_t(start), history.end());
  }
  if (p_.temperature > 0) r.u = next_uniform();
  return r;
}

int32_t Sampler::verify(const float* logits, int64_t V, const std::vector<int32_t>& history, int32_t draft) {
  return accept_draft(p_, logits, V, history, draft, rng_);
}

int32_t sample_from(const TokenDistribution& d, std::mt19937_64& rng, int32_t exclude) {
  double total = d.total;
  if (exclude >= 0)
    for (size_t i = 0; i < d.ids.size(); ++i)
      if (d.ids[i] == exclude) total -= d.p[i];
  if (!(total > 0)) return draw_token(d, 0.0, exclude);  // no draw: only the excluded token had mass
  return draw_token(d, uniform01(rng), exclude);
}

int32_t accept_draft(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     int32_t draft, std::mt19937_64& rng) {
  if (s.temperature <= 0) return greedy_token(s, logits, V, history);
  const TokenDistribution d = token_distribution(s, logits, V, history);
  if (draft < 0) return sample_from(d, rng);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < d.prob(draft) ? draft : sample_from(d, rng, draft);
}

}  // namespace g4
