// Fuzzes the chat-template renderer on arbitrary JSON conversations and tools, and the reply parser
// (thinking channel, tool calls with <|"|> strings) on arbitrary model output.
#include <string_view>

#include "base/error.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)g4::parse_gemma4_output(text);  // must accept anything
  try {
    (void)g4::parse_gemma4_value(text);
  } catch (const g4::Error&) {
  }
  g4::ChatJson j = g4::ChatJson::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return 0;
  for (bool thinking : {false, true}) {
    try {
      g4::ChatOptions o;
      o.enable_thinking = thinking;
      if (j.is_object() && j.contains("tools")) o.tools = j["tools"];
      (void)g4::render_gemma4_chat(j.is_object() && j.contains("messages") ? j["messages"] : j, o);
    } catch (const g4::Error&) {
    }
  }
  return 0;
}
