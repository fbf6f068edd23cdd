// Conversation: greedy generation equals the HF fixture; a continued conversation (cache kept, pending
// token fed with the next input) equals generating the whole sequence at once; stop rules and cancel.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/backend.h"
#include "base/error.h"
#include "engine/conversation.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/session.h"

namespace g4 {
namespace {

std::vector<int32_t> ints(const SafetensorsFile& f, const char* name) {
  const TensorInfo& t = *f.find(name);
  std::vector<int32_t> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

struct Fixture {
  std::unique_ptr<Backend> be = make_backend("ref");
  std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window";
  std::unique_ptr<Model> model = Model::load(dir + "/model", *be);
  SafetensorsFile expected{dir + "/expected.safetensors"};
};

TEST(Conversation, GreedyMatchesFixtureAndStreamsEveryToken) {
  Fixture f;
  const auto prompt = ints(f.expected, "prompt"), greedy = ints(f.expected, "greedy_tokens");
  Conversation c(*f.model, 256);
  GenerateOptions o;
  o.max_new_tokens = int64_t(greedy.size());
  std::vector<int32_t> streamed;
  GenerateResult r = c.generate(prompt, o, [&](int32_t t) { streamed.push_back(t); return true; });
  EXPECT_EQ(r.tokens, greedy);
  EXPECT_EQ(streamed, greedy);
  EXPECT_EQ(r.reason, StopReason::kMaxTokens);
  EXPECT_EQ(r.prompt_tokens, int64_t(prompt.size()));
}

TEST(Conversation, ContinuingReusesTheCacheAndMatchesOneShot) {
  Fixture f;
  const auto prompt = ints(f.expected, "prompt");
  GenerateOptions o;
  o.max_new_tokens = 5;
  Conversation c(*f.model, 256);
  GenerateResult first = c.generate(prompt, o, nullptr);
  const std::vector<int32_t> turn2 = {7, 8, 9, 10};
  GenerateResult second = c.append_and_generate(turn2, o, nullptr);
  EXPECT_EQ(second.reused_tokens, int64_t(prompt.size()) + 4);  // the 5th sampled token was pending
  EXPECT_EQ(second.prompt_tokens, 1 + 4);

  std::vector<int32_t> whole = prompt;
  whole.insert(whole.end(), first.tokens.begin(), first.tokens.end());
  whole.insert(whole.end(), turn2.begin(), turn2.end());
  Conversation fresh(*f.model, 256);
  EXPECT_EQ(fresh.generate(whole, o, nullptr).tokens, second.tokens);

  // generate() with a prompt extending the cached tokens reuses them too.
  std::vector<int32_t> longer = c.tokens();
  longer.push_back(11);
  GenerateResult third = c.generate(longer, o, nullptr);
  EXPECT_EQ(third.reused_tokens, int64_t(c.tokens().size() - third.tokens.size()) - 2);
  // ...and one that diverges keeps only the common prefix (<bos>) and answers as a fresh conversation.
  ASSERT_EQ(c.tokens()[0], 2);
  ASSERT_NE(c.tokens()[1], 5);
  GenerateResult other = c.generate({2, 5}, o, nullptr);
  EXPECT_EQ(other.reused_tokens, 1);
  Conversation fresh2(*f.model, 256);
  EXPECT_EQ(fresh2.generate({2, 5}, o, nullptr).tokens, other.tokens);
}

TEST(Conversation, StopTokenCancelAndContext) {
  Fixture f;
  const auto prompt = ints(f.expected, "prompt"), greedy = ints(f.expected, "greedy_tokens");
  GenerateOptions o;
  o.max_new_tokens = 20;
  // The stop token is the first greedy token unlike the first one (greedy: 1644 x 4, then 167), so the reply
  // must run past the first token and end exactly there, stop token included.
  size_t k = 1;
  while (k < greedy.size() && greedy[k] == greedy[0]) ++k;
  ASSERT_GE(k, 2u);
  ASSERT_LT(k, greedy.size());
  o.stop_ids = {greedy[k]};
  Conversation c(*f.model, 256);
  GenerateResult r = c.generate(prompt, o, nullptr);
  EXPECT_EQ(r.reason, StopReason::kStopToken);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + std::ptrdiff_t(k + 1)));

  o.stop_ids.clear();
  int n = 0;
  r = c.generate(prompt, o, [&](int32_t) { return ++n < 3; });
  EXPECT_EQ(r.reason, StopReason::kCancelled);
  EXPECT_EQ(r.tokens.size(), 3u);

