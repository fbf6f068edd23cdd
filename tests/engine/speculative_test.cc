// Speculative decoding (engine/speculative.h), greedy: n-gram speculation gives plain greedy's tokens over
// 2,600 tokens of the shipped model (window 128, crossed about 20 times with the prompt) with drafts accepted and no rollback
// recomputation; a drafter wrong at draft position j (every j) is rolled back and the output is still
// plain greedy's; stop ids and the token budget inside an accepted run end exactly where plain decoding
// does, and the conversation continues from there as plain decoding's would. Plus the n-gram drafter.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"
#include "engine/conversation.h"
#include "engine/drafter.h"
#include "engine/kv_options.h"
#include "engine/model_bundle.h"
#include "model/model.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::kTinyKjvModel;

TEST(NgramDrafter, LongestMostRecentMatchAndRepeats) {
  NgramDrafter d;
  // "5 6 7" occurred twice; the most recent one (followed by 9 1) wins over the older (followed by 8).
  EXPECT_EQ(d.draft({5, 6, 7, 8, 2, 5, 6, 7, 9, 1, 3, 5, 6, 7}, 2), (std::vector<int32_t>{9, 1}));
  // The trigram "4 6 7" never occurred: the bigram "6 7" is looked up next, then the unigram.
  EXPECT_EQ(d.draft({6, 7, 3, 1, 4, 6, 7}, 3), (std::vector<int32_t>{3, 1, 4}));
  EXPECT_EQ(d.draft({7, 2, 9, 7}, 2), (std::vector<int32_t>{2, 9}));
  // A match running into the tail repeats the period: "1 2 1 2 1 2" continues "1 2 1 2 1".
  EXPECT_EQ(d.draft({1, 2, 1, 2, 1, 2}, 5), (std::vector<int32_t>{1, 2, 1, 2, 1}));
  EXPECT_EQ(d.draft({4, 4}, 3), (std::vector<int32_t>{4, 4, 4}));
  EXPECT_TRUE(d.draft({1, 2, 3, 4}, 4).empty());
  EXPECT_TRUE(d.draft({1}, 4).empty());
  EXPECT_TRUE(d.draft({1, 2, 1}, 0).empty());
  EXPECT_THROW(NgramDrafter(2, 3), Error);
}

struct Kjv {
  ModelBundle b;
  explicit Kjv(const std::string& backend) : b(ModelBundle::load(kTinyKjvModel, backend, LoadOptions{}, 2)) {}
};

