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
  std::vector<float> l(logits, logits + V);
  // Penalties over the recent window.
  if (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    const size_t start = history.size() > size_t(p_.repeat_last_n) ? history.size() - size_t(p_.repeat_last_n) : 0;
    for (size_t i = start; i < history.size(); ++i)
      if (history[i] >= 0 && history[i] < V) ++counts[history[i]];
    for (const auto& [tok, c] : counts) {
      float& x = l[size_t(tok)];
      x = x > 0 ? x / p_.repeat_penalty : x * p_.repeat_penalty;
      x -= p_.presence_penalty + p_.frequency_penalty * float(c);
    }
  }
  if (p_.temperature <= 0) return argmax(l.data(), V);

  // Candidates sorted by logit, cut by top-k; then softmax at temperature, min-p and top-p.
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  size_t k = p_.top_k > 0 ? std::min<size_t>(size_t(p_.top_k), size_t(V)) : size_t(V);
  auto cmp = [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(k), idx.end(), cmp);
  idx.resize(k);
  const double mx = l[size_t(idx[0])];
  std::vector<double> prob(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += (prob[i] = std::exp((double(l[size_t(idx[i])]) - mx) / p_.temperature));
  for (double& x : prob) x /= sum;
  size_t keep = k;
  if (p_.min_p > 0)
    for (size_t i = 1; i < keep; ++i)
      if (prob[i] < p_.min_p * prob[0]) { keep = i; break; }
  if (p_.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (r < acc) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace g4
