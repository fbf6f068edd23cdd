// Fuzzes the parser of what the model generated (parse_gemma4_output: thinking channel, answer, tool
// calls) and of tool-call arguments (parse_gemma4_value). Model output is untrusted too: a fine-tune or a
// hostile prompt can make it emit anything. Output parsing never throws; value parsing throws g4::Error.
#include <string>

#include "base/error.h"
#include "tokenizer/chat_output.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const g4::ParsedOutput p = g4::parse_gemma4_output(text);
  for (const auto& c : p.tool_calls)
    if (!c.arguments.is_object() && !c.arguments.is_string()) __builtin_trap();  // the documented contract
  try {
    (void)g4::parse_gemma4_value(text);
  } catch (const g4::Error&) {
  }
  return 0;
}
