// Fuzzes HTTP request bodies of the OpenAI server (parse_completion_request). The first byte picks the
// endpoint (chat or completions), the rest is the body. A body is accepted or refused with an ApiError
// (status 4xx, a message); an accepted chat request must then render through the chat template or fail
// with a g4::Error, exactly as the server's codec does it.
#include <cmath>
#include <string>

#include "base/error.h"
#include "server/openai_request.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) == 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  g4::ApiError err;
  auto r = g4::parse_completion_request(body, chat, g4::SamplingParams{}, &err);
  if (!r) {
    if (err.status < 400 || err.status > 499 || err.message.empty()) __builtin_trap();
    (void)err.body().dump();
    return 0;
  }
  if (!std::isfinite(r->sampling.temperature) || !std::isfinite(r->sampling.top_p)) __builtin_trap();
  if (r->stop.size() > 4) __builtin_trap();
  if (chat) {
    g4::ChatOptions o;
    o.enable_thinking = r->enable_thinking;
    if (!r->tools.empty()) o.tools = g4::ChatJson::parse(r->tools.dump());
    try {
      (void)g4::render_gemma4_chat(g4::ChatJson::parse(r->messages.dump()), o);
    } catch (const g4::Error&) {
    }
  }
  return 0;
}
