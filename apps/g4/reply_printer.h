// ReplyPrinter: turns generated token ids into text on a stream as they arrive — special tokens
// hidden, the thinking channel marked "[thinking] " and "[answer] " (the channel's name, "thought", that
// the model writes after <|channel>, is not shown), stop strings honoured (text that may begin one is held back
// until it is known not to), every write valid UTF-8.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

class ReplyPrinter {
 public:
  ReplyPrinter(const Tokenizer& tok, std::vector<std::string> stops, FILE* out);
  // Returns false once a stop string has been reached (generation should end).
  bool push(int32_t id);
  void finish();  // flushes held-back text
  const std::string& text() const { return text_; }  // everything shown (stop string cut)
  bool stopped_by_string() const { return stopped_; }

 private:
  void emit(bool final);
  // Text decoded right after <|channel>: held while it may still be the channel name "thought\n", which is
  // dropped; anything else is passed on as it is.
  std::string take_channel_header(const std::string& piece);
  void end_channel_header();

  const Tokenizer& tok_;
  StreamDecoder dec_;
  std::vector<std::string> stops_;
  FILE* out_;
  int32_t channel_open_ = -1, channel_close_ = -1;
  bool in_header_ = false;  // after <|channel>, until the name is complete or ruled out
  std::string header_;      // text held meanwhile
  std::string text_;    // decoded so far
  size_t printed_ = 0;  // bytes of text_ already written
  bool stopped_ = false;
};

}  // namespace g4
