// Fuzzes tokenizer.json loading; a tokenizer that loads must then encode and decode without failing.
#include <string_view>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    g4::Tokenizer t = g4::Tokenizer::from_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const std::vector<int32_t> ids = t.encode("Hello wörld <bos> \xF0\x9F\x98\x80 \n\n  x", true);
    (void)t.decode(ids, false);
    (void)t.decode(ids, true);
  } catch (const g4::Error&) {
  }
  return 0;
}
