// Fuzzes OpenAI request bodies: every input is either a valid request or a 4xx ApiError; nothing throws.
#include <string>

#include "server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {true, false}) {
    g4::ApiError err;
    auto r = g4::parse_completion_request(body, chat, g4::SamplingParams{}, &err);
    if (!r && (err.status < 400 || err.status > 499 || err.message.empty())) __builtin_trap();
    if (r) g4::validate(r->sampling);  // accepted parameters must be valid sampling parameters
  }
  return 0;
}
