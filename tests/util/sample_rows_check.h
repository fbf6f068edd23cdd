// The check of Backend::sample_rows shared by the backend tests (ref and cpu in tests/backend, cuda in
// tests/backend_cuda): for many seeds, parameter sets (greedy, temperature, top-k, top-p, min-p,
// penalties, combinations) and random logits (with many ties in some rows), the token each row gets from
// sample_rows with Sampler::next_row equals the token Sampler::sample picks from the same row on the host,
// over several consecutive tokens of one generator (so the generator must advance alike). Every other row
// also bans ids (its best token, a random one, ids out of range): the host samples from the row with those
// at -infinity.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/sampler.h"

namespace g4::test {

struct ChoiceCase {
  const char* name;
  SamplingParams p;
};

inline std::vector<ChoiceCase> choice_cases() {
  auto P = [](float t, int k, float tp, float mp, float rp = 1, float pres = 0, float freq = 0, int64_t last_n = 64) {
    SamplingParams p;
    p.temperature = t, p.top_k = k, p.top_p = tp, p.min_p = mp;
    p.repeat_penalty = rp, p.presence_penalty = pres, p.frequency_penalty = freq, p.repeat_last_n = last_n;
    return p;
  };
  return {
      {"greedy", P(0, 0, 1, 0)},
      {"greedy+penalties", P(0, 0, 1, 0, 1.3f, 0.4f, 0.25f)},
      {"greedy+top_k_ignored", P(0, 5, 0.5f, 0.2f)},
      {"temp 0.7", P(0.7f, 0, 1, 0)},
      {"temp 1.5", P(1.5f, 0, 1, 0)},
      {"temp 0.05", P(0.05f, 0, 1, 0)},
      {"top_k 1", P(1.0f, 1, 1, 0)},
      {"top_k 40", P(1.0f, 40, 1, 0)},
      {"top_k > V", P(0.9f, 1 << 20, 1, 0)},
      {"top_p 0.9", P(1.0f, 0, 0.9f, 0)},
      {"top_p 0.3", P(2.0f, 0, 0.3f, 0)},
      {"min_p 0.05", P(1.0f, 0, 1, 0.05f)},
      {"min_p 0.5", P(3.0f, 0, 1, 0.5f)},
      {"gemma defaults", P(1.0f, 64, 0.95f, 0)},
      {"all cuts", P(0.8f, 100, 0.8f, 0.02f)},
      {"all + penalties", P(1.1f, 50, 0.9f, 0.01f, 1.2f, 0.3f, 0.1f, 16)},
      {"penalties, negative", P(0.6f, 0, 1, 0, 0.7f, -0.5f, -0.2f, 1000)},
      {"penalties, last_n 0", P(1.0f, 0, 1, 0, 2.0f, 1.0f, 1.0f, 0)},
  };
}

// Random logits for one row: normal with a spread of `scale`, or (ties) a few distinct values, or (masked)
// a quarter of the entries at -infinity.
enum class RowKind { kNormal, kTies, kMasked };
inline std::vector<float> random_row(std::mt19937& rng, int64_t V, RowKind kind, float scale) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(V));
  for (float& x : v) x = d(rng);
  if (kind == RowKind::kTies)
    for (float& x : v) x = std::round(x * 2.f / scale) * 0.5f;  // ~10 distinct values
  if (kind == RowKind::kMasked)
    for (size_t i = 0; i < v.size(); i += 4) v[i] = -std::numeric_limits<float>::infinity();
  return v;
}

// Runs `seeds` generators per case for `steps` tokens each, `rows` rows per sample_rows call (each row
// its own case and generator), on vocabularies of size V; every token must match. Returns the number of
// tokens compared.
inline int64_t check_sample_rows(Backend& be, int64_t V, int seeds, int steps, int rows, uint32_t data_seed) {
  const std::vector<ChoiceCase> cases = choice_cases();
  std::mt19937 rng(data_seed);
  std::uniform_int_distribution<int32_t> tok(-2, int32_t(V) + 1);  // a few ids out of range: ignored
  int64_t compared = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    for (size_t c0 = 0; c0 < cases.size(); c0 += size_t(rows)) {
      const size_t n = std::min(cases.size() - c0, size_t(rows));
      std::vector<Sampler> host, dev;
      std::vector<std::vector<int32_t>> hist(n);
      for (size_t r = 0; r < n; ++r) {
        SamplingParams p = cases[c0 + r].p;
        p.seed = uint64_t(seed) * 7919u + c0 + r;
        host.emplace_back(p);
        dev.emplace_back(p);
        const int len = int(rng() % 40);
        for (int i = 0; i < len; ++i) hist[r].push_back(tok(rng));
      }
      for (int step = 0; step < steps; ++step) {
        const RowKind kind = RowKind((seed + step) % 3);
        const float scale = step % 2 ? 4.f : 1.f;
        std::vector<float> all;
        for (size_t r = 0; r < n; ++r) {
          std::vector<float> row = random_row(rng, V, kind, scale);
          // Make the penalised tokens matter: lift the history's tokens to near the top.
          for (int32_t t : hist[r])
            if (t >= 0 && t < V && rng() % 2) row[size_t(t)] = scale * 3.f;
          all.insert(all.end(), row.begin(), row.end());
        }
        Tensor t = be.empty({int64_t(n), V});
        be.upload(t, all.data());
        std::vector<RowSampling> picks;
        std::vector<float> masked = all;  // the host's rows, banned ids at -infinity
        for (size_t r = 0; r < n; ++r) {
          picks.push_back(dev[r].next_row(hist[r]));
          if (V < 5 || (seed + step + int(r)) % 2) continue;
          float* row = masked.data() + r * size_t(V);
          const int32_t best = int32_t(std::max_element(row, row + V) - row);
          picks.back().banned = {best, int32_t(rng() % uint32_t(V)), -1, int32_t(V), best};
          for (int32_t b : picks.back().banned)
            if (b >= 0 && b < V) row[b] = -std::numeric_limits<float>::infinity();
        }
        const std::vector<int32_t> got = be.sample_rows(t, picks);
        EXPECT_EQ(got.size(), n);
        if (got.size() != n) return compared;
        for (size_t r = 0; r < n; ++r) {
          const int32_t want = host[r].sample(masked.data() + r * size_t(V), V, hist[r]);
          if (!picks[r].banned.empty()) EXPECT_NE(got[r], picks[r].banned[0]) << "a banned id was chosen";
          EXPECT_EQ(got[r], want) << be.name() << " V " << V << " case '" << cases[c0 + r].name << "' seed " << seed
                                  << " step " << step << " rows " << n;
          hist[r].push_back(want);
          ++compared;
        }
      }
    }
  }
  return compared;
}

}  // namespace g4::test
