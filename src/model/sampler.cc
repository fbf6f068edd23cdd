#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

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

int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return int32_t(best);
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate(p); }

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (p_.temperature <= 0) return greedy_token(p_, logits, V, history);
  return sample_from(token_distribution(p_, logits, V, history), rng_);
}

int32_t Sampler::verify(const float* logits, int64_t V, const std::vector<int32_t>& history, int32_t draft) {
  return accept_draft(p_, logits, V, history, draft, rng_);
}

double TokenDistribution::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return p[i] / total;
  return 0;
}

std::vector<float> penalized_logits(const SamplingParams& s, const float* logits, int64_t V,
                                    const std::vector<int32_t>& history) {
  std::vector<float> l(logits, logits + V);
  if (s.repeat_penalty == 1.0f && s.presence_penalty == 0.0f && s.frequency_penalty == 0.0f) return l;
  std::unordered_map<int32_t, int> counts;
  const size_t start = history.size() > size_t(s.repeat_last_n) ? history.size() - size_t(s.repeat_last_n) : 0;
  for (size_t i = start; i < history.size(); ++i)
    if (history[i] >= 0 && history[i] < V) ++counts[history[i]];
  for (const auto& [tok, c] : counts) {
    float& x = l[size_t(tok)];
    x = x > 0 ? x / s.repeat_penalty : x * s.repeat_penalty;
    x -= s.presence_penalty + s.frequency_penalty * float(c);
  }
  return l;
}

int32_t greedy_token(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history) {
  const std::vector<float> l = penalized_logits(s, logits, V, history);
  return argmax(l.data(), V);
}

TokenDistribution token_distribution(const SamplingParams& s, const float* logits, int64_t V,
                                     const std::vector<int32_t>& history) {
  const std::vector<float> l = penalized_logits(s, logits, V, history);
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const size_t k = s.top_k > 0 ? std::min<size_t>(size_t(s.top_k), size_t(V)) : size_t(V);
  auto cmp = [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(k), idx.end(), cmp);
  idx.resize(k);
  const double mx = l[size_t(idx[0])];
  std::vector<double> prob(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += (prob[i] = std::exp((double(l[size_t(idx[i])]) - mx) / s.temperature));
  for (double& x : prob) x /= sum;
  size_t keep = k;
  if (s.min_p > 0)
    for (size_t i = 1; i < keep; ++i)
      if (prob[i] < s.min_p * prob[0]) { keep = i; break; }
  if (s.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i];
      if (cum >= s.top_p) { keep = i + 1; break; }
    }
  }
  TokenDistribution d;
  d.ids.assign(idx.begin(), idx.begin() + std::ptrdiff_t(keep));
  d.p.assign(prob.begin(), prob.begin() + std::ptrdiff_t(keep));
  for (double x : d.p) d.total += x;
  return d;
}

int32_t sample_from(const TokenDistribution& d, std::mt19937_64& rng, int32_t exclude) {
  double total = d.total;
  size_t last = d.ids.size() - 1;
  if (exclude >= 0)
    for (size_t i = 0; i < d.ids.size(); ++i)
      if (d.ids[i] == exclude) total -= d.p[i];
  while (last > 0 && d.ids[last] == exclude) --last;
  if (!(total > 0)) return d.ids[last];  // only the excluded token had mass (cannot happen after a rejection)
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng);
  double acc = 0;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    if (d.ids[i] == exclude) continue;
    acc += d.p[i];
    if (r < acc) return d.ids[i];
  }
  return d.ids[last];
}

int32_t accept_draft(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     int32_t draft, std::mt19937_64& rng) {
  if (s.temperature <= 0) return greedy_token(s, logits, V, history);
  const TokenDistribution d = token_distribution(s, logits, V, history);
  if (draft < 0) return sample_from(d, rng);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < d.prob(draft) ? draft : sample_from(d, rng, draft);
}

}  // namespace g4
