// Fuzzes the GGUF reader (header, metadata, tensor infos, offsets) and the gemma4 spec and tokenizer
// readers on top of it. GgufFile maps a path, so each input goes through one temp file.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"
#include "model/gguf_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/g4-fuzz-gguf-" + std::to_string(getpid()) + ".gguf";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    g4::GgufFile g(path);
    try { g4::model_spec_from_gguf(g); } catch (const g4::Error&) {}
    try { g4::read_gguf_tokenizer(g); } catch (const g4::Error&) {}
  } catch (const g4::Error&) {
  }
  return 0;
}
