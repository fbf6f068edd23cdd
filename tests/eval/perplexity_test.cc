// Perplexity / KL / top-1 statistics on hand-computed distributions, and whole runs on a fixture model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "eval/perplexity.h"
#include "io/safetensors.h"
#include "model/session.h"

namespace g4 {
namespace {

TEST(Perplexity, ScorePositionMatchesHandComputedValues) {
  // p_model = softmax([0, ln 2, 0]) = [1/4, 1/2, 1/4]; p_ref = softmax([ln 2, 0, ln 2]) = [2/5, 1/5, 2/5].
  const float model[3] = {0.0f, float(std::log(2.0)), 0.0f};
  const float ref[3] = {float(std::log(2.0)), 0.0f, float(std::log(2.0))};
  PerplexityStats st;
  score_position(model, ref, 3, 1, &st);
  EXPECT_NEAR(st.nll, std::log(2.0), 1e-6);
  EXPECT_NEAR(st.ref_nll, std::log(5.0), 1e-6);
  const double kl = 0.4 * std::log(0.4 / 0.25) * 2 + 0.2 * std::log(0.2 / 0.5);
  EXPECT_NEAR(st.kl, kl, 1e-6);
  EXPECT_EQ(st.top1_agree, 0);  // argmax 1 vs 0
  EXPECT_NEAR(st.ppl(), 2.0, 1e-5);
}

// Another hand-computed pair, with logits far from 0 (a naive exp overflows in f32): model logits
// [100, 100 + ln 3] give p = [1/4, 3/4]; reference [-50 + ln 3, -50] gives q = [3/4, 1/4].
// KL(q || p) = 3/4 ln 3 + 1/4 ln(1/3) = ln 3 / 2; the next token 0 has -ln p = ln 4.
TEST(Perplexity, ScorePositionWithLargeLogits) {
  const float model[2] = {100.0f, float(100 + std::log(3.0))};
  const float ref[2] = {float(-50 + std::log(3.0)), -50.0f};
  PerplexityStats st;
  score_position(model, ref, 2, 0, &st);
  EXPECT_NEAR(st.nll, std::log(4.0), 1e-5);
  EXPECT_NEAR(st.ref_nll, std::log(4.0 / 3.0), 1e-5);
  EXPECT_NEAR(st.kl, std::log(3.0) / 2, 1e-5);
  EXPECT_EQ(st.top1_agree, 0);
}

// -log softmax(logits)[next], in double, written here independently of eval/.
double neg_log_prob(const float* logits, int64_t V, int32_t next) {
  double m = logits[0];
  for (int64_t v = 1; v < V; ++v) m = std::max(m, double(logits[v]));
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(logits[v]) - m);
  return -(double(logits[next]) - m - std::log(s));
}

std::vector<double> log_softmax(const float* logits, int64_t V) {
  std::vector<double> out(static_cast<size_t>(V));
  const double lse = -neg_log_prob(logits, V, 0) - double(logits[0]);  // = -(log-sum-exp)
  for (int64_t v = 0; v < V; ++v) out[size_t(v)] = double(logits[v]) + lse;
  return out;
}

std::vector<float> floats(const TensorInfo& t) {
  std::vector<float> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

// The shipped model's perplexity on the fixture prompt against the perplexity of transformers' own logits
// for that prompt (tests/data/tiny-kjv/expected.safetensors), computed here from those logits.
TEST(Perplexity, MatchesTransformersLogits) {
  SafetensorsFile f(std::string(G4_TEST_DATA) + "/tiny-kjv/expected.safetensors");
  const TensorInfo& pt = *f.find("prompt");
  std::vector<int32_t> prompt(size_t(pt.numel()));
  std::memcpy(prompt.data(), pt.data, pt.nbytes);
  const std::vector<float> logits = floats(*f.find("prompt_logits"));
  const int64_t V = 4096, n = int64_t(prompt.size());
  ASSERT_EQ(logits.size(), size_t(n * V));
  double nll = 0;
  for (int64_t i = 0; i + 1 < n; ++i) nll += neg_log_prob(logits.data() + i * V, V, prompt[size_t(i + 1)]);
  const double want_ppl = std::exp(nll / double(n - 1));

  auto be = make_backend("ref");
  auto m = Model::load(std::string(G4_TEST_DATA) + "/../../models/tiny-kjv", *be);
  const PerplexityStats st = perplexity(*m, nullptr, prompt, n, false);
  EXPECT_EQ(st.scored, n - 1);
  std::printf("[ tiny-kjv ] perplexity %.6f, from transformers' logits %.6f\n", st.ppl(), want_ppl);
  // Logits within 1e-3 of transformers' (tiny_model_test) move each -log p by at most 2e-3.
  EXPECT_NEAR(std::log(st.ppl()), std::log(want_ppl), 2e-3);
  EXPECT_GT(want_ppl, 1.5);  // not a degenerate sequence
}

std::string fixture() { return std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model"; }

TEST(Perplexity, ModelAgainstItselfAndAgainstInt8) {
  auto be = make_backend("ref");
  auto m = Model::load(fixture(), *be);
  std::vector<int32_t> toks;
  for (int i = 0; i < 45; ++i) toks.push_back((i * 37 + 11) % 1024);
  const PerplexityStats self = perplexity(*m, m.get(), toks, 16, false);
  // 45 tokens in chunks of 15 + BOS: every token is scored once.
  EXPECT_EQ(self.scored, 45);
  EXPECT_DOUBLE_EQ(self.ppl(), self.ref_ppl());
  EXPECT_LE(self.max_kl, 1e-9);
  EXPECT_EQ(self.top1(), 1.0);
  EXPECT_GT(self.ppl(), 1.0);

  LoadOptions lo;
  lo.quantize = "int8";
  auto q = Model::load(fixture(), *be, lo);
  const PerplexityStats st = perplexity(*q, m.get(), toks, 16, false);
  std::printf("int8 vs float: ppl %.4f vs %.4f, mean KL %.3g, top-1 %.3f\n", st.ppl(), st.ref_ppl(), st.mean_kl(), st.top1());
  EXPECT_GT(st.mean_kl(), 0.0);
  EXPECT_LT(st.mean_kl(), 1e-3);  // int8 g32 moves logits by < 1% here (see tests/quant/quantized_model_test.cc)
  EXPECT_NEAR(std::log(st.ppl()), std::log(st.ref_ppl()), 0.01);

  // The same KL computed here from each model's logits, chunk by chunk as perplexity() cuts them (15 new
  // tokens after a BOS per chunk of 16), with an independent log-softmax.
  double kl = 0;
  int64_t scored = 0;
  for (size_t at = 0; at < toks.size(); at += 15) {
    std::vector<int32_t> chunk = {2};
    for (size_t i = at; i < std::min(toks.size(), at + 15); ++i) chunk.push_back(toks[i]);
    Session sq(*q, 16), sm(*m, 16);
    const std::vector<float> lq = sq.forward(chunk, LogitsMode::kAll), lm = sm.forward(chunk, LogitsMode::kAll);
    const int64_t V = m->spec().vocab_size;
    for (size_t i = 0; i + 1 < chunk.size(); ++i, ++scored) {
      const std::vector<double> lp_ref = log_softmax(lm.data() + i * size_t(V), V);
      const std::vector<double> lp_q = log_softmax(lq.data() + i * size_t(V), V);
      for (size_t v = 0; v < size_t(V); ++v) kl += std::exp(lp_ref[v]) * (lp_ref[v] - lp_q[v]);
    }
  }
  ASSERT_EQ(scored, st.scored);
  EXPECT_NEAR(st.mean_kl(), kl / double(scored), 1e-3 * kl / double(scored) + 1e-9);
}

TEST(Perplexity, BadInputs) {
  auto be = make_backend("ref");
  auto m = Model::load(fixture(), *be);
  EXPECT_THROW(perplexity(*m, nullptr, {2, 5000}, 16, false), Error);
  EXPECT_THROW(perplexity(*m, nullptr, {2, 5}, 1, false), Error);
  const std::string f = std::filesystem::temp_directory_path() / ("g4_toks_" + std::to_string(::getpid()));
  std::ofstream(f) << "1, 2 3\n4";
  EXPECT_EQ(read_tokens_file(f), (std::vector<int32_t>{1, 2, 3, 4}));
  std::ofstream(f) << "1 -2";
  EXPECT_THROW(read_tokens_file(f), Error);
  std::ofstream(f) << "99999999999";
  EXPECT_THROW(read_tokens_file(f), Error);
  std::filesystem::remove(f);
}

}  // namespace
}  // namespace g4
