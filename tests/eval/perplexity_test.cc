// Perplexity / KL / top-1 statistics on hand-computed distributions, and whole runs on a fixture model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "eval/perplexity.h"

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
