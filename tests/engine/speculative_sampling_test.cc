// Speculative decoding with temperature > 0: speculative sampling's tokens follow the exact processed
// softmax of the target (model/sampler.h token_distribution, what Sampler::sample draws from) at each of the first positions a draft decides (chi-square over
// thousands of seeds, the expected counts summed from the exact distribution given each run's prefix).
// The drafter proposes the most likely token and then the second most likely one, so acceptances and
// rejections at both draft positions and the bonus token all occur. Plain sampling passes the same test.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>
#include <random>

#include "backend/backend.h"
#include "engine/conversation.h"
#include "engine/drafter.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"

namespace g4 {
namespace {

// Exact processed next-token distributions of the target, by prefix.
struct Exact {
  const Model& model;
  SamplingParams sp;
  std::map<std::vector<int32_t>, TokenDistribution> memo;
  Session session{model, 64};
  const TokenDistribution& at(const std::vector<int32_t>& ctx) {
    auto it = memo.find(ctx);
    if (it != memo.end()) return it->second;
    // One session, rolled back to the common prefix (at least one token runs, for fresh logits).
    const int64_t keep = std::min<int64_t>(session.cache().common_prefix(session.seq(), ctx), int64_t(ctx.size()) - 1);
    session.truncate(keep);
    const std::vector<float> l = session.forward(std::vector<int32_t>(ctx.begin() + keep, ctx.end()), LogitsMode::kLast);
    return memo[ctx] = token_distribution(sp, l.data(), int64_t(l.size()), ctx);
  }
};

// Pearson chi-square of observed counts against summed expectations (cells under 5 expected pooled);
// fails beyond the p = 1e-5 quantile (Wilson-Hilferty). Returns the total variation distance.
double check_counts(const std::map<int32_t, double>& expected, const std::map<int32_t, int>& observed, int n,
                    const std::string& what) {
  double chi = 0, tv = 0, pool_e = 0, pool_o = 0;
  int cells = 0;
  std::map<int32_t, bool> seen;
  for (const auto& [tok, e] : expected) {
    const auto it = observed.find(tok);
    const double o = it == observed.end() ? 0 : it->second;
    seen[tok] = true;
    tv += std::fabs(o - e);
    if (e >= 5) chi += (o - e) * (o - e) / e, ++cells;
    else pool_e += e, pool_o += o;
  }
  for (const auto& [tok, o] : observed)
    if (!seen.count(tok)) {
      ADD_FAILURE() << what << ": token " << tok << " has probability 0 but was drawn " << o << " times";
      pool_o += o;
    }
  if (pool_e > 0) chi += (pool_o - pool_e) * (pool_o - pool_e) / std::max(pool_e, 1.0), ++cells;
  const double df = std::max(1, cells - 1), z = 4.26;
  const double crit = df * std::pow(1 - 2 / (9 * df) + z * std::sqrt(2 / (9 * df)), 3);
  EXPECT_LT(chi, crit) << what << ": chi-square " << chi << " over " << df << " degrees of freedom";
  std::printf("%s: chi-square %.1f (df %.0f, limit %.1f), total variation %.4f\n", what.c_str(), chi, df, crit, tv / 2 / n);
  return tv / 2 / n;
}

TEST(SpeculativeSampling, TokenDistributionEqualsTheTargetsAtEveryDraftPosition) {
  auto be = make_backend("cpu", 1);
  auto model = Model::load(std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window/model", *be);
  GenerateOptions go;
  go.sampling.temperature = 0.8f;
  go.sampling.top_k = 8;
  go.sampling.top_p = 0.95f;
  go.sampling.repeat_penalty = 1.3f;
  go.max_new_tokens = 4;
  Exact exact{*model, go.sampling};
  const std::vector<int32_t> prompt = {2, 17, 300, 41, 999, 5, 1200, 77, 8, 640, 13};
  const int N = 3000;
  for (bool speculative : {true, false}) {
    GenerateOptions o = go;
    int64_t accepted = 0, drafted = 0;
    if (speculative) {
      o.draft.drafter = std::make_shared<FunctionDrafter>([&exact](const std::vector<int32_t>& ctx, int n) {
        std::vector<int32_t> out, c = ctx;
        for (int j = 0; j < n; ++j) {
          const TokenDistribution& d = exact.at(c);
          out.push_back(d.ids[std::min<size_t>(size_t(j % 2), d.ids.size() - 1)]);  // most likely, then second
          c.push_back(out.back());
        }
        return out;
      });
      o.draft.max = 2;
      o.draft.adaptive = false;
    }
    std::vector<std::map<int32_t, double>> expected(4);
    std::vector<std::map<int32_t, int>> observed(4);
    Conversation conv(*model, 64);
    for (int seed = 1; seed <= N; ++seed) {
      o.sampling.seed = uint64_t(seed);
      const GenerateResult r = conv.generate(prompt, o, nullptr);
      ASSERT_EQ(r.tokens.size(), 4u);
      std::vector<int32_t> ctx = prompt;
      for (size_t i = 0; i < 4; ++i) {
        const TokenDistribution& d = exact.at(ctx);
        for (size_t c = 0; c < d.ids.size(); ++c) expected[i][d.ids[c]] += d.p[c] / d.total;
        ++observed[i][r.tokens[i]];
        ctx.push_back(r.tokens[i]);
      }
      accepted += r.draft.accepted;
      drafted += r.draft.drafted;
    }
    for (size_t i = 1; i < 4; ++i)
      check_counts(expected[i], observed[i], N, std::string(speculative ? "speculative" : "plain") + " token " + std::to_string(i));
    if (speculative) {
      std::printf("drafted %lld, accepted %lld\n", static_cast<long long>(drafted), static_cast<long long>(accepted));
      EXPECT_GT(accepted, drafted / 20);
      EXPECT_LT(accepted, drafted * 9 / 10);
    }
  }
}

}  // namespace
}  // namespace g4