// Plain greedy and n-gram speculative greedy from the same prompt and cache options.
// adaptive = false: every proposal is verified (more rejections, and on ref, where drafting does not pay
// and the monitor keeps it off, any verification at all). adaptive = true runs the monitor on a clock that
// stands still: it ignores zero timings and decides from the acceptance and the backend's default verify
// cost alone, so what it does (and what this test counts) does not depend on how loaded the machine is
// (with the wall clock one run of ctest -j2 once saw too few drafts accepted).
void expect_same_as_plain(const std::string& backend, int64_t n_tokens, int draft_max, bool adaptive) {
  Kjv k(backend);
  std::string text;
  for (int i = 0; i < 4; ++i)
    text += "And God said, Let there be light: and there was light. And God saw the light, that it was good: "
            "and God divided the light from the darkness.\n";
  const std::vector<int32_t> prompt = k.b.tokenizer->encode(text, true);
  const KvCacheOptions kvo = kv_options_for(backend, int64_t(prompt.size()) + n_tokens + 8, 1);
  GenerateOptions go;
  go.max_new_tokens = n_tokens;  // no stop ids: the whole budget is generated
  Conversation plain(*k.b.model, kvo);
  const GenerateResult want = plain.generate(prompt, go, nullptr);
  ASSERT_EQ(int64_t(want.tokens.size()), n_tokens);

  go.draft.drafter = std::make_shared<NgramDrafter>();
  go.draft.max = draft_max;
  go.draft.adaptive = adaptive;
  go.draft.clock = [] { return 0.0; };
  Conversation spec(*k.b.model, kvo);
  std::vector<int32_t> streamed;
  const GenerateResult got = spec.generate(prompt, go, [&](int32_t t) { streamed.push_back(t); return true; });
  ASSERT_EQ(got.tokens.size(), want.tokens.size());
  for (size_t i = 0; i < want.tokens.size(); ++i) ASSERT_EQ(got.tokens[i], want.tokens[i]) << "token " << i;
  EXPECT_EQ(streamed, want.tokens);
  EXPECT_EQ(got.reason, want.reason);
  const DraftStats& s = got.draft;
  EXPECT_GT(s.accepted, n_tokens / (adaptive ? 10 : 5)) << "drafts were hardly accepted: the test would not exercise acceptance";
  EXPECT_GE(s.drafted - s.accepted, adaptive ? 1 : 10) << "too few rejections: rollback hardly exercised";
  EXPECT_EQ(s.recomputed, 0);
  // The cache after generation equals plain decoding's: the same tokens, the last one pending.
  EXPECT_EQ(spec.session().tokens(), plain.session().tokens());
  int64_t acc = 0, dr = 0;
  for (size_t j = 0; j < s.accepted_at.size(); ++j) acc += s.accepted_at[j], dr += s.drafted_at[j];
  EXPECT_EQ(acc, s.accepted);
  EXPECT_EQ(dr, s.drafted);
  std::printf("%s: %lld tokens, %lld verifies, drafted %lld, accepted %lld, plain steps %lld (off %lld), final length %d\n",
              backend.c_str(), static_cast<long long>(n_tokens), static_cast<long long>(s.verifies),
              static_cast<long long>(s.drafted), static_cast<long long>(s.accepted), static_cast<long long>(s.plain_steps),
              static_cast<long long>(s.off_steps), s.final_length);
  for (const auto& e : s.events) std::printf("  %s\n", e.c_str());
}

TEST(SpeculativeGreedy, NgramEqualsPlainOverTheSlidingWindowCpu) {
  expect_same_as_plain("cpu", 2600, 4, true);
  expect_same_as_plain("cpu", 2600, 4, false);
}
TEST(SpeculativeGreedy, NgramEqualsPlainRef) { expect_same_as_plain("ref", 400, 3, false); }

// deep-small-window (window 8), slack 4: drafts of 4 tokens from an oracle that knows plain greedy's
// continuation but proposes a wrong token at draft position j.
class SpeculativeRollback : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    be_ = make_backend(GetParam(), 1);
    model_ = Model::load(std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window/model", *be_);
    V_ = int32_t(model_->spec().vocab_size);
    kvo_.ctx_size = 256;
    kvo_.slack = 4;
  }
  // The continuation of `context` in plain greedy's output, with draft position `wrong` changed.
  std::shared_ptr<Drafter> oracle(const std::vector<int32_t>& prompt, const std::vector<int32_t>& plain, int wrong) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), plain.begin(), plain.end());
    return std::make_shared<FunctionDrafter>([all, wrong, V = V_](const std::vector<int32_t>& ctx, int n) {
      std::vector<int32_t> out;
      if (ctx.size() > all.size() || !std::equal(ctx.begin(), ctx.end(), all.begin())) return out;  // diverged
      for (int j = 0; j < n && ctx.size() + size_t(j) < all.size(); ++j) {
        const int32_t t = all[ctx.size() + size_t(j)];
        out.push_back(j == wrong ? (t + 1) % V : t);
      }
      return out;
    });
  }
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
  KvCacheOptions kvo_;
  int32_t V_ = 0;
  const std::vector<int32_t> prompt_ = {2, 17, 300, 41, 999, 5, 1200, 77, 8, 640, 13};
};

