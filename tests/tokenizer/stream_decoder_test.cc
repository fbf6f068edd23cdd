// Streaming detokenization: at every split point of every golden encoding the streamed text is exactly what
// has become complete; every chunk is valid UTF-8; the whole stream equals the batch decode.
#include <gtest/gtest.h>

#include "base/error.h"
#include "test_tokenizer.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"

namespace g4 {
namespace {

// For ids of valid text: after token k the streamed text must be exactly the raw bytes of tokens [0, k]
// up to the last complete character -- nothing held back longer, nothing lost or doubled.
void check_every_split(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamDecoder sd(tok);
  std::string streamed, raw;
  for (size_t k = 0; k < ids.size(); ++k) {
    const std::string chunk = sd.push(ids[k]);
    ASSERT_TRUE(utf8::is_valid(chunk)) << "chunk after token " << k;
    streamed += chunk;
    const int b = tok.byte_value(ids[k]);
    raw += b >= 0 ? std::string(1, char(b)) : tok.display_piece(ids[k]);
    size_t complete = raw.size();
    while (complete > 0 && !utf8::is_valid(std::string_view(raw).substr(0, complete))) --complete;
    ASSERT_GE(complete + 4, raw.size());
    ASSERT_EQ(streamed, raw.substr(0, complete)) << "split after token " << k;
  }
  streamed += sd.finish();
  EXPECT_EQ(streamed, tok.decode(ids));
}

TEST(StreamDecoder, EverySplitPointOfGoldenEncodings) {
  const Tokenizer* tok = test::gemma3_tokenizer();
  ASSERT_NE(tok, nullptr);
  auto cases = test::read_json("tokenizer/js_random_golden.json")["cases"];
  int n = 0, with_bytes = 0;
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = c["ids"];
    if (ids.size() > 400) continue;  // keeps the O(n^2) prefix decode fast
    bool bytes = false;
    for (int32_t id : ids) bytes |= tok->byte_value(id) >= 0;
    with_bytes += bytes;
    check_every_split(*tok, ids);
    ++n;
  }
  EXPECT_GT(n, 500);
  EXPECT_GT(with_bytes, 50) << "the corpus must exercise byte fallback";
}

TEST(StreamDecoder, ByteTokensEmitAsSoonAsCharacterCompletes) {
  const Tokenizer* tok = test::gemma3_tokenizer();
  ASSERT_NE(tok, nullptr);
  // U+1F980 is F0 9F A6 80; force byte tokens.
  const int32_t f0 = *tok->find("<0xF0>"), x9f = *tok->find("<0x9F>"), xa6 = *tok->find("<0xA6>"),
                x80 = *tok->find("<0x80>");
  StreamDecoder sd(*tok);
  EXPECT_EQ(sd.push(f0), "");
  EXPECT_EQ(sd.push(x9f), "");
  EXPECT_EQ(sd.push(xa6), "");
  EXPECT_EQ(sd.push(x80), "\xF0\x9F\xA6\x80");
  EXPECT_FALSE(sd.has_pending());
  // Unfinished bytes before a normal token become U+FFFD each, as in HF's decode.
  const int32_t hello = tok->encode("Hello")[0];
  EXPECT_EQ(sd.push(f0), "");
  EXPECT_EQ(sd.push(x9f), "");
  EXPECT_EQ(sd.push(hello), "\xEF\xBF\xBD\xEF\xBF\xBDHello");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{f0, x9f, hello}), "\xEF\xBF\xBD\xEF\xBF\xBDHello");
  // An invalid byte is replaced as soon as it is seen; finish() flushes an unfinished tail.
  EXPECT_EQ(sd.push(*tok->find("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.push(f0), "");
  EXPECT_EQ(sd.finish(), "\xEF\xBF\xBD");
}

TEST(StreamDecoder, SkipSpecialAndBadIds) {
  const Tokenizer* tok = test::gemma3_tokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder keep(*tok), skip(*tok, true);
  EXPECT_EQ(keep.push(2), "<bos>");
  EXPECT_EQ(skip.push(2), "");
  EXPECT_EQ(skip.push(tok->encode(" world")[0]), " world");
  EXPECT_THROW(keep.push(-1), Error);
  EXPECT_THROW(keep.push(tok->vocab_size()), Error);
}

}  // namespace
}  // namespace g4
