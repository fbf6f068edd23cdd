// The assistant drafter shipped beside the tiny model (models/tiny-kjv-assistant, trained by
// tools/train_tiny/train_assistant.py) loads with g4's loader and is a real drafter: on KJV text most of
// its first drafts are the target's greedy tokens (measured 80-91%, docs/PERF.md), and greedy output with
// it equals plain greedy. On cuda the same run goes through recorded tapped steps (CUDA graphs that refill
// the taps the drafter reads) and the drafter's device-side steps, so stale taps would show as drafts the
// target rejects. And greedy with it over 2,600 tokens is plain greedy.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "engine/assistant_drafter.h"
#include "engine/conversation.h"
#include "engine/model_bundle.h"
#include "util/gpu.h"

namespace g4 {
namespace {

const std::string kModels = std::string(G4_TEST_DATA) + "/../../models";

class ShippedAssistant : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedAssistant, MostFirstDraftsAreAcceptedOnKjvText) {
  if (GetParam() == "cuda") G4_SKIP_OR_FAIL_WITHOUT_GPU();
  ModelBundle b = ModelBundle::load(kModels + "/tiny-kjv", GetParam(), LoadOptions{}, 1);
  const Model& m = *b.model;
  auto drafter = AssistantDrafter::load(kModels + "/tiny-kjv-assistant", m, LoadOptions{});
  const std::vector<int32_t> prompt = b.tokenizer->encode(
      "And the LORD spake unto Moses, saying, Speak unto the children of Israel, and say unto them,\n", true);
  KvCacheOptions kvo;
  kvo.ctx_size = int64_t(prompt.size()) + 160;
  GenerateOptions go;
  go.max_new_tokens = 150;  // past the sliding window of 128
  Conversation plain(m, kvo);
  const std::vector<int32_t> want = plain.generate(prompt, go, nullptr).tokens;

  go.draft.drafter = drafter;
  go.draft.max = 2;
  go.draft.adaptive = false;  // every proposal verified
  Conversation spec(m, kvo);
  const GenerateResult r = spec.generate(prompt, go, nullptr);
  EXPECT_EQ(r.tokens, want);
  ASSERT_GT(r.draft.drafted_at[0], 30);
  const double first = double(r.draft.accepted_at[0]) / double(r.draft.drafted_at[0]);
  const double second = double(r.draft.accepted_at[1]) / double(r.draft.drafted_at[1]);
  std::printf("first drafts accepted %lld/%lld, both %lld/%lld\n", static_cast<long long>(r.draft.accepted_at[0]),
              static_cast<long long>(r.draft.drafted_at[0]), static_cast<long long>(r.draft.accepted_at[1]),
              static_cast<long long>(r.draft.drafted_at[1]));
  EXPECT_GT(first, 0.6);
  EXPECT_GT(second, 0.4);
}

// Greedy with the assistant over 2,600 tokens (the sliding window of 128 crossed about 20 times), every
// proposal of 4 verified: token for token plain greedy, with many drafts accepted and many rolled back, and
// no rollback recomputation (drafts stay within the ring's slack).
TEST_P(ShippedAssistant, GreedyOver2600TokensIsPlainGreedy) {
  if (GetParam() == "cuda") G4_SKIP_OR_FAIL_WITHOUT_GPU();
  ModelBundle b = ModelBundle::load(kModels + "/tiny-kjv", GetParam(), LoadOptions{}, 2);
  const Model& m = *b.model;
  const std::vector<int32_t> prompt = b.tokenizer->encode("In the beginning God created the heaven and the earth.\n", true);
  const int64_t n = 2600;
  KvCacheOptions kvo;
  kvo.ctx_size = int64_t(prompt.size()) + n + 8;
  GenerateOptions go;
  go.max_new_tokens = n;
  Conversation plain(m, kvo);
  const std::vector<int32_t> want = plain.generate(prompt, go, nullptr).tokens;
  ASSERT_EQ(int64_t(want.size()), n);

  go.draft.drafter = AssistantDrafter::load(kModels + "/tiny-kjv-assistant", m, LoadOptions{});
  go.draft.max = 4;
  go.draft.adaptive = false;
  Conversation spec(m, kvo);
  const GenerateResult r = spec.generate(prompt, go, nullptr);
  ASSERT_EQ(r.tokens.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(r.tokens[i], want[i]) << "token " << i;
  EXPECT_EQ(spec.session().tokens(), plain.session().tokens());
  EXPECT_GT(r.draft.accepted, n / 4) << "drafts hardly accepted: acceptance not exercised";
  EXPECT_GT(r.draft.drafted - r.draft.accepted, 100) << "few rejections: rollback hardly exercised";
  EXPECT_EQ(r.draft.recomputed, 0);
  std::printf("%s: %lld tokens, %lld verifies, drafted %lld, accepted %lld\n", GetParam().c_str(), static_cast<long long>(n),
              static_cast<long long>(r.draft.verifies), static_cast<long long>(r.draft.drafted),
              static_cast<long long>(r.draft.accepted));
}

INSTANTIATE_TEST_SUITE_P(Backends, ShippedAssistant, ::testing::Values("cpu", "cuda"));

}  // namespace
}  // namespace g4
