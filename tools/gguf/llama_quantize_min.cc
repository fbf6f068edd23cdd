// Calls llama.cpp's llama_model_quantize (the function behind its llama-quantize tool) with default
// parameters and one ftype: the same files llama-quantize writes, without building its CLI and the
// llama-common library. Usage: llama_quantize_min IN.gguf OUT.gguf FTYPE (2 = Q4_0, 7 = Q8_0, 15 = Q4_K_M)
#include <cstdio>
#include <cstdlib>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s IN.gguf OUT.gguf FTYPE\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = llama_ftype(std::atoi(argv[3]));
  p.nthread = 2;
  const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
  llama_backend_free();
  return rc == 0 ? 0 : 1;
}
