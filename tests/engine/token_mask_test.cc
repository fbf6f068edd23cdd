#include "engine/token_mask.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/token_pick.h"

namespace g4 {
namespace {

using nlohmann::json;

// A small vocabulary with shared prefixes, string-breaking tokens, a symbol and an end token.
std::vector<TokenVocab::Token> small_vocab() {
  std::vector<TokenVocab::Token> v;
  for (const char* t : {"{", "}", "\"", "\"a", "a", "ab", "b", "\":", ":", "1", "12", ",", " ", "true", "x\"",
                        "\\", "\\n", "\"}", "é", "\n", "{\"", "\":1}"})
    v.push_back({t, false});
  v.push_back({"<eos>", true});          // 22: the end token
  v.push_back({"<|\"|>", true});         // 23: a symbol the JSON dialect never uses
  v.push_back({"<unused>", true});       // 24: never allowed
  v.push_back({std::string(1, char(0xFF)), false});  // 25: a raw byte that is never UTF-8
  return v;
}

// The mask must equal the token-by-token answer of allows() in every state along a document.
void expect_mask_matches_allows(const TokenConstraint& c, const std::string& where) {
  std::vector<uint8_t> m;
  const size_t n = c.mask(m);
  size_t count = 0;
  for (int32_t id = 0; id < int32_t(m.size()); ++id) {
    EXPECT_EQ(bool(m[size_t(id)]), c.allows(id)) << "token " << id << " after " << where;
    count += m[size_t(id)];
  }
  EXPECT_EQ(n, count);
}

TEST(TokenMask, MaskEqualsTheTokenByTokenCheckAlongADocument) {
  auto vocab = std::make_shared<TokenVocab>(small_vocab(), std::vector<std::pair<std::string, uint8_t>>{{"<|\"|>", kSymQuote}});
  auto g = JsonGrammar::from_schema(json::parse(R"({"type":"object","properties":{"a":{"type":"string"},
      "ab":{"type":"integer"}},"required":["a"],"additionalProperties":false})"), false);
  TokenConstraint c(g, vocab, {22});
  // {"a":"ab\n é", "ab":12}
  std::string where;
  for (int32_t id : {20, 4, 7, 2, 5, 16, 12, 18, 2, 11, 12, 3, 6, 7, 10, 1}) {
    expect_mask_matches_allows(c, where);
    ASSERT_TRUE(c.allows(id)) << vocab->bytes(id) << " after " << where;
    EXPECT_FALSE(c.allows(22)) << "no end before the value is complete";
    c.accept(id);
    where += vocab->bytes(id);
  }
  EXPECT_EQ(where, "{\"a\":\"ab\\n é\", \"ab\":12}");
  EXPECT_TRUE(c.finished());
  EXPECT_TRUE(c.allows(22));
  std::vector<uint8_t> m;
  EXPECT_EQ(c.mask(m), 1u);  // only the end token
  EXPECT_FALSE(c.allows(23));
  EXPECT_FALSE(c.allows(24));
  EXPECT_FALSE(c.allows(25));
}

TEST(TokenMask, InsideAStringPlainTokensAreAllowedWithoutReadingThem) {
  auto vocab = std::make_shared<TokenVocab>(small_vocab(), std::vector<std::pair<std::string, uint8_t>>{});
  TokenConstraint c(JsonGrammar::from_schema(json{{"type", "string"}}, false), vocab, {22});
  c.accept(2);  // the opening quote
  expect_mask_matches_allows(c, "\"");
  std::vector<uint8_t> m;
  c.mask(m);
  EXPECT_TRUE(m[4] && m[18] && m[15] && m[2] && m[17] == 0 && m[14]) << "plain text, escapes and the closing quote";
  EXPECT_FALSE(m[19]) << "a raw newline";
}

TEST(TokenMask, AMaximumLengthAdmitsOnlyPlainTokensThatFit) {
  auto vocab = std::make_shared<TokenVocab>(small_vocab(), std::vector<std::pair<std::string, uint8_t>>{});
  TokenConstraint c(JsonGrammar::from_schema(json::parse(R"({"type":"string","maxLength":3})"), false), vocab, {22});
  c.accept(2);  // "
  expect_mask_matches_allows(c, "\"");
  c.accept(5);  // ab
  expect_mask_matches_allows(c, "\"ab");
  std::vector<uint8_t> m;
  c.mask(m);
  EXPECT_TRUE(m[18] && m[4]) << "one more character";
  EXPECT_FALSE(m[5]) << "two are too many";
  c.accept(18);  // é
  expect_mask_matches_allows(c, "\"abé");
  c.mask(m);
  EXPECT_TRUE(m[2] && !m[4] && !m[16]) << "only the closing quote";
}

TEST(TokenMask, DeadEndHasAnEmptyMask) {
  // No token can open an array: nothing may come first.
  auto vocab = std::make_shared<TokenVocab>(small_vocab(), std::vector<std::pair<std::string, uint8_t>>{});
  TokenConstraint c(JsonGrammar::from_schema(json{{"type", "array"}}, false), vocab, {22});
  std::vector<uint8_t> m;
  EXPECT_EQ(c.mask(m), 0u);
  std::vector<float> logits(vocab->size(), 0.0f);
  Sampler greedy(SamplingParams{});
  EXPECT_EQ(pick_token(greedy, logits.data(), vocab->size(), {}, &c, {}, -1).id, -1);
}

TEST(TokenPick, GreedyAndSampledTokensAreAllowedOnesAndLogprobsAreTheModels) {
  auto vocab = std::make_shared<TokenVocab>(small_vocab(), std::vector<std::pair<std::string, uint8_t>>{});
  auto g = JsonGrammar::from_schema(json{{"type", "integer"}}, false);
  const int64_t V = vocab->size();
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) logits[size_t(i)] = float(std::sin(double(i) * 1.7)) * 3;
  logits[13] = 9;   // "true": the model's favourite, not an integer
  logits[10] = 5;   // "12"
  double lse = 0;
  for (float x : logits) lse += std::exp(double(x));
  lse = std::log(lse);

  TokenConstraint c(g, vocab, {22});
  Sampler greedy(SamplingParams{});
  const PickedToken p = pick_token(greedy, logits.data(), V, {}, &c, {}, 3);
  EXPECT_EQ(p.id, 10) << "the best integer token";
  EXPECT_NEAR(p.logprob, double(logits[10]) - lse, 1e-5);
  ASSERT_EQ(p.top.size(), 3u);
  EXPECT_EQ(p.top[0].id, 13) << "logprobs are the model's distribution, before the mask";
  EXPECT_EQ(p.top[1].id, 10);
  EXPECT_GE(p.top[1].logprob, p.top[2].logprob);
  for (const TokenLogprob& t : p.top) EXPECT_NEAR(t.logprob, double(logits[size_t(t.id)]) - lse, 1e-5);

  // Banned tokens are never picked; sampling stays inside the mask.
  Sampler free_greedy(SamplingParams{});
  EXPECT_EQ(pick_token(free_greedy, logits.data(), V, {}, nullptr, {13}, -1).id, 10);
  SamplingParams hot;
  hot.temperature = 2;
  hot.seed = 7;
  Sampler sampler(hot);
  for (int k = 0; k < 50; ++k) {
    const int32_t id = pick_token(sampler, logits.data(), V, {}, &c, {}, -1).id;
    EXPECT_TRUE(id == 9 || id == 10) << id;  // "1" or "12" (the start of an integer)
  }
}

}  // namespace
}  // namespace g4
