// Incremental detokenizer for streaming generation: push() returns the text that became final with that token.
// Byte-fallback tokens (<0xHH>) are held until they form a complete UTF-8 character, which is emitted at once;
// so every chunk is valid UTF-8 and the chunks concatenate to Tokenizer::decode() of the same ids for any text
// the tokenizer produced. Only where the model emits *invalid* byte runs do the two differ: here each bad byte
// becomes one U+FFFD as soon as it is known bad, where HF replaces every byte of an invalid run.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace g4 {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(&tok), skip_special_(skip_special) {}

  // Text completed by this token (possibly empty). Throws g4::Error for an id outside the vocabulary.
  std::string push(int32_t id);
  // End of stream: bytes of an unfinished character become U+FFFD each.
  std::string finish();
  bool has_pending() const { return !pending_.empty(); }

 private:
  void drain(std::string& out, bool final);

  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

}  // namespace g4
