// GGUF tokenizer metadata: copied out intact, and inconsistent arrays or ids refused by name.
#include <gtest/gtest.h>

#include "base/error.h"
#include "io/gguf_tokenizer.h"
#include "util/gguf_builder.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using test::GgufBuilder;
using testing_util::TempDir;

GgufBuilder vocab(std::vector<float> scores, uint32_t eos) {
  GgufBuilder b;
  b.kv_str("tokenizer.ggml.model", "gemma4");
  b.kv_arr_str("tokenizer.ggml.tokens", {"<pad>", "<eos>", "<bos>", "\xe2\x96\x81hi", "<0x41>"});
  b.kv_arr_f32("tokenizer.ggml.scores", scores);
  b.kv_arr_i32("tokenizer.ggml.token_type", {3, 3, 3, 1, 6});
  b.kv_arr_str("tokenizer.ggml.merges", {"\xe2\x96\x81 h", "\xe2\x96\x81h i"});
  b.kv_u32("tokenizer.ggml.bos_token_id", 2);
  b.kv_u32("tokenizer.ggml.eos_token_id", eos);
  b.kv_bool("tokenizer.ggml.add_bos_token", true);
  return b;
}

TEST(GgufTokenizer, ReadsEverything) {
  TempDir d;
  GgufBuilder::write(d.file("t.gguf"), vocab({0, 0, 0, -1.5f, 0}, 1).bytes());
  const GgufTokenizerData t = read_gguf_tokenizer(GgufFile(d.file("t.gguf")));
  EXPECT_EQ(t.model, "gemma4");
  ASSERT_EQ(t.tokens.size(), 5u);
  EXPECT_EQ(t.tokens[3], "\xe2\x96\x81hi");
  EXPECT_EQ(t.scores[3], -1.5f);
  EXPECT_EQ(t.token_types, (std::vector<int32_t>{3, 3, 3, 1, 6}));
  ASSERT_EQ(t.merges.size(), 2u);
  EXPECT_EQ(t.merges[1], "\xe2\x96\x81h i");
  EXPECT_EQ(t.bos_id, 2);
  EXPECT_EQ(t.eos_id, 1);
  EXPECT_EQ(t.eot_id, -1);
  EXPECT_TRUE(t.add_bos);
  EXPECT_FALSE(t.add_eos);
}

TEST(GgufTokenizer, RefusesInconsistentData) {
  TempDir d;
  auto err = [&](const GgufBuilder& b) {
    GgufBuilder::write(d.file("t.gguf"), b.bytes());
    try {
      read_gguf_tokenizer(GgufFile(d.file("t.gguf")));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(vocab({0, 0, 0}, 1)).find("'tokenizer.ggml.scores' has 3 entries for 5 tokens"), std::string::npos);
  EXPECT_NE(err(vocab({0, 0, 0, 0, 0}, 5)).find("eos_token_id' = 5 is outside [0, 4]"), std::string::npos);
  EXPECT_NE(err(GgufBuilder()).find("'tokenizer.ggml.model' is missing"), std::string::npos);
}

}  // namespace
}  // namespace g4
