#include "run_options.h"

#include <cstdio>
#include <limits>
#include <random>

#include "base/error.h"
#include "engine/memory_estimate.h"
#include "flag_check.h"

namespace g4 {

void add_run_options(CLI::App* c, RunOptions& o) {
  c->add_option("-m,--model", o.model, "model: a Hugging Face / g4 checkpoint directory or a .gguf file")->required();
  c->add_option("--backend", o.backend,
                "backend: auto (default: cuda when built and a GPU is present, else cpu), cpu, cuda, ref (scalar oracle)");
  c->add_option("-c,--ctx-size", o.ctx_size, "context size in tokens (prompt + reply, all turns of a chat)")
      ->check(in_range(int64_t(16), int64_t(1) << 20));
  c->add_option("-n,--n-predict", o.max_new_tokens, "most tokens to generate per reply")
      ->check(in_range(int64_t(1), int64_t(1) << 20));
  c->add_option("-b,--batch-size", o.prefill_chunk, "prefill chunk size in tokens")
      ->check(in_range(int64_t(1), int64_t(1) << 16));
  c->add_option("-t,--threads", o.threads, "cpu backend threads (0 = $G4_THREADS, else all cores; other backends ignore it)")
      ->check(in_range(0, 1024));
  c->add_option("--quantize", o.quantize, "quantize a bf16 checkpoint while loading: int4 or int8")
      ->check(CLI::IsMember({"int4", "int8"}));
  c->add_option("--temp,--temperature", o.temperature, "sampling temperature; 0 = greedy (default: the checkpoint's)")
      ->check(in_range(0.0, 10.0));
  c->add_option("--top-k", o.top_k, "sample from the k most likely tokens; 0 = off")->check(in_range(0, 1 << 20));
  c->add_option("--top-p", o.top_p, "nucleus sampling: smallest set with this much probability; 1 = off")
      ->check(in_range(0.000001, 1.0));
  c->add_option("--min-p", o.min_p, "drop tokens below min-p times the top probability; 0 = off")
      ->check(in_range(0.0, 1.0));
  c->add_option("--repeat-penalty", o.repeat_penalty, "penalise the last 64 tokens; 1 = off")->check(in_range(0.01, 10.0));
  c->add_option("-s,--seed", o.seed, "random seed (default, or -1 as in llama.cpp: a random one)")
      ->check(in_range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  add_kv_flags(c, o.kv);
  c->add_flag("--no-memory-check", o.no_memory_check,
              "load even when weights + KV cache at --ctx-size + activations exceed the free memory");
}

ModelBundle load_bundle(const RunOptions& o, bool quiet, int n_seq) {
  LoadOptions lo;
  lo.quantize = o.quantize;
  lo.progress = !quiet;
  if (!o.no_memory_check)
    check_memory_fits(estimate_memory_for(o.model, o.quantize, kv_options(o, n_seq), o.prefill_chunk),
                      available_memory_bytes(resolve_backend_name(o.backend)), o.model, o.ctx_size);
  ModelBundle b = ModelBundle::load(o.model, o.backend, lo, o.threads);
  const int trained = b.model->spec().max_position;
  if (o.ctx_size > trained)
    std::fprintf(stderr, "g4: warning: --ctx-size %lld is larger than the %d tokens %s was trained on; text past %d tokens "
                 "may lose coherence\n", static_cast<long long>(o.ctx_size), trained, b.name.c_str(), trained);
  return b;
}

KvCacheOptions kv_options(const RunOptions& o, int n_seq) {
  return kv_options_for(resolve_backend_name(o.backend), o.ctx_size, n_seq, o.kv);
}

void add_kv_flags(CLI::App* c, KvFlags& f) {
  c->add_option("--cache-type-k", f.cache_type_k,
                "KV cache type for keys: auto (bf16 on cpu and cuda, f32 on ref), f32, bf16, q8_0 (int8, a scale per "
                "token and head)");
  c->add_option("--cache-type-v", f.cache_type_v, "KV cache type for values: as --cache-type-k");
  c->add_option("--kv-keys", f.keys,
                "full-attention layers whose keys equal their values (K=V): store the keys, or derive them from the "
                "values inside attention (half those layers' cache): auto (derived on cpu and cuda, stored on ref), "
                "stored, derived")
      ->check(CLI::IsMember({"auto", "stored", "derived"}));
}

std::string backend_summary(const Backend& b) {
  return b.name() + ", " + std::to_string(b.threads()) + (b.threads() == 1 ? " thread" : " threads");
}

SamplingParams sampling_from(const RunOptions& o, const ModelBundle& b) {
  SamplingParams p = b.sampling;
  if (o.temperature) p.temperature = *o.temperature;
  if (o.top_k) p.top_k = *o.top_k;
  if (o.top_p) p.top_p = *o.top_p;
  if (o.min_p) p.min_p = *o.min_p;
  if (o.repeat_penalty) p.repeat_penalty = *o.repeat_penalty;
  p.seed = fixed_seed(o) ? uint64_t(*o.seed) : std::random_device{}();
  validate(p);
  return p;
}

}  // namespace g4