TEST_P(SpeculativeRollback, RejectionAtEveryDraftPositionRollsBack) {
  GenerateOptions go;
  go.max_new_tokens = 60;
  Conversation plain(*model_, kvo_);
  const std::vector<int32_t> want = plain.generate(prompt_, go, nullptr).tokens;
  const int k = 4;
  for (int wrong = 0; wrong <= k; ++wrong) {  // wrong == k: every draft is right
    go.draft.drafter = oracle(prompt_, want, wrong);
    go.draft.max = k;
    go.draft.adaptive = false;
    Conversation spec(*model_, kvo_);
    const GenerateResult got = spec.generate(prompt_, go, nullptr);
    EXPECT_EQ(got.tokens, want) << "wrong at " << wrong;
    EXPECT_EQ(spec.session().tokens(), plain.session().tokens()) << "wrong at " << wrong;
    const DraftStats& s = got.draft;
    EXPECT_EQ(s.recomputed, 0);
    ASSERT_EQ(s.accepted_at.size(), size_t(k));
    for (int j = 0; j < k; ++j) {
      EXPECT_GT(s.drafted_at[size_t(j)], 0) << "wrong at " << wrong << ", position " << j;
      if (j < wrong) EXPECT_EQ(s.accepted_at[size_t(j)], s.drafted_at[size_t(j)]) << "wrong at " << wrong << ", position " << j;
      else EXPECT_EQ(s.accepted_at[size_t(j)], 0) << "wrong at " << wrong << ", position " << j;
    }
    // Each verify yields its accepted drafts plus one token; the first token comes from the prompt's logits.
    EXPECT_EQ(s.accepted + s.verifies + s.plain_steps + 1, int64_t(want.size())) << "wrong at " << wrong;
    if (wrong == k) {
      EXPECT_GE(s.accepted, 4 * (s.verifies - 2)) << "an oracle's drafts must all be accepted";
    }
  }
}

// A stop id or the token budget inside an accepted run ends there, and a next turn continues as plain.
TEST_P(SpeculativeRollback, StopInsideAnAcceptedRunAndContinue) {
  GenerateOptions go;
  go.max_new_tokens = 40;
  const std::vector<int32_t> turn2 = {9, 10, 11};
  Conversation ref(*model_, kvo_);
  const std::vector<int32_t> whole = ref.generate(prompt_, go, nullptr).tokens;
  for (size_t stop_at : {size_t(6), size_t(13)}) {
    for (bool by_budget : {false, true}) {
      GenerateOptions po = go;
      if (by_budget) po.max_new_tokens = int64_t(stop_at) + 1;
      else po.stop_ids = {whole[stop_at]};
      Conversation plain(*model_, kvo_);
      const GenerateResult a = plain.generate(prompt_, po, nullptr);
      const std::vector<int32_t> seen = plain.tokens(), cached = plain.session().tokens();
      const GenerateResult a2 = plain.append_and_generate(turn2, po, nullptr);
      GenerateOptions so = po;
      so.draft.drafter = oracle(prompt_, whole, 99);
      so.draft.max = 4;
      so.draft.adaptive = false;
      Conversation spec(*model_, kvo_);
      const GenerateResult b = spec.generate(prompt_, so, nullptr);
      EXPECT_EQ(b.tokens, a.tokens);
      EXPECT_EQ(b.reason, a.reason);
      EXPECT_EQ(spec.tokens(), seen);
      EXPECT_EQ(spec.session().tokens(), cached);
      EXPECT_GT(b.draft.accepted, 0);
      so.draft.drafter.reset();  // the next turn decodes plainly from the state speculation left
      const GenerateResult b2 = spec.append_and_generate(turn2, so, nullptr);
      EXPECT_EQ(b2.tokens, a2.tokens) << "stop at " << stop_at << (by_budget ? " (budget)" : " (stop id)");
    }
  }
  // The context limit inside an accepted run.
  KvCacheOptions small = kvo_;
  small.ctx_size = int64_t(prompt_.size()) + 9;
  go.max_new_tokens = 40;
  Conversation plain(*model_, small);
  const GenerateResult a = plain.generate(prompt_, go, nullptr);
  go.draft.drafter = oracle(prompt_, whole, 99);
  go.draft.max = 4;
  Conversation spec(*model_, small);
  const GenerateResult b = spec.generate(prompt_, go, nullptr);
  EXPECT_EQ(a.reason, StopReason::kContextFull);
  EXPECT_EQ(b.reason, a.reason);
  EXPECT_EQ(b.tokens, a.tokens);
}

