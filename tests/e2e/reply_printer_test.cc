// ReplyPrinter (apps/g4): a thinking block is shown as "[thinking] TEXT" and "[answer] TEXT", without the
// channel's name ("thought") that the model writes after <|channel>, however the name is split into tokens.
#include "reply_printer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tokenizer/tokenizer.h"

namespace g4 {
namespace {

const std::string kTokenizer = std::string(G4_TEST_DATA) + "/../../models/tiny-kjv/tokenizer.json";

// Streams ids through a ReplyPrinter into memory; returns what it wrote.
std::string print(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  std::string text;
  {
    ReplyPrinter p(tok, {}, out);
    for (int32_t id : ids) p.push(id);
    p.finish();
    text = p.text();
  }
  std::fclose(out);
  std::string written(buf, len);
  std::free(buf);
  EXPECT_EQ(written, text);
  return written;
}

std::vector<int32_t> ids_of(const Tokenizer& tok, const std::vector<std::string>& pieces) {
  std::vector<int32_t> ids;
  for (const std::string& p : pieces) {
    const std::vector<int32_t> v = tok.encode(p, false);
    ids.insert(ids.end(), v.begin(), v.end());
  }
  return ids;
}

TEST(ReplyPrinter, ThinkingBlockHidesTheChannelName) {
  const Tokenizer tok = Tokenizer::from_json_file(kTokenizer);
  EXPECT_EQ(print(tok, ids_of(tok, {"<|channel>", "thought\nLet there be light.", "<channel|>", "And there was light."})),
            "[thinking] Let there be light.\n[answer] And there was light.");
  // The name split over single-character tokens, and the thinking text arriving token by token.
  std::vector<std::string> pieces{"<|channel>"};
  for (char c : std::string("thought\n")) pieces.push_back(std::string(1, c));
  pieces.insert(pieces.end(), {"In", " the", " beginning", "<channel|>", "God"});
  EXPECT_EQ(print(tok, ids_of(tok, pieces)), "[thinking] In the beginning\n[answer] God");
  // An empty thinking block (the name only) and a channel without the name.
  EXPECT_EQ(print(tok, ids_of(tok, {"<|channel>", "thought", "<channel|>", "Amen"})), "[thinking] \n[answer] Amen");
  EXPECT_EQ(print(tok, ids_of(tok, {"<|channel>", "though it be", "<channel|>", "yea"})),
            "[thinking] though it be\n[answer] yea");
  // Text outside a channel that starts with the word is left alone.
  EXPECT_EQ(print(tok, ids_of(tok, {"thought\nis free"})), "thought\nis free");
}

}  // namespace
}  // namespace g4
