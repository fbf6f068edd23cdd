// Fuzzes the Gemma 4 chat-template renderer on arbitrary JSON: either a list of messages, or an object
// {"messages": [...], "tools": [...], "enable_thinking": b, "add_generation_prompt": b}. Any value must
// render or give a g4::Error (a JSON type error escaping would take down a server thread).
#include <string>

#include "base/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g4::ChatJson j = g4::ChatJson::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                                       nullptr, false);
  if (j.is_discarded()) return 0;
  g4::ChatOptions o;
  g4::ChatJson messages = j;
  if (j.is_object()) {
    messages = j.contains("messages") ? j["messages"] : g4::ChatJson();
    if (j.contains("tools")) o.tools = j["tools"];
    if (j.contains("enable_thinking") && j["enable_thinking"].is_boolean()) o.enable_thinking = j["enable_thinking"];
    if (j.contains("add_generation_prompt") && j["add_generation_prompt"].is_boolean())
      o.add_generation_prompt = j["add_generation_prompt"];
  }
  try {
    (void)g4::render_gemma4_chat(messages, o);
  } catch (const g4::Error&) {
  }
  return 0;
}
