// g4 bench: prefill and decode throughput in the manner of llama-bench. Backend-agnostic: it only uses
// make_backend, Model, KvCache and forward_batch. Prefill: a fresh cache runs -p random tokens in one chunk
// (logits of the last position only). Decode: -n single-token steps, logits each step; with --parallel N,
// N sequences step together (one batch per step) and the rate is their aggregate. -d fills every sequence
// with that many tokens first (untimed), as llama-bench's depth. One untimed warm-up of each (a whole
// prefill of -p tokens, a few decode steps), then --reps timed repetitions: mean and sample stddev of tokens/s.
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
#include "bench_spec.h"
#include "commands.h"
#include "draft_flags.h"
#include "engine/conversation.h"
#include "engine/kv_options.h"
#include "flag_check.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "run_options.h"

namespace g4 {

namespace {

struct BenchOpts {
  std::string model, backend = "auto";
  KvFlags kv;
  int64_t prompt = 512, gen = 128, chunk = 512;
  int64_t ctx = 0;                   // -c: every sequence's cache capacity (0: what the tests need)
  std::vector<int64_t> depth = {0};  // -d 0,16384: a row per depth
  std::vector<int> parallel = {1};   // --parallel 1,4,8: a row per number of sequences
  std::vector<int> verify;           // --verify-cost 2,3,5: verify of n tokens against a one-token step
  std::vector<int> oracle;           // --oracle-draft 4: greedy with an oracle drafter of draft length k
  int threads = 0, reps = 3;
  bool json = false;
  DraftFlags draft;
  std::string sampling = "backend";  // decode test: where each next token is chosen (backend | host)
  SamplingParams choice;             // its parameters (default greedy)
};

struct Stat { double mean = 0, sd = 0; };
Stat stats(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

// One row of results: prefill and decode at one depth and one number of sequences.
struct Row {
  int64_t depth = 0;
  int parallel = 1;
  Stat pp, tg;
};

int run_bench(const BenchOpts& o) {
  validate(o.choice);
  for (int64_t d : o.depth)
    if (d < 0 || d > (int64_t(1) << 24)) throw Error("--depth: " + std::to_string(d) + " is out of range (0 .. 16777216)");
  for (int p : o.parallel)
    if (p < 1 || p > 1024) throw Error("--parallel: " + std::to_string(p) + " is out of range (1 .. 1024)");
  for (int n : o.verify)
    if (n < 1 || n > 256) throw Error("--verify-cost: " + std::to_string(n) + " is out of range (1 .. 256)");
  for (int k : o.oracle)
    if (k < 1 || k > 256) throw Error("--oracle-draft: " + std::to_string(k) + " is out of range (1 .. 256)");
  if (!o.oracle.empty() && o.gen < 2) throw Error("--oracle-draft needs -n of at least 2 generated tokens");
  if (o.prompt == 0 && o.gen == 0 && o.verify.empty() && o.oracle.empty())
    throw Error("nothing to measure: -p and -n are both 0 (and no --verify-cost or --oracle-draft)");
  DraftOptions draft = draft_options(o.draft);
  auto backend = make_backend(o.backend, o.threads);
  const double t0 = now_s();
  auto model = Model::load(o.model, *backend);
  load_draft_model(draft, o.draft, *model, LoadOptions{});
  const double load_s = now_s() - t0;
  const int64_t V = model->spec().vocab_size;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(std::min<int64_t>(V - 1, 200000)));
  std::vector<int32_t> prompt(size_t(o.prompt));
  for (int32_t& t : prompt) t = tok(rng);
  const int64_t max_depth = *std::max_element(o.depth.begin(), o.depth.end());
  std::vector<int32_t> fill_tokens(static_cast<size_t>(max_depth));
  for (int32_t& t : fill_tokens) t = tok(rng);
  const int max_par = *std::max_element(o.parallel.begin(), o.parallel.end());
  const int max_verify = o.verify.empty() ? 0 : *std::max_element(o.verify.begin(), o.verify.end());
  const int64_t need = max_depth + std::max<int64_t>({o.prompt, o.gen, int64_t(max_verify) + 1, 1});
  if (o.ctx > 0 && o.ctx < need)
    throw Error("--ctx-size " + std::to_string(o.ctx) + " is smaller than the " + std::to_string(need) +
                " positions the tests need (the largest depth plus the longest test)");
  // A serving context (-c 8192, say) makes a short depth pay what a large cache costs, as it does in use.
  const int64_t ctx = std::max(o.ctx, need);
  // One cache for every row (allocated once: the largest depth and number of sequences); each test empties
  // the sequences it uses and fills them with `depth` tokens first, untimed.
  const KvCacheOptions kvo = kv_options_for(backend->name(), ctx, max_par, o.kv);
  KvCache kv(*model, kvo);
  auto fill = [&](int n_seq, int64_t depth) {
    const std::vector<int32_t> head(fill_tokens.begin(), fill_tokens.begin() + depth);
    for (int s = 0; s < n_seq; ++s) {
      kv.clear(s);
      // kLast, not kNone: the logits come back to the host, so the fill has finished on the device (a GPU
      // runs ~0.1 s behind the host's enqueue) before a timer starts.
      if (depth > 0) Session(*model, kv, s).forward(head, LogitsMode::kLast, o.chunk);
    }
  };
  auto prefill = [&](int64_t depth) {
    fill(1, depth);
    Session s(*model, kv, 0);
    const double a = now_s();
    s.forward(prompt, LogitsMode::kLast);
    return double(o.prompt) / (now_s() - a);
  };
  auto decode = [&](int64_t depth, int n_seq, int64_t n) {
    fill(n_seq, depth);
    std::vector<SeqChunk> batch;
    for (int s = 0; s < n_seq; ++s) batch.push_back({s, {prompt.empty() ? 2 : prompt[size_t(s) % prompt.size()]}, LogitsMode::kLast});
    // The next token as generation chooses it: on the backend (only ids reach the host) or from host logits.
    std::mt19937_64 draws(7);
    std::vector<RowSampling> picks(batch.size());
    for (RowSampling& p : picks) p.params = o.choice;
    const double a = now_s();
    for (int64_t i = 0; i < n; ++i) {
      for (RowSampling& p : picks) p.u = std::uniform_real_distribution<double>(0.0, 1.0)(draws);
      if (o.sampling == "backend") {
        const std::vector<int32_t> ids = forward_pick(*model, kv, batch, picks);
        for (size_t s = 0; s < batch.size(); ++s) batch[s].tokens[0] = ids[s];
      } else {
        const std::vector<std::vector<float>> l = forward_batch(*model, kv, batch);
        for (size_t s = 0; s < batch.size(); ++s) batch[s].tokens[0] = choose_token(o.choice, l[s].data(), V, {}, picks[s].u);
      }
    }
    return double(n * n_seq) / (now_s() - a);
  };
  // Warm-up, untimed: a prefill of the same length (its first run pays one-time costs the timed ones must
  // not: scratch allocations of its sizes, kernels loaded on first launch, cuBLAS set-up; without it the
  // first timed prefill made the spread) and a few decode steps (every weight page touched, threads spun up).
  if (o.prompt > 0) prefill(0);
  // (and for each number of sequences: a backend that records steps records a batch's at its second step)
  if (o.gen > 0)
    for (int par : o.parallel) decode(0, par, std::min<int64_t>(o.gen, 4));
  std::vector<Row> rows;
  for (int64_t depth : o.depth)
    for (int par : o.parallel) {
      std::vector<double> pp, tg;
      for (int r = 0; r < o.reps; ++r) {
        if (o.prompt > 0 && par == o.parallel.front()) pp.push_back(prefill(depth));
        if (o.gen > 0) tg.push_back(decode(depth, par, o.gen));
      }
      rows.push_back({depth, par, pp.empty() ? Stat{} : stats(pp), tg.empty() ? Stat{} : stats(tg)});
    }
  // With a drafter: greedy generation of -n tokens through Conversation from a repetitive prompt (a random
  // block of 16 tokens, repeated to -p tokens), plain and speculative alternately; decode tokens/s each.
  std::vector<double> tg_plain, tg_spec;
  DraftStats last;
  if (draft.drafter && o.gen > 1) {
    std::vector<int32_t> block(16), rep;
    for (int32_t& t : block) t = tok(rng);
    while (int64_t(rep.size()) < std::max<int64_t>(o.prompt, 32)) rep.push_back(block[rep.size() % block.size()]);
    const KvCacheOptions ckv = kv_options_for(backend->name(), int64_t(rep.size()) + o.gen + 1, 1, o.kv);
    for (int r = 0; r < o.reps; ++r)
      for (bool spec : {false, true}) {
        GenerateOptions go;
        go.max_new_tokens = o.gen;
        if (spec) go.draft = draft;
        Conversation conv(*model, ckv);
        const GenerateResult res = conv.generate(rep, go, nullptr);
        (spec ? tg_spec : tg_plain).push_back(double(res.tokens.size() - 1) / res.decode_s);
        if (spec) last = res.draft;
      }
  }
  // Verify cost at the first depth; oracle drafts from the random prompt (at least 32 tokens).
  const std::vector<VerifyCost> vc =
      o.verify.empty() ? std::vector<VerifyCost>{}
                       : measure_verify_cost(*model, kv, std::vector<int32_t>(fill_tokens.begin(), fill_tokens.begin() + o.depth.front()),
                                             o.verify, std::max<int64_t>(o.gen, 8), o.chunk);
  std::vector<OracleRun> oracle;
  for (int k : o.oracle) {
    std::vector<int32_t> p = prompt;
    while (p.size() < 32) p.push_back(tok(rng));
    const int64_t octx = std::max<int64_t>(o.ctx, int64_t(p.size()) + o.gen + k + 1);
    oracle.push_back(run_oracle(*model, kv_options_for(backend->name(), octx, 1, o.kv), p, o.gen, k));
  }
  const Stat gp = tg_plain.empty() ? Stat{} : stats(tg_plain), gs = tg_spec.empty() ? Stat{} : stats(tg_spec);
  const std::string ctk = kv_type_name(kvo.k_type), ctv = kv_type_name(kvo.v_type);
  // The cpu backend's kernel table (the ISA it runs: G4_CPU_ISA or the best this CPU has), "" elsewhere.
  const std::string isa = backend->name() == "cpu" ? cpu::select_kernels().name : "";
  if (o.json) {
    for (const Row& r : rows)
      std::printf("{\"model\": \"%s\", \"backend\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"load_s\": %.3f, \"reps\": %d, "
                  "\"depth\": %ld, \"ctx\": %ld, \"parallel\": %d, \"cache_type_k\": \"%s\", \"cache_type_v\": \"%s\", \"keys_derived\": %s, "
                  "\"pp\": %ld, \"pp_tok_s\": %.3f, \"pp_sd\": %.3f, \"tg\": %ld, \"tg_tok_s\": %.3f, \"tg_sd\": %.3f, "
                  "\"sampling\": \"%s\", \"temp\": %g, \"top_k\": %d}\n",
                  o.model.c_str(), backend->name().c_str(), isa.c_str(), backend->threads(), load_s, o.reps, long(r.depth),
                  long(ctx), r.parallel, ctk.c_str(), ctv.c_str(), kvo.derive_k ? "true" : "false", long(o.prompt), r.pp.mean, r.pp.sd, long(o.gen), r.tg.mean,
                  r.tg.sd, o.sampling.c_str(), double(o.choice.temperature), o.choice.top_k);
    if (!tg_spec.empty())
      std::printf("{\"test\": \"draft\", \"repetitive_plain_tok_s\": %.3f, \"repetitive_plain_sd\": %.3f, "
                  "\"repetitive_draft_tok_s\": %.3f, \"repetitive_draft_sd\": %.3f, \"draft\": %s}\n",
                  gp.mean, gp.sd, gs.mean, gs.sd, draft_stats_json(last).dump().c_str());
    for (const VerifyCost& v : vc)
      std::printf("{\"test\": \"verify\", \"depth\": %ld, \"n\": %d, \"ms\": %.4f, \"ratio_to_step\": %.4f}\n",
                  long(o.depth.front()), v.n, v.ms, v.ratio);
    for (const OracleRun& r : oracle)
      std::printf("{\"test\": \"oracle\", \"k\": %d, \"plain_tok_s\": %.3f, \"oracle_tok_s\": %.3f, \"speedup\": %.4f, "
                  "\"same_tokens\": %s, \"draft\": %s}\n",
                  r.k, r.plain_tok_s, r.oracle_tok_s, r.oracle_tok_s / r.plain_tok_s, r.same_tokens ? "true" : "false",
                  draft_stats_json(r.stats).dump().c_str());
  } else {
    std::printf("model %s  backend %s%s%s  threads %d  load %.2f s  reps %d  KV %s/%s  tokens chosen on the %s "
                "(temp %g, top-k %d)\n", o.model.c_str(), backend->name().c_str(), isa.empty() ? "" : " isa ", isa.c_str(),
                backend->threads(), load_s, o.reps, ctk.c_str(), ctv.c_str(), o.sampling.c_str(),
                double(o.choice.temperature), o.choice.top_k);
    std::printf("| test   |   depth | seqs |            t/s |\n|--------|---------|------|----------------|\n");
    for (const Row& r : rows) {
      if (o.prompt > 0 && r.parallel == o.parallel.front())
        std::printf("| pp%-4ld | %7ld | %4d | %7.2f ± %5.2f |\n", long(o.prompt), long(r.depth), 1, r.pp.mean, r.pp.sd);
      if (o.gen > 0)
        std::printf("| tg%-4ld | %7ld | %4d | %7.2f ± %5.2f |\n", long(o.gen), long(r.depth), r.parallel, r.tg.mean, r.tg.sd);
    }
    if (!tg_spec.empty()) {
      std::printf("repetitive prompt of %ld tokens, greedy, through Conversation:\n", long(std::max<int64_t>(o.prompt, 32)));
      std::printf("| tg%-4ld plain | %7.2f ± %5.2f |\n| tg%-4ld draft | %7.2f ± %5.2f |\n", long(o.gen), gp.mean, gp.sd,
                  long(o.gen), gs.mean, gs.sd);
      std::printf("%s\n", draft_stats_line(last).c_str());
    }
    for (const VerifyCost& v : vc)
      std::printf("verify of %3d tokens at depth %ld: %8.3f ms = %5.2f one-token steps\n", v.n, long(o.depth.front()),
                  v.ms, v.ratio);
    for (const OracleRun& r : oracle)
      std::printf("oracle drafter (upper bound), k = %d: %.2f tok/s vs plain %.2f = %.2fx%s; %s\n", r.k,
                  r.oracle_tok_s, r.plain_tok_s, r.oracle_tok_s / r.plain_tok_s,
                  r.same_tokens ? "" : " (TOKENS DIFFER FROM PLAIN GREEDY)", draft_stats_line(r.stats).c_str());
  }
  for (const OracleRun& r : oracle)
    if (!r.same_tokens) throw Error("--oracle-draft: the speculative run's tokens differ from plain greedy's");
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
  c->add_option("-d,--depth", o->depth, "tokens already in every sequence's cache before each test (untimed); a list")
      ->delimiter(',');
  c->add_option("--parallel", o->parallel, "sequences decoding together, one batch per step (aggregate tokens/s); a list")
      ->delimiter(',');
  c->add_option("-c,--ctx-size", o->ctx,
                "every sequence's cache capacity (default: the largest depth plus the longest test); a serving "
                "context makes a short depth pay what a large cache costs")
      ->check(in_range(int64_t(0), int64_t(1) << 24));
  c->add_option("-b,--batch-size", o->chunk, "prefill chunk for the -d fill")->check(in_range(int64_t(1), int64_t(1) << 16));
  add_kv_flags(c, o->kv);
  c->add_flag("--json", o->json, "one JSON line instead of the table");
  c->add_option("--sampling", o->sampling,
                "decode test: choose each token on the backend (default: only ids leave a GPU) or on the host from "
                "downloaded logits")->check(CLI::IsMember({"backend", "host"}));
  c->add_option("--temp", o->choice.temperature, "decode test: sampling temperature (0 = greedy)")->check(in_range(0.0f, 100.0f));
  c->add_option("--top-k", o->choice.top_k, "decode test: top-k (0 = off)")->check(in_range(0, 1 << 24));
  c->add_option("--top-p", o->choice.top_p, "decode test: top-p (1 = off)")->check(in_range(0.0f, 1.0f));
  c->add_option("--verify-cost", o->verify,
                 "time a verify of n tokens (forward with logits at every position, then rollback) against a "
                 "one-token step, at the first depth; a list")
      ->delimiter(',');
  c->add_option("--oracle-draft", o->oracle,
                "greedy -n tokens plain and with an oracle drafter of draft length k that proposes the target's own "
                "continuation (the upper bound of speculation); a list")
      ->delimiter(',');
  add_draft_options(c, o->draft);
  c->callback([o, action] { *action = [o] { return run_bench(*o); }; });
}

}  // namespace g4
