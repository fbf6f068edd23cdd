// g4 logits: the logits at every position of one forward pass.
// g4 generate: a continuation step by step through the KV cache, with the logits of every step.
// Both write safetensors files; their names and tensor layouts are a stable scripted interface.
#include <cstdio>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "base/error.h"
#include "commands.h"
#include "flag_check.h"
#include "io/safetensors_writer.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "token_list.h"

namespace g4 {

namespace {

struct CommonOpts {
  std::string model, tokens, backend = "ref", out;  // the oracle: numbers that never depend on the machine
  int64_t chunk = 0;
  int64_t ctx = 0;
  LoadOptions load;
};

void add_common(CLI::App* c, CommonOpts& o) {
  c->add_option("--model,-m", o.model, "model directory (config.json + safetensors) or .safetensors file")->required();
  c->add_option("--tokens", o.tokens, "comma-separated prompt token ids, e.g. 2,17,99")->required();
  c->add_option("--backend", o.backend, "backend: ref (default: the scalar oracle, so scripted numbers never depend on the machine), auto, cpu, cuda");
  c->add_option("--out", o.out, "output .safetensors file")->required();
  c->add_option("--chunk-size", o.chunk, "prefill chunk size in tokens (0 = whole prompt at once)")
      ->check(in_range(int64_t(0), int64_t(1) << 20));
  c->add_option("--ctx-size,-c", o.ctx, "context size in tokens (0 = just what the command needs)")
      ->check(in_range(int64_t(0), int64_t(1) << 20));
  c->add_option("--quantize", o.load.quantize, "quantize a float checkpoint while loading: int4 or int8")
      ->check(CLI::IsMember({"int4", "int8"}));
}

int run_logits(const CommonOpts& o) {
  const std::vector<int32_t> tokens = parse_token_list(o.tokens);
  auto backend = make_backend(o.backend);
  auto model = Model::load(o.model, *backend, o.load);
  Session session(*model, o.ctx > 0 ? o.ctx : int64_t(tokens.size()));
  std::vector<float> logits = session.forward(tokens, LogitsMode::kAll, o.chunk);
  const int64_t V = model->spec().vocab_size;
  write_safetensors(o.out, {{"logits", DType::kF32, {int64_t(tokens.size()), V}, logits.data()}});
  return 0;
}

int run_generate(const CommonOpts& o, int64_t n_new, const SamplingParams& sp) {
  const std::vector<int32_t> prompt = parse_token_list(o.tokens);
  validate(sp);
  auto backend = make_backend(o.backend);
  auto model = Model::load(o.model, *backend, o.load);
  const int64_t V = model->spec().vocab_size;
  Session session(*model, o.ctx > 0 ? o.ctx : int64_t(prompt.size()) + n_new);
  Sampler sampler(sp);
  std::vector<int32_t> history = prompt, generated;
  std::vector<float> step_logits;
  std::vector<float> logits = session.forward(prompt, LogitsMode::kLast, o.chunk);
  for (int64_t i = 0; i < n_new; ++i) {
    const int32_t tok = sampler.sample(logits.data(), V, history);
    step_logits.insert(step_logits.end(), logits.begin(), logits.end());
    generated.push_back(tok);
    history.push_back(tok);
    if (i + 1 < n_new) logits = session.forward({tok}, LogitsMode::kLast);
  }
  write_safetensors(o.out, {{"tokens", DType::kI32, {n_new}, generated.data()},
                            {"step_logits", DType::kF32, {n_new, V}, step_logits.data()}});
  return 0;
}

}  // namespace

void add_logits_commands(CLI::App& app, Action* action) {
  static CommonOpts lo, go;
  static int64_t n_new = 16;
  static SamplingParams sp;

  CLI::App* l = app.add_subcommand("logits", "write the logits of every prompt position (f32 [T, V]) to --out");
  add_common(l, lo);
  l->callback([action] { *action = [] { return run_logits(lo); }; });

  CLI::App* g = app.add_subcommand("generate", "generate through the KV cache; write tokens [N] and step_logits [N, V]");
  add_common(g, go);
  g->add_option("--max-new-tokens,-n", n_new, "tokens to generate")->check(in_range(int64_t(1), int64_t(1) << 20));
  g->add_option("--temperature,--temp", sp.temperature, "0 = greedy");
  g->add_option("--top-k", sp.top_k, "keep the k most likely tokens (0 = off)");
  g->add_option("--top-p", sp.top_p, "nucleus sampling threshold (1 = off)");
  g->add_option("--min-p", sp.min_p, "drop tokens below min-p times the top probability (0 = off)");
  g->add_option("--repeat-penalty", sp.repeat_penalty, "penalty for recently seen tokens (1 = off)");
  g->add_option("--seed,-s", sp.seed, "random seed");
  g->callback([action] { *action = [] { return run_generate(go, n_new, sp); }; });
}

}  // namespace g4
