// Fuzzes tokenizer.json loading (Tokenizer::from_json): any text gives a tokenizer or a g4::Error. A
// tokenizer that loads must encode a fixed text (spaces, newlines, specials, invalid UTF-8) and decode
// the ids back, and decode every id of its vocabulary, without a crash.
#include <algorithm>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kText =
      "Hello  world\n\nIn the beginning <bos><start_of_turn>user\n\xff\xc3 caf\xc3\xa9 \xf0\x9f\x98\x80 <unk>\t";
  try {
    g4::Tokenizer t = g4::Tokenizer::from_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const std::vector<int32_t> ids = t.encode(kText, true);
    for (int32_t id : ids)
      if (id < 0 || id >= t.vocab_size()) __builtin_trap();  // encode must only produce ids it can decode
    (void)t.decode(ids, false);
    (void)t.decode(ids, true);
    const int32_t n = std::min<int32_t>(t.vocab_size(), 4096);
    std::vector<int32_t> all(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) all[size_t(i)] = i;
    (void)t.decode(all, false);
  } catch (const g4::Error&) {
  }
  return 0;
}
