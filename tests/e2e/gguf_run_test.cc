// g4 run on a GGUF file that carries its own vocabulary: the shipped model converted to gemma4 GGUF
// (bf16 tensors as stored, tokenizer.ggml.* from its tokenizer.json) gives the same greedy reply as the
// safetensors directory, so the GGUF tokenizer path and the GGUF weights path agree end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "util/hf_to_gguf.h"
#include "util/temp_dir.h"
#include "util/run_g4.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::kTinyKjvModel;

// g4's standard output, after checking that it succeeded.
std::string run_stdout(const std::string& args) {
  const testing_util::G4Result r = testing_util::run_g4(args);
  EXPECT_EQ(r.status, 0) << args << "\n" << r.err;
  return r.out;
}

TEST(GgufRun, EmbeddedVocabularyGivesTheSameReply) {
  const Tokenizer tok = Tokenizer::from_json_file(kTinyKjvModel + "/tokenizer.json");
  const auto tj = nlohmann::json::parse(std::ifstream(kTinyKjvModel + "/tokenizer.json"));
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    tokens.push_back(tok.piece(id));
    types.push_back(int32_t(tok.type(id)));
  }
  for (const auto& m : tj["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());

  test::HfToGgufOptions o;
  o.skip_key = "tokenizer.ggml.model";
  o.extra_metadata = [&](test::GgufBuilder& b) {
    b.kv_str("tokenizer.ggml.model", "gemma4");
    b.kv_arr_str("tokenizer.ggml.tokens", tokens);
    b.kv_arr_i32("tokenizer.ggml.token_type", types);
    b.kv_arr_str("tokenizer.ggml.merges", merges);
  };
  testing_util::TempDir d;
  test::GgufBuilder::write(d.file("tiny-kjv.gguf"), test::hf_to_gguf(kTinyKjvModel, o).bytes());

  const std::string args = " -p 'In the beginning' --temp 0 -n 24 --json";
  const auto a = nlohmann::json::parse(run_stdout("run -m " + kTinyKjvModel + args));
  const std::string out = run_stdout("run -m " + d.file("tiny-kjv.gguf") + args);
  ASSERT_FALSE(out.empty()) << "g4 run on the GGUF printed nothing";
  const auto b = nlohmann::json::parse(out);
  EXPECT_EQ(b["prompt_tokens"], a["prompt_tokens"]);
  EXPECT_EQ(b["tokens"], a["tokens"]);
  EXPECT_EQ(b["text"], a["text"]);
}

}  // namespace
}  // namespace g4
