#include "server/gemma_codec.h"

#include <algorithm>

#include "base/error.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

namespace g4 {

std::vector<int32_t> GemmaCodec::chat_prompt(const CompletionRequest& r) {
  ChatOptions o;
  o.enable_thinking = r.enable_thinking;
  if (!r.tools.empty()) o.tools = ChatJson::parse(r.tools.dump());
  // The template emits <bos> itself; encode without adding another (spec pitfall 13).
  return b_.tokenizer->encode(render_gemma4_chat(ChatJson::parse(r.messages.dump()), o), false);
}

std::vector<int32_t> GemmaCodec::text_prompt(const std::string& text) { return b_.tokenizer->encode(text, true); }

std::vector<int32_t> GemmaCodec::tokenize(const std::string& text, bool add_special) {
  return b_.tokenizer->encode(text, add_special);
}

std::string GemmaCodec::decode(const std::vector<int32_t>& ids) { return b_.tokenizer->decode(ids, false); }

std::string GemmaCodec::visible_text(const std::vector<int32_t>& ids) {
  std::vector<int32_t> kept;
  for (int32_t id : ids)
    if (std::find(b_.stop_ids.begin(), b_.stop_ids.end(), id) == b_.stop_ids.end()) kept.push_back(id);
  return b_.tokenizer->decode(kept, true);
}

TokenVocab::Token GemmaCodec::token(int32_t id) {
  const Tokenizer& t = *b_.tokenizer;
  if (id < 0 || id >= t.vocab_size()) return {"", true};
  switch (t.type(id)) {
    case TokenType::kByte: return {std::string(1, char(t.byte_value(id))), false};
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused: return {t.piece(id), true};
    default: return {t.display_piece(id), false};
  }
}

std::optional<int32_t> GemmaCodec::special_id(const std::string& piece) {
  const auto id = b_.tokenizer->find(piece);
  if (id && b_.tokenizer->type(*id) == TokenType::kControl) return id;
  return std::nullopt;
}

ParsedReply GemmaCodec::parse_reply(const std::string& text, bool) {
  const ParsedOutput p = parse_gemma4_output(text);
  ParsedReply r;
  r.reasoning = p.thinking;
  r.content = p.content;
  r.tool_call_open = text.find("<|tool_call>") != std::string::npos &&
                     text.rfind("<|tool_call>") > (text.rfind("<tool_call|>") == std::string::npos ? 0 : text.rfind("<tool_call|>"));
  for (size_t i = 0; i < p.tool_calls.size(); ++i) {
    const ToolCall& c = p.tool_calls[i];
    const std::string args = c.arguments.is_string() ? c.arguments.get<std::string>() : c.arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.tool_calls.push_back({{"id", "call_" + std::to_string(i)},
                            {"type", "function"},
                            {"function", {{"name", c.name}, {"arguments", args}}}});
  }
  return r;
}

}  // namespace g4
