// Flags shared by g4 run, g4 chat and g4 serve: model, backend, context, sampling. Names follow
// llama.cpp where one exists (-m -n -c -t --temp --top-k --top-p --min-p --seed --repeat-penalty).
// A sampling flag left unset keeps the checkpoint's generation_config.json default.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "engine/kv_options.h"
#include "engine/model_bundle.h"
#include "model/sampler.h"

namespace g4 {

struct RunOptions {
  std::string model, backend = "auto", quantize;
  KvFlags kv;  // -ctk / -ctv / --kv-keys
  int64_t ctx_size = 4096;
  int64_t max_new_tokens = 256;
  int64_t prefill_chunk = 512;
  int threads = 0;  // -t: cpu backend threads; 0 = $G4_THREADS, else every core
  bool no_memory_check = false;  // --no-memory-check: load even when the estimate exceeds free memory
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int> top_k;
  std::optional<int64_t> seed;  // -s: none or -1 (llama.cpp's "random"): a random seed
};
// Whether -s fixes the seed (given, and not -1).
inline bool fixed_seed(const RunOptions& o) { return o.seed && *o.seed >= 0; }

void add_run_options(CLI::App* c, RunOptions& o);
// -ctk/--cache-type-k, -ctv/--cache-type-v and --kv-keys on c (every command that runs or plans a model).
void add_kv_flags(CLI::App* c, KvFlags& f);
// Loads the bundle on the chosen backend with -t threads (printing a progress line unless quiet); warns once
// on stderr when --ctx-size is beyond the context the model was trained for.
// n_seq: the sequences the KV cache will hold (serve --parallel), counted in the memory check.
ModelBundle load_bundle(const RunOptions& o, bool quiet, int n_seq = 1);
// "cpu, 2 threads", "ref, 1 thread": what the load line and run --json report.
std::string backend_summary(const Backend& b);
// The KV cache the flags ask for on the chosen backend, for n_seq sequences (engine/kv_options.h).
KvCacheOptions kv_options(const RunOptions& o, int n_seq = 1);
// Applies the sampling flags over the bundle's defaults.
SamplingParams sampling_from(const RunOptions& o, const ModelBundle& b);

}  // namespace g4
