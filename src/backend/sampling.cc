#include "backend/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace g4 {

bool no_penalties(const SamplingParams& s) {
  return s.repeat_penalty == 1.0f && s.presence_penalty == 0.0f && s.frequency_penalty == 0.0f;
}

int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return int32_t(best);
}

void ban_tokens(float* logits, int64_t V, const std::vector<int32_t>& banned) {
  for (int32_t b : banned)
    if (b >= 0 && b < V) logits[b] = -std::numeric_limits<float>::infinity();
}

double TokenDistribution::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return p[i] / total;
  return 0;
}

std::vector<float> penalized_logits(const SamplingParams& s, const float* logits, int64_t V,
                                    const std::vector<int32_t>& history) {
  std::vector<float> l(logits, logits + V);
  if (no_penalties(s)) return l;
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

int32_t draw_token(const TokenDistribution& d, double u, int32_t exclude) {
  double total = d.total;
  size_t last = d.ids.size() - 1;
  if (exclude >= 0)
    for (size_t i = 0; i < d.ids.size(); ++i)
      if (d.ids[i] == exclude) total -= d.p[i];
  while (last > 0 && d.ids[last] == exclude) --last;
  if (!(total > 0)) return d.ids[last];  // only the excluded token had mass (cannot happen after a rejection)
  const double r = u * total;
  double acc = 0;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    if (d.ids[i] == exclude) continue;
    acc += d.p[i];
    if (r < acc) return d.ids[i];
  }
  return d.ids[last];
}

int32_t choose_token(const SamplingParams& s, const float* logits, int64_t V, const std::vector<int32_t>& history,
                     double u) {
  if (s.temperature <= 0) return greedy_token(s, logits, V, history);
  return draw_token(token_distribution(s, logits, V, history), u);
}

}  // namespace g4
