// TextCodec: what the server needs from the tokenizer and the chat template, behind one small
// interface so the HTTP layer is testable on its own and independent of the tokenizer library.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/token_mask.h"
#include "server/openai_request.h"

namespace g4 {

// The model's reply split the way the OpenAI API returns it.
struct ParsedReply {
  std::string reasoning;                              // thinking text (reasoning_content)
  std::string content;                                // the answer
  nlohmann::json tool_calls = nlohmann::json::array();  // OpenAI shape: [{id, type, function: {name, arguments}}]
  bool tool_call_open = false;                        // an unfinished tool call is still being generated
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // Chat: the rendered prompt's ids (template applied, generation prompt added). Throws g4::Error for
  // messages the template cannot express (reported to the client as 400).
  virtual std::vector<int32_t> chat_prompt(const CompletionRequest& r) = 0;
  // Completions: the raw prompt's ids, <bos> first.
  virtual std::vector<int32_t> text_prompt(const std::string& text) = 0;
  // Text of generated ids with special tokens kept (the reply parser needs them).
  virtual std::string decode(const std::vector<int32_t>& ids) = 0;
  // Splits (possibly unfinished) generated text into reasoning, content and tool calls.
  virtual ParsedReply parse_reply(const std::string& text, bool thinking) = 0;
  // Plain text for /v1/completions: special tokens dropped.
  virtual std::string visible_text(const std::vector<int32_t>& ids) = 0;
  virtual std::vector<int32_t> stop_ids() = 0;
  // One token as it appears in decoded text: its bytes (a byte token: that byte), and whether it is a
  // control token (<|turn>, <|"|>, ...: text only as itself). Logprobs and token masks read it.
  virtual TokenVocab::Token token(int32_t id) { return {decode({id}), false}; }
  // The id of a control token by its text (<|tool_call>, ...), if the vocabulary has it.
  virtual std::optional<int32_t> special_id(const std::string&) { return std::nullopt; }
  // /tokenize: the text's ids, <bos> first only when add_special. The default drops text_prompt's <bos>.
  virtual std::vector<int32_t> tokenize(const std::string& text, bool add_special) {
    std::vector<int32_t> ids = text_prompt(text);
    if (!add_special && !ids.empty()) ids.erase(ids.begin());
    return ids;
  }
};

}  // namespace g4
