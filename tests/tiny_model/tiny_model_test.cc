// The shipped default model (models/tiny-kjv) on the ref backend against transformers' own numbers
// (tests/data/tiny-kjv/expected.safetensors, made by tools/train_tiny/train.py on the exported weights).
// Rule as for the HF fixtures: max |diff| <= 1e-3 on prompt and greedy-step logits, identical greedy tokens.
// Also checks that config, generation_config and tokenizer agree on the special-token ids and stop set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "util/compare.h"
#include "util/fixture.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"

namespace g4 {
namespace {

const std::string kModelDir = std::string(G4_TEST_DATA) + "/../../models/tiny-kjv";
const std::string kDataDir = std::string(G4_TEST_DATA) + "/tiny-kjv";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

using testing_util::read_tensor;

using testing_util::Diff;
Diff max_diff(const std::vector<float>& a, const std::vector<float>& b) { return testing_util::max_abs_diff(a, b); }

TEST(TinyModel, ConfigHasGemma4ShapeAndStopIds) {
  auto be = make_backend("ref");
  auto model = Model::load(kModelDir, *be);
  const ModelSpec& s = model->spec();
  EXPECT_EQ(s.vocab_size, 4096);
  ASSERT_EQ(s.n_layers(), 6);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(s.layers[size_t(i)].sliding) << i;
    EXPECT_EQ(s.layers[size_t(i)].window, 128) << i;
  }
  EXPECT_FALSE(s.layers[5].sliding);
  EXPECT_TRUE(s.layers[5].k_eq_v);
  EXPECT_EQ(s.layers[5].head_dim, 128);
  EXPECT_EQ(s.eos_ids, (std::vector<int>{1, 5, 11}));
}

TEST(TinyModel, TokenizerAndGenerationConfigAgreeOnSpecialIds) {
  const auto tok = read_json(kModelDir + "/tokenizer.json");
  std::map<std::string, int> special;
  for (const auto& t : tok["added_tokens"]) {
    EXPECT_TRUE(t["special"].get<bool>()) << t["content"];
    special[t["content"].get<std::string>()] = t["id"].get<int>();
  }
  EXPECT_EQ(special.at("<pad>"), 0);
  EXPECT_EQ(special.at("<eos>"), 1);
  EXPECT_EQ(special.at("<bos>"), 2);
  EXPECT_EQ(special.at("<unk>"), 3);
  for (const char* s : {"<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>", "<|tool_call>",
                        "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|tool>", "<tool|>", "<|\"|>"})
    EXPECT_TRUE(special.count(s)) << s;
  // The model vocab holds the same ids, byte fallback tokens, and nothing beyond the embedding rows.
  const auto& vocab = tok["model"]["vocab"];
  EXPECT_EQ(vocab.size(), 4096u);
  for (const auto& [s, id] : special) EXPECT_EQ(vocab.at(s).get<int>(), id) << s;
  EXPECT_TRUE(vocab.contains("<0x00>") && vocab.contains("<0xFF>"));
  EXPECT_TRUE(tok["model"]["byte_fallback"].get<bool>());

  const std::vector<int> stops = {special.at("<eos>"), special.at("<turn|>"), special.at("<|tool_response>")};
  const auto gen = read_json(kModelDir + "/generation_config.json");
  EXPECT_EQ(gen["eos_token_id"].get<std::vector<int>>(), stops);
  const auto cfg = read_json(kModelDir + "/config.json");
  EXPECT_EQ(cfg["text_config"]["eos_token_id"].get<std::vector<int>>(), stops);
  EXPECT_EQ(cfg["eos_token_id"].get<std::vector<int>>(), stops);
}

TEST(TinyModel, PromptLogitsAndGreedyMatchTransformers) {
  const SafetensorsFile f(kDataDir + "/expected.safetensors");
  const auto prompt = read_tensor<int32_t>(f, "prompt");
  const auto greedy = read_tensor<int32_t>(f, "greedy_tokens");
  const auto prompt_logits = read_tensor<float>(f, "prompt_logits");
  const auto step_logits = read_tensor<float>(f, "greedy_step_logits");
  ASSERT_FALSE(prompt.empty());
  ASSERT_EQ(prompt[0], 2) << "the chat prompt starts with <bos>";

  auto be = make_backend("ref");
  auto model = Model::load(kModelDir, *be);
  const int64_t V = model->spec().vocab_size;
  const int64_t n = int64_t(prompt.size() + greedy.size());

  Session s(*model, n);
  const std::vector<float> logits = s.forward(prompt, LogitsMode::kAll);
  Diff d = max_diff(logits, prompt_logits);
  EXPECT_LE(d.max, 1e-3) << "prompt_logits worst at position " << d.at / size_t(V) << " token " << d.at % size_t(V);
  const double prompt_diff = d.max;

  Session g(*model, n);
  std::vector<float> last = g.forward(prompt, LogitsMode::kLast);
  std::vector<float> steps;
  for (size_t i = 0; i < greedy.size(); ++i) {
    steps.insert(steps.end(), last.begin(), last.end());
    const int32_t tok = argmax(last.data(), V);
    ASSERT_EQ(tok, greedy[i]) << "greedy token " << i;
    last = g.forward({tok}, LogitsMode::kLast);
  }
  d = max_diff(steps, step_logits);
  EXPECT_LE(d.max, 1e-3) << "greedy_step_logits worst at step " << d.at / size_t(V) << " token " << d.at % size_t(V);
  std::printf("[ tiny-kjv ] prompt max|diff| %.3g, steps max|diff| %.3g over %zu greedy tokens\n", prompt_diff, d.max,
              greedy.size());
}

}  // namespace
}  // namespace g4
