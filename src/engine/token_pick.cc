#include "engine/token_pick.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace g4 {

PickedToken token_logprobs(const float* logits, int64_t V, int32_t id, int top_n) {
  PickedToken p;
  p.id = id;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(logits[i]) - double(mx));
  const double lse = double(mx) + std::log(sum);
  p.logprob = float(double(logits[id]) - lse);
  if (top_n > 0) {
    const size_t n = std::min<size_t>(size_t(top_n), size_t(V));
    // A running top-n list (n <= 20): cheaper than sorting the vocabulary.
    std::vector<int32_t> best;
    auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    for (int64_t i = 0; i < V; ++i) {
      const int32_t t = int32_t(i);
      if (best.size() == n && !before(t, best.back())) continue;
      best.insert(std::upper_bound(best.begin(), best.end(), t, before), t);
      if (best.size() > n) best.pop_back();
    }
    for (int32_t t : best) p.top.push_back({t, float(double(logits[t]) - lse)});
  }
  return p;
}

PickedToken pick_token(Sampler& sampler, const float* logits, int64_t V, const std::vector<int32_t>& history,
                       const TokenConstraint* constraint, const std::vector<int32_t>& banned, int top_n,
                       int32_t draft) {
  auto choose = [&](const float* l) { return draft >= 0 ? sampler.verify(l, V, history, draft) : sampler.sample(l, V, history); };
  int32_t id = -1;
  if (!constraint && banned.empty()) {
    id = choose(logits);
  } else {
    constexpr float kNone = -std::numeric_limits<float>::infinity();
    std::vector<float> l(logits, logits + V);
    ban_tokens(l.data(), V, banned);
    const bool greedy = sampler.params().temperature <= 0;
    if (constraint && greedy) {
      const int32_t t = greedy_token(sampler.params(), l.data(), V, history);
      if (l[size_t(t)] != kNone && constraint->allows(t)) id = t;
    }
    if (id < 0) {
      std::vector<uint8_t> allowed;
      if (constraint) {
        size_t n = constraint->mask(allowed);
        for (int32_t b : banned)
          if (b >= 0 && b < V && allowed[size_t(b)]) allowed[size_t(b)] = 0, --n;
        if (n == 0) return PickedToken{};
        for (int64_t i = 0; i < V; ++i)
          if (!allowed[size_t(i)]) l[size_t(i)] = kNone;
      }
      id = choose(l.data());
      // A draw may land on a weightless token only through rounding: take the best allowed one instead.
      if (l[size_t(id)] == kNone) id = argmax(l.data(), V);
    }
  }
  if (top_n < 0) {
    PickedToken p;
    p.id = id;
    return p;
  }
  return token_logprobs(logits, V, id, top_n);
}

}  // namespace g4
