// Tokenizes a text file with llama.cpp's tokenizer (libllama, the GGUF's own vocabulary; control tokens written
// as text are parsed, no <bos> added) and prints the ids separated by spaces, as `g4 tokenize` does.
// g4's own program against llama.cpp's public API; not part of the g4 build (bench/export_vs_llamacpp.sh
// builds it). Usage: llama_tokenize MODEL.gguf TEXT_FILE
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf TEXT_FILE\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) return 2;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> ids(text.size() + 16);
  const int n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()),
                               /*add_special=*/false, /*parse_special=*/true);
  if (n < 0) return 1;
  for (int i = 0; i < n; ++i) std::printf(i ? " %d" : "%d", ids[size_t(i)]);
  std::printf("\n");
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