  Conversation small(*f.model, int64_t(prompt.size()) + 2);
  r = small.generate(prompt, o, nullptr);
  EXPECT_EQ(r.reason, StopReason::kContextFull);
  EXPECT_EQ(r.tokens.size(), 3u);  // positions P and P+1 are fed; the third token is sampled from P+1
  Conversation tiny(*f.model, 4);
  EXPECT_THROW(tiny.generate(prompt, o, nullptr), Error);
  EXPECT_THROW(tiny.generate({}, o, nullptr), Error);
}

// Tokens chosen by the backend (Backend::sample_rows through Session::forward_pick, the default) equal
// tokens sampled on the host from downloaded logits, for greedy and seeded sampling with every cut and the
// penalties, with a chunked prompt and a continued conversation. On ref, whose sample_rows is the default
// that cpu shares (tests/backend/sample_rows_test.cc checks both; cuda_sample_rows_test.cc the device's).
TEST(Conversation, BackendSamplingEqualsHostSampling) {
  std::vector<SamplingParams> params(4);
  params[0].repeat_penalty = 1.5f, params[0].presence_penalty = 0.5f;  // greedy + penalties
  params[1].temperature = 0.8f, params[1].top_k = 20;
  params[2].temperature = 1.2f, params[2].top_p = 0.9f, params[2].min_p = 0.02f, params[2].frequency_penalty = 0.3f;
  params[3].temperature = 2.0f;
  for (const char* name : {"ref"}) {
    auto be = make_backend(name, 2);
    const std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window";
    auto model = Model::load(dir + "/model", *be);
    SafetensorsFile expected{dir + "/expected.safetensors"};
    const auto prompt = ints(expected, "prompt");
    for (size_t pi = 0; pi < params.size(); ++pi)
      for (uint64_t seed : {1u, 2u}) {
        GenerateOptions o;
        o.max_new_tokens = 8;
        o.prefill_chunk = 3;
        o.sampling = params[pi];
        o.sampling.seed = seed;
        Conversation dev(*model, 256), host(*model, 256);
        GenerateOptions oh = o;
        oh.host_sampling = true;
        const std::vector<int32_t> a = dev.generate(prompt, o, nullptr).tokens, b = host.generate(prompt, oh, nullptr).tokens;
        EXPECT_EQ(a, b) << name << " params " << pi << " seed " << seed;
        EXPECT_EQ(a.size(), 8u);
        EXPECT_EQ(dev.append_and_generate({7, 8}, o, nullptr).tokens, host.append_and_generate({7, 8}, oh, nullptr).tokens)
            << name << " params " << pi << " seed " << seed << " (continued)";
      }
  }
}

TEST(Conversation, ForwardPickBadInputIsOneClearError) {
  Fixture f;
  KvCacheOptions o;
  o.ctx_size = 64;
  KvCache kv(*f.model, o);
  RowSampling sampled;
  sampled.params.temperature = 0.7f;
  EXPECT_THROW(forward_pick(*f.model, kv, {{0, {1, 2}, LogitsMode::kAll}}, {sampled}), Error);
  EXPECT_THROW(forward_pick(*f.model, kv, {{0, {1, 2}, LogitsMode::kLast}}, {}), Error);
  EXPECT_EQ(kv.pos(0), 0);  // nothing ran
  Session s(*f.model, 16);
  EXPECT_THROW(s.forward_pick({}, RowSampling{}), Error);
  EXPECT_EQ(forward_pick(*f.model, kv, {{0, {1, 2}, LogitsMode::kNone}}, {RowSampling{}}), std::vector<int32_t>{-1});
  EXPECT_EQ(kv.pos(0), 2);
}

// A verify through forward_pick (a token at every row, chosen by the backend) picks at each row what greedy
// decoding picks from that row's logits, with the chunk's earlier tokens in the penalties' history; a kLast
// chunk beside it still gets one token. The chunk is the model's own greedy continuation, which repeats
// itself, so a presence penalty changes the choice at some row only when that history is right.
TEST(Conversation, ForwardPickEveryRowIsEachRowsGreedyToken) {
  Fixture f;
  const auto prompt = ints(f.expected, "prompt"), greedy = ints(f.expected, "greedy_tokens");
  ASSERT_GE(greedy.size(), 8u);
  KvCacheOptions o;
  o.ctx_size = 128;
  o.n_seq = 2;
  KvCache a(*f.model, o), b(*f.model, o);
  const std::vector<int32_t> tail(greedy.begin(), greedy.begin() + 8);
  forward_batch(*f.model, a, {{0, prompt, LogitsMode::kNone}});
  forward_batch(*f.model, b, {{0, prompt, LogitsMode::kNone}});
  RowSampling pick;
  pick.params.presence_penalty = 50.f;
  pick.history = prompt;
  pick.history.push_back(tail[0]);  // as a verify's pick: the history ends with the pending token
  const std::vector<std::vector<float>> rows =
      forward_batch(*f.model, a, {{0, tail, LogitsMode::kAll}, {1, {7}, LogitsMode::kLast}});
  const std::vector<int32_t> ids = forward_pick(*f.model, b, {{0, tail, LogitsMode::kAll}, {1, {7}, LogitsMode::kLast}},
                                                {pick, RowSampling{}});
  const int64_t V = f.model->spec().vocab_size;
  ASSERT_EQ(ids.size(), tail.size() + 1);
  std::vector<int32_t> history = pick.history;
  int history_mattered = 0;
  for (size_t i = 0; i < tail.size(); ++i) {
    if (i > 0) history.push_back(tail[i]);
    const float* row = rows[0].data() + int64_t(i) * V;
    EXPECT_EQ(ids[i], greedy_token(pick.params, row, V, history)) << "row " << i;
    history_mattered += greedy_token(pick.params, row, V, history) != greedy_token(pick.params, row, V, pick.history);
  }
  EXPECT_GT(history_mattered, 0) << "the test's text does not exercise the rows' histories";
  EXPECT_EQ(ids.back(), argmax(rows[1].data(), V));
}

}  // namespace
}  // namespace g4
