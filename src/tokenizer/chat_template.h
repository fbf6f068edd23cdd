// The Gemma 4 instruction-tuned prompt format, rendered natively (no Jinja engine in the product). It
// reproduces Google's gemma-4-31B-it chat template byte for byte as transformers renders it (trim_blocks,
// lstrip_blocks): messages in OpenAI form (role, content as string or parts, tool_calls, tool results as
// role "tool"), tool declarations, thinking on/off. tests/tokenizer/chat_template_test.cc holds it to the
// official template rendered by python3-jinja2.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace g4 {

using ChatJson = nlohmann::ordered_json;  // key order matters: dictsort is stable

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = false;
  ChatJson tools = nullptr;  // list of {"type":"function","function":{name, description, parameters, ...}}
  std::string bos_token = "<bos>";
};

// Renders `messages` (a JSON list). Throws g4::Error with one line where the template itself would fail
// (empty conversation, a tool response with no name, non-string role, ...).
std::string render_gemma4_chat(const ChatJson& messages, const ChatOptions& opt = {});

// Gemma 4's special tokens (spec section 4.2; 46/47/51 inferred). A real Gemma 4 tokenizer.json carries them;
// apply_gemma4_special_tokens() overlays them on a Gemma 3 vocabulary, whose slots have other names.
struct SpecialTokenSlot {
  int32_t id;
  const char* piece;
};
inline constexpr SpecialTokenSlot kGemma4SpecialTokens[] = {
    {46, "<|tool>"},         {47, "<tool|>"},     {48, "<|tool_call>"}, {49, "<tool_call|>"},
    {50, "<|tool_response>"}, {51, "<tool_response|>"}, {52, "<|\"|>"}, {98, "<|think|>"},
    {100, "<|channel>"},     {101, "<channel|>"}, {105, "<|turn>"},     {106, "<turn|>"},
    {255999, "<|image>"},    {256000, "<|audio>"}, {258880, "<|image|>"}, {258881, "<|audio|>"},
    {258882, "<image|>"},    {258883, "<audio|>"}, {258884, "<|video|>"},
};

// Generation stops on any of these ids: <eos>, <turn|>, <|tool_response>.
inline constexpr int32_t kGemma4StopIds[] = {1, 106, 50};
inline bool is_gemma4_stop(int32_t id) { return id == 1 || id == 106 || id == 50; }

}  // namespace g4
