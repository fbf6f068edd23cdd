// GemmaCodec: the TextCodec of a Gemma 4 model — the native chat template, the tokenizer, and the
// reply parser (thinking channel, answer, tool calls) — turning parsed calls into the OpenAI shape.
#pragma once

#include "engine/model_bundle.h"
#include "server/text_codec.h"

namespace g4 {

class GemmaCodec : public TextCodec {
 public:
  explicit GemmaCodec(const ModelBundle& bundle) : b_(bundle) {}
  std::vector<int32_t> chat_prompt(const CompletionRequest& r) override;
  std::vector<int32_t> text_prompt(const std::string& text) override;
  std::string decode(const std::vector<int32_t>& ids) override;
  ParsedReply parse_reply(const std::string& text, bool thinking) override;
  std::string visible_text(const std::vector<int32_t>& ids) override;
  std::vector<int32_t> stop_ids() override { return b_.stop_ids; }
  std::vector<int32_t> tokenize(const std::string& text, bool add_special) override;
  TokenVocab::Token token(int32_t id) override;
  std::optional<int32_t> special_id(const std::string& piece) override;

 private:
  const ModelBundle& b_;
};

}  // namespace g4
