// Host sampling: greedy, seeds, the top-k / top-p / min-p cuts, penalties, and the sampled
// frequencies against the softmax they should follow.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "model/sampler.h"

namespace g4 {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

TEST(Sampler, GreedyAndTies) {
  Sampler s(SamplingParams{});
  EXPECT_EQ(s.sample(kLogits.data(), 5, {}), 1);  // first of the tied maxima
  EXPECT_EQ(argmax(kLogits.data(), 5), 1);
}

TEST(Sampler, SeedReproducesAndTopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(kLogits.data(), 5, {}), b.sample(kLogits.data(), 5, {}));
  p.top_k = 1;
  Sampler k1(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(k1.sample(kLogits.data(), 5, {}), 1);
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.seed = 7;
  Sampler s(p);
  const int n = 40000;
  std::vector<int> count(5);
  for (int i = 0; i < n; ++i) ++count[size_t(s.sample(kLogits.data(), 5, {}))];
  double z = 0;
  for (float l : kLogits) z += std::exp(l / 2.0);
  for (size_t i = 0; i < 5; ++i) {
    const double pi = std::exp(kLogits[i] / 2.0) / z;
    const double sd = std::sqrt(pi * (1 - pi) / n);
    EXPECT_NEAR(double(count[i]) / n, pi, 5 * sd + 1e-9) << i;
  }
}

TEST(Sampler, MinPAndTopPCut) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.5f;  // keeps tokens with prob >= half the top: 1 and 3 (e^3 each), not 2 (e^2 < e^3/2)
  Sampler s(p);
  for (int i = 0; i < 200; ++i) {
    const int t = s.sample(kLogits.data(), 5, {});
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  p.min_p = 0;
  p.top_p = 0.3f;  // the top token alone already has ~0.39 of the mass
  Sampler tp(p);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(tp.sample(kLogits.data(), 5, {}), 1);
}

TEST(Sampler, RepeatPenaltyMovesGreedyChoice) {
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  EXPECT_EQ(s.sample(kLogits.data(), 5, {1}), 3);     // 3/2 < 3
  EXPECT_EQ(s.sample(kLogits.data(), 5, {1, 3}), 2);  // both halved to 1.5 < 2
  p.repeat_penalty = 1.0f;
  p.presence_penalty = 10.0f;
  Sampler pp(p);
  EXPECT_EQ(pp.sample(kLogits.data(), 5, {1, 3, 2}), 0);
}

TEST(Sampler, InvalidParametersAreRejected) {
  auto bad = [](auto edit) {
    SamplingParams p;
    edit(p);
    EXPECT_THROW(validate(p), Error);
  };
  bad([](SamplingParams& p) { p.temperature = -1; });
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.top_p = 0; });
  bad([](SamplingParams& p) { p.top_p = 1.5f; });
  bad([](SamplingParams& p) { p.min_p = -0.1f; });
  bad([](SamplingParams& p) { p.top_k = -2; });
  bad([](SamplingParams& p) { p.repeat_penalty = 0; });
}

}  // namespace
}  // namespace g4
