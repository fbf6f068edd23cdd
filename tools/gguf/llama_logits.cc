// Runs llama.cpp (libllama, CPU) on a GGUF model for a list of token ids and writes the logits of every
// position to a GGUF file (F32 tensor "logits" [T, V] in PyTorch order, I32 tensor "prompt" [T]) with
// ggml's gguf writer. g4's own program against llama.cpp's public API; not part of the g4 build (see
// tests/data/gguf-llamacpp/README.md). Usage: llama_logits MODEL.gguf 2,17,99,... OUT.gguf
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf TOKENS OUT.gguf\n", argv[0]);
    return 2;
  }
  std::vector<llama_token> toks;
  for (const char* p = argv[2]; *p;) {
    char* end;
    toks.push_back(llama_token(std::strtol(p, &end, 10)));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) return 2;
  }
  const int T = int(toks.size());
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(T < 256 ? 256 : T);
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = 2;
  cp.n_threads_batch = 2;
  cp.type_k = GGML_TYPE_F32;  // f32 KV cache: the default f16 cache alone moves logits by ~1e-2
  cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  llama_batch batch = llama_batch_init(T, 0, 1);
  for (int i = 0; i < T; ++i) {
    batch.token[i] = toks[size_t(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = T;
  if (llama_decode(ctx, batch) != 0) return 1;
  const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));

  ggml_init_params ip = {size_t(T) * size_t(V) * 4 + size_t(T) * 4 + (1 << 20), nullptr, false};
  ggml_context* gctx = ggml_init(ip);
  ggml_tensor* lt = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, V, T);
  ggml_set_name(lt, "logits");
  for (int i = 0; i < T; ++i)
    std::memcpy(static_cast<float*>(lt->data) + size_t(i) * size_t(V), llama_get_logits_ith(ctx, i), size_t(V) * 4);
  ggml_tensor* pt = ggml_new_tensor_1d(gctx, GGML_TYPE_I32, T);
  ggml_set_name(pt, "prompt");
  std::memcpy(pt->data, toks.data(), size_t(T) * 4);
  gguf_context* out = gguf_init_empty();
  gguf_set_val_str(out, "general.description", "llama.cpp logits (tools/gguf/llama_logits.cc)");
  gguf_add_tensor(out, lt);
  gguf_add_tensor(out, pt);
  const bool ok = gguf_write_to_file(out, argv[3], false);
  gguf_free(out);
  ggml_free(gctx);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return ok ? 0 : 1;
}
