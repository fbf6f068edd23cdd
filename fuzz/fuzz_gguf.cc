// Fuzzes the GGUF reader (header, metadata, tensor infos, offsets) and what is built on it: the ModelSpec
// from gemma4.* metadata, the tokenizer.ggml.* vocabulary and the tokenizer built from it. GgufFile maps a
// path, so each input goes into an in-memory file (fuzz_support.h).
#include <string>

#include "base/error.h"
#include "fuzz_support.h"
#include "io/gguf.h"
#include "engine/model_bundle.h"
#include "io/gguf_tokenizer.h"
#include "model/gguf_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const g4::fuzz::MemfdInput in(data, size);
  const std::string path = in.path();
  try {
    g4::GgufFile f(path);
    // Every tensor the reader accepts must lie inside the mapping: touch each byte it claims.
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors())
      for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
    for (const auto& [key, v] : f.metadata())
      if (v.type == g4::GgufType::kArray && v.elem_type != g4::GgufType::kString && v.count > 0 && v.raw == nullptr)
        __builtin_trap();
    try {
      g4::ModelSpec s = g4::model_spec_from_gguf(f);
      for (const auto& L : s.layers)
        if (L.head_dim <= 0 || L.n_kv_heads <= 0 || s.n_heads % L.n_kv_heads != 0) __builtin_trap();
    } catch (const g4::Error&) {
    }
    g4::GgufTokenizerData t = g4::read_gguf_tokenizer(f);
    if (!t.scores.empty() && t.scores.size() != t.tokens.size()) __builtin_trap();
    if (!t.token_types.empty() && t.token_types.size() != t.tokens.size()) __builtin_trap();
    // The vocabulary it carries must build a tokenizer (or fail cleanly) that encodes and decodes.
    g4::Tokenizer tok = g4::load_tokenizer(path);
    (void)tok.decode(tok.encode("In the beginning \xff\xfe caf\xc3\xa9\n\n<bos>", true));
  } catch (const g4::Error&) {
  }
  return 0;
}