TEST_P(SpeculativeRollback, BadDrafterIsAClearError) {
  GenerateOptions go;
  go.max_new_tokens = 10;
  go.draft.drafter = std::make_shared<FunctionDrafter>([V = V_](const std::vector<int32_t>&, int) {
    return std::vector<int32_t>{V};
  });
  Conversation spec(*model_, kvo_);
  EXPECT_THROW(spec.generate(prompt_, go, nullptr), Error);
  go.draft.drafter = std::make_shared<NgramDrafter>();
  go.draft.max = 2;
  go.draft.min = 3;
  EXPECT_THROW(spec.generate(prompt_, go, nullptr), Error);
}

// A backend that computes verifies of at most 3 tokens exactly as one-token steps (cuda: 9): a longer draft
// asked for is capped at 2, says so in the stats' events, and the output stays plain greedy's; at 1 token
// (cuda's precise mode) nothing is drafted.
TEST(SpeculativeGreedy, DraftCappedAtTheBackendsExactVerify) {
  struct ExactUpTo3 : RefBackend {
    int exact_step_tokens() const override { return 3; }
  } be;
  auto model = Model::load(std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window/model", be);
  KvCacheOptions kvo;
  kvo.ctx_size = 256;
  kvo.slack = 8;
  const std::vector<int32_t> prompt = {2, 17, 300, 41, 999, 5, 1200, 77};
  GenerateOptions go;
  go.max_new_tokens = 30;
  Conversation plain(*model, kvo);
  const std::vector<int32_t> want = plain.generate(prompt, go, nullptr).tokens;
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), want.begin(), want.end());
  go.draft.drafter = std::make_shared<FunctionDrafter>([all](const std::vector<int32_t>& ctx, int n) {
    std::vector<int32_t> out;
    for (size_t i = ctx.size(); i < all.size() && int(out.size()) < n; ++i) out.push_back(all[i]);
    return out;
  });
  go.draft.max = 6;
  go.draft.adaptive = false;
  Conversation spec(*model, kvo);
  const GenerateResult got = spec.generate(prompt, go, nullptr);
  EXPECT_EQ(got.tokens, want);
  EXPECT_EQ(got.draft.draft_max, 2);
  ASSERT_EQ(got.draft.drafted_at.size(), size_t(2));
  EXPECT_GT(got.draft.accepted, 0);
  const bool said = std::any_of(got.draft.events.begin(), got.draft.events.end(),
                                [](const std::string& e) { return e.find("draft length 6 capped at 2") != std::string::npos; });
  EXPECT_TRUE(said) << "no event says the draft length was capped";
  // A backend exact for one token only (cuda's precise mode): no drafts at all, plain greedy's output.
  struct ExactUpTo1 : RefBackend {
    int exact_step_tokens() const override { return 1; }
  } be1;
  auto model1 = Model::load(std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window/model", be1);
  Conversation spec1(*model1, kvo);
  const GenerateResult got1 = spec1.generate(prompt, go, nullptr);
  EXPECT_EQ(got1.tokens, want);
  EXPECT_EQ(got1.draft.draft_max, 0);
  EXPECT_EQ(got1.draft.drafted, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SpeculativeRollback, ::testing::Values("ref", "cpu"));

}  // namespace
}  // namespace g4
