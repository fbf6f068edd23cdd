// The GGUF file llama.cpp's converter made from the shipped model (tests/data/gguf-llamacpp/kjv-q8_0.gguf,
// Q8_0 weights) through the binary: its vocabulary types Gemma 4's control tokens as normal text, which
// g4 must still treat as control tokens, so the chat prompt has the safetensors model's ids and the reply
// stops at <turn|>; its general.sampling.* keys are the sampling defaults; tokenize reads its vocabulary;
// a .gguf file of random bytes is named as not a GGUF file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/run_g4.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::run_g4;
using testing_util::kTinyKjvModel;
using testing_util::kKjvQ8Gguf;

nlohmann::json run_json(const std::string& model, const std::string& flags) {
  const auto r = run_g4("run -m " + model + " -p Hello --json " + flags);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

TEST(GgufLlamacpp, ChatPromptHasTheSafetensorsIdsAndTheReplyStops) {
  // The "Hello" chat prompt as the template renders it, tokenized with each model's own vocabulary.
  const std::string prompt = "'<bos><|turn>user\nHello<turn|>\n<|turn>model\n<|channel>thought\n<channel|>'";
  const auto a = run_g4("tokenize -m " + kTinyKjvModel + " --text " + prompt);
  const auto b = run_g4("tokenize -m " + kKjvQ8Gguf + " --text " + prompt);
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(b.out, a.out);
  EXPECT_EQ(a.out, "2 4 536 273 313 666 352 5 273 4 538 273 6 561 273 7\n");

  // On the ref backend: the greedy reply at a near-tie (token 101 of this one) depends on the cpu kernel
  // table's rounding (the AVX2 table picks another token there than the generic and AVX-512 ones), while
  // what this test checks is the GGUF's vocabulary, template and stop token, not a kernel.
  const auto st = run_json(kTinyKjvModel, "--temp 0 --backend ref");
  const auto gg = run_json(kKjvQ8Gguf, "--temp 0 --backend ref");
  EXPECT_EQ(gg["prompt_tokens"], 16);
  EXPECT_EQ(gg["prompt_tokens"], st["prompt_tokens"]);
  EXPECT_EQ(gg["stop_reason"], "stop");  // ended on <turn|>, well before -n 256
  EXPECT_LT(gg["tokens"].size(), 256u);
  // Q8_0 weights, yet the greedy reply is the bf16 model's token for token (measured: 113 tokens).
  EXPECT_EQ(gg["tokens"], st["tokens"]);
  EXPECT_EQ(gg["text"], st["text"]);

  // The same through g4 chat with piped input.
  const auto c1 = run_g4("chat -m " + kTinyKjvModel + " --temp 0 --backend ref", "Hello\n");
  const auto c2 = run_g4("chat -m " + kKjvQ8Gguf + " --temp 0 --backend ref", "Hello\n");
  ASSERT_EQ(c2.status, 0) << c2.err;
  EXPECT_EQ(c2.out, c1.out);
  EXPECT_NE(c2.out.find(gg["text"].get<std::string>()), std::string::npos) << c2.out;
  EXPECT_NE(c2.err.find("| stop]"), std::string::npos) << c2.err;
}

// A copy of the GGUF with general.sampling.temp (f32) set to `temp`.
std::string with_temperature(const testing_util::TempDir& d, float temp) {
  std::ifstream in(kKjvQ8Gguf, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = "general.sampling.temp";
  const size_t at = bytes.find(key);
  EXPECT_NE(at, std::string::npos);
  const size_t type_at = at + key.size();
  EXPECT_EQ(bytes[type_at], 6);  // GGUF f32
  std::memcpy(&bytes[type_at + 4], &temp, 4);
  d.write("t.gguf", bytes);
  return d.file("t.gguf");
}

TEST(GgufLlamacpp, SamplingDefaultsComeFromGeneralSampling) {
  // The file says temp 0.8, top_k 40, top_p 0.95 (from the model's generation_config.json).
  const auto implicit = run_json(kKjvQ8Gguf, "--seed 11 -n 24");
  const auto explicit_ = run_json(kKjvQ8Gguf, "--seed 11 -n 24 --temp 0.8 --top-k 40 --top-p 0.95");
  const auto greedy = run_json(kKjvQ8Gguf, "--seed 11 -n 24 --temp 0");
  EXPECT_EQ(implicit["tokens"], explicit_["tokens"]);
  EXPECT_NE(implicit["tokens"], greedy["tokens"]);
  // With general.sampling.temp 0 in the file, no flag gives the greedy reply.
  testing_util::TempDir d;
  const auto zero = run_json(with_temperature(d, 0.0f), "--seed 11 -n 24");
  EXPECT_EQ(zero["tokens"], greedy["tokens"]);
  // A value the sampler refuses names the file's keys.
  const auto bad = run_g4("run -m " + with_temperature(d, -3.0f) + " -p Hello");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("general.sampling"), std::string::npos) << bad.err;
}

TEST(GgufLlamacpp, RandomBytesAreNotAGgufFile) {
  testing_util::TempDir d;
  std::string junk(4096, '\0');
  uint32_t x = 12345;
  for (char& c : junk) c = char((x = x * 1664525u + 1013904223u) >> 24);
  d.write("model.gguf", junk);
  for (const std::string& cmd : {"run -m " + d.file("model.gguf") + " -p hi", "chat -m " + d.file("model.gguf"),
                                 "inspect -m " + d.file("model.gguf"), "tokenize -m " + d.file("model.gguf") + " --text hi",
                                 "perplexity -m " + d.file("model.gguf") + " --text-file /dev/null"}) {
    const auto r = run_g4(cmd);
    EXPECT_EQ(r.status, 1) << cmd;
    EXPECT_EQ(r.err, "g4: error: " + d.file("model.gguf") + ": not a GGUF file (bad magic)\n") << cmd;
  }
}

}  // namespace
}  // namespace g4
