// g4 bench: prefill and decode throughput in the manner of llama-bench. Backend-agnostic: it only uses
// make_backend, Model, KvCache and forward_batch. Prefill: a fresh cache runs -p random tokens in one chunk
// (logits of the last position only). Decode: -n single-token steps, logits each step; with --parallel N,
// N sequences step together (one batch per step) and the rate is their aggregate. -d fills every sequence
// with that many tokens first (untimed), as llama-bench's depth. One untimed warm-up, then --reps timed
// repetitions: mean and sample stddev of tokens/s.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/error.h"
#include "commands.h"
#include "flag_check.h"
#include "model/model.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/session.h"
#include "engine/kv_options.h"

namespace g4 {

namespace {

struct BenchOpts {
  std::string model, backend = "auto", cache_type_k = "auto", cache_type_v = "auto";
  int64_t prompt = 512, gen = 128, depth = 0, chunk = 512;
  int threads = 0, reps = 3, parallel = 1;
  bool json = false;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Stat { double mean = 0, sd = 0; };
Stat stats(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

int run_bench(const BenchOpts& o) {
  auto backend = make_backend(o.backend, o.threads);
  const double t0 = now_s();
  auto model = Model::load(o.model, *backend);
  const double load_s = now_s() - t0;
  const int64_t V = model->spec().vocab_size;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(std::min<int64_t>(V - 1, 200000)));
  std::vector<int32_t> prompt(size_t(o.prompt));
  for (int32_t& t : prompt) t = tok(rng);
  std::vector<int32_t> fill(size_t(o.depth));
  for (int32_t& t : fill) t = tok(rng);
  const int64_t ctx = o.depth + std::max<int64_t>({o.prompt, o.gen, 1});
  const KvCacheOptions kvo = kv_options_for(backend->name(), ctx, o.parallel, o.cache_type_k, o.cache_type_v);
  // A fresh cache whose sequences each hold the -d tokens.
  auto filled = [&] {
    auto kv = std::make_unique<KvCache>(*model, kvo);
    for (int s = 0; s < o.parallel && o.depth > 0; ++s) Session(*model, *kv, s).forward(fill, LogitsMode::kNone, o.chunk);
    return kv;
  };

  auto prefill = [&] {
    auto kv = filled();
    Session s(*model, *kv, 0);
    const double a = now_s();
    s.forward(prompt, LogitsMode::kLast);
    return double(o.prompt) / (now_s() - a);
  };
  auto decode = [&](int64_t n) {
    auto kv = filled();
    std::vector<SeqChunk> batch;
    for (int s = 0; s < o.parallel; ++s) batch.push_back({s, {prompt.empty() ? 2 : prompt[size_t(s) % prompt.size()]}, LogitsMode::kLast});
    const double a = now_s();
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<std::vector<float>> l = forward_batch(*model, *kv, batch);
      for (size_t s = 0; s < batch.size(); ++s)
        batch[s].tokens[0] = int32_t(std::max_element(l[s].begin(), l[s].end()) - l[s].begin());
    }
    return double(n * o.parallel) / (now_s() - a);
  };
  // Warm-up: touches every weight page and spins up the threads.
  if (o.gen > 0) decode(std::min<int64_t>(o.gen, 4));
  std::vector<double> pp, tg;
  for (int r = 0; r < o.reps; ++r) {
    if (o.prompt > 0) pp.push_back(prefill());
    if (o.gen > 0) tg.push_back(decode(o.gen));
  }
  const Stat p = pp.empty() ? Stat{} : stats(pp), g = tg.empty() ? Stat{} : stats(tg);
  // The cpu backend's kernel table (the ISA it runs: G4_CPU_ISA or the best this CPU has), "" elsewhere.
  const std::string isa = backend->name() == "cpu" ? cpu::select_kernels().name : "";
  if (o.json) {
    std::printf("{\"model\": \"%s\", \"backend\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"load_s\": %.3f, \"reps\": %d, "
                "\"depth\": %ld, \"parallel\": %d, \"cache_type_k\": \"%s\", \"cache_type_v\": \"%s\", "
                "\"pp\": %ld, \"pp_tok_s\": %.3f, \"pp_sd\": %.3f, \"tg\": %ld, \"tg_tok_s\": %.3f, \"tg_sd\": %.3f}\n",
                o.model.c_str(), backend->name().c_str(), isa.c_str(), backend->threads(), load_s, o.reps, long(o.depth),
                o.parallel, kv_type_name(kvo.k_type).c_str(), kv_type_name(kvo.v_type).c_str(), long(o.prompt), p.mean, p.sd,
                long(o.gen), g.mean, g.sd);
  } else {
    std::printf("model %s  backend %s%s%s  threads %d  load %.2f s  reps %d  depth %ld  parallel %d  KV %s/%s\n",
                o.model.c_str(), backend->name().c_str(), isa.empty() ? "" : " isa ", isa.c_str(), backend->threads(), load_s, o.reps, long(o.depth), o.parallel,
                kv_type_name(kvo.k_type).c_str(), kv_type_name(kvo.v_type).c_str());
    std::printf("| test   |            t/s |\n|--------|----------------|\n");
    if (o.prompt > 0) std::printf("| pp%-4ld | %7.2f ± %5.2f |\n", long(o.prompt), p.mean, p.sd);
    if (o.gen > 0) std::printf("| tg%-4ld | %7.2f ± %5.2f |\n", long(o.gen), g.mean, g.sd);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Action* action) {
  auto* c = app.add_subcommand("bench", "prefill and decode tokens/s (llama-bench style)");
  auto o = std::make_shared<BenchOpts>();
  c->add_option("--model,-m", o->model, "model directory or .safetensors file")->required();
  c->add_option("--backend", o->backend, "backend: auto (default: cuda with a GPU, else cpu), cpu, cuda, ref");
  c->add_option("-p,--n-prompt", o->prompt, "prompt tokens for the prefill test (0 = skip)")->check(in_range(0, 1 << 20));
  c->add_option("-n,--n-gen", o->gen, "generated tokens for the decode test (0 = skip)")->check(in_range(0, 1 << 20));
  c->add_option("-t,--threads", o->threads, "threads for the cpu backend (0 = $G4_THREADS, else all cores)")->check(in_range(0, 1024));
  c->add_option("-r,--reps", o->reps, "timed repetitions")->check(in_range(1, 1000));
  c->add_option("-d,--depth", o->depth, "tokens already in every sequence's cache before each test (untimed)")
      ->check(in_range(int64_t(0), int64_t(1) << 24));
  c->add_option("--parallel", o->parallel, "sequences decoding together, one batch per step (aggregate tokens/s)")
      ->check(in_range(1, 1024));
  c->add_option("-b,--batch-size", o->chunk, "prefill chunk for the -d fill")->check(in_range(int64_t(1), int64_t(1) << 16));
  c->add_option("--cache-type-k", o->cache_type_k, "KV cache type for keys: auto, f32, bf16, q8_0");
  c->add_option("--cache-type-v", o->cache_type_v, "KV cache type for values: auto, f32, bf16, q8_0");
  c->add_flag("--json", o->json, "one JSON line instead of the table");
  c->callback([o, action] { *action = [o] { return run_bench(*o); }; });
}

}  // namespace g4
