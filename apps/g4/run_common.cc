#include "run_common.h"

#include <signal.h>

#include <cstdio>

namespace g4 {

std::atomic<bool> g_interrupted{false};

namespace {
void on_sigint(int) { g_interrupted = true; }
}  // namespace

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns so the prompt loop can leave
  sigaction(SIGINT, &sa, nullptr);
}

void add_prompt_options(CLI::App* c, PromptOpts& po) {
  c->add_option("--system", po.system, "system prompt");
  c->add_flag("--think", po.think, "enable thinking (the model reasons in a thought channel first)");
  c->add_option("--stop", po.stops, "stop when this text appears (repeatable)");
  c->add_flag("-q,--quiet", po.quiet, "print only the generated text (no load line or timings)");
}

GenerateOptions generate_options(const RunOptions& ro, const ModelBundle& b) {
  GenerateOptions go;
  go.sampling = sampling_from(ro, b);
  go.max_new_tokens = ro.max_new_tokens;
  go.stop_ids = b.stop_ids;
  go.prefill_chunk = ro.prefill_chunk;
  return go;
}

std::string stats_line(const ModelBundle& b, const GenerateResult& r) {
  char buf[320];
  const double pf = r.prefill_s > 0 ? double(r.prompt_tokens) / r.prefill_s : 0;
  const double dc = r.decode_s > 0 && r.tokens.size() > 1 ? double(r.tokens.size() - 1) / r.decode_s : 0;
  std::snprintf(buf, sizeof buf,
                "load %.2f s on %s | prompt %lld tokens, %.1f tok/s | time to first token %.3f s | %zu tokens, %.1f tok/s | %s",
                b.load_seconds, backend_summary(*b.backend).c_str(), static_cast<long long>(r.prompt_tokens), pf,
                r.prefill_s, r.tokens.size(), dc, stop_reason_name(r.reason));
  return buf;
}

}  // namespace g4
