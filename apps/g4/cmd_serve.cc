// g4 serve: the OpenAI-compatible HTTP server on one model (see src/server/http_server.h).
// SIGINT / SIGTERM stop it cleanly: a watcher thread waits for them (signal handlers may not call
// into the server).
#include <algorithm>
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/error.h"
#include "commands.h"
#include "draft_flags.h"
#include "flag_check.h"
#include "run_options.h"
#include "server/gemma_codec.h"
#include "server/http_server.h"

namespace g4 {

namespace {

struct ServeOpts {
  std::string host = "127.0.0.1", api_key, model_id, cors_origin;
  int port = 8080;
  int http_threads = 0;  // 0: enough for every slot and queue place (see --http-threads)
  int64_t max_body = 4 << 20;
  int parallel = 1;
  int64_t prefill_cap = 0;  // 0: by backend (see --prefill-cap)
  int64_t queue = 64;
  bool quiet = false;
};

int run_serve(const RunOptions& ro, const ServeOpts& so, const DraftFlags& df) {
  // Block the stop signals in every thread (the server's threads inherit this); one thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client hanging up must not kill the server
#if defined(__GLIBC__)
  // glibc gives busy threads malloc arenas of their own (up to 8 a core), and each keeps its pages after a
  // burst of requests: after the 64-client load test RSS stayed 6.3 MB above its baseline with the default
  // and 2.7 MB with two arenas, at the same throughput (docs/PERF.md). MALLOC_ARENA_MAX, if set, still rules.
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
#endif

  for (char ch : so.cors_origin)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
      throw Error("--cors-origin must be one origin such as https://example.com, or '*'");
  DraftOptions draft = draft_options(df);  // flag errors before the model loads
  ModelBundle b = load_bundle(ro, false, so.parallel);  // the memory check counts every slot's cache
  load_draft_model(draft, df, *b.model, LoadOptions{ro.quantize});  // one assistant, shared by every slot
  GemmaCodec codec(b);
  ServerOptions o;
  o.host = so.host;
  o.port = so.port;
  o.api_key = so.api_key;
  o.model_id = so.model_id.empty() ? b.name : so.model_id;
  // A connection beyond the handler threads waits in the TCP backlog, where neither the queue limit (503)
  // nor anything else answers it; so by default every slot and queue place gets a thread (the 64-client
  // load test timed out 23 requests with 16 threads, 4 slots and a queue of 32, and answered no 503).
  o.threads = so.http_threads > 0 ? so.http_threads
                                  : int(std::min<int64_t>(1024, int64_t(so.parallel) + so.queue + 8));
  o.max_body_bytes = size_t(so.max_body);
  o.default_max_tokens = ro.max_new_tokens;
  o.defaults = sampling_from(ro, b);
  o.random_seed = !fixed_seed(ro);  // --seed fixes every request's default seed; else each request draws its own
  o.cache = kv_options(ro, so.parallel);
  // A step's prompt chunk stalls the other slots' next token for as long as it takes: 512 tokens are ~0.1 s
  // on an H200 but ~15 s on a 2-core CPU (37 tok/s), where 64 cost ~1.7 s at the same prefill rate per token
  // (docs/PERF.md, serving on the CPU).
  o.prefill_cap = so.prefill_cap > 0 ? so.prefill_cap : b.backend->name() == "cuda" ? 512 : 64;
  o.queue_max = size_t(so.queue);
  o.quiet = so.quiet;
  o.cors_origin = so.cors_origin;
  o.draft = draft;
  HttpServer server(*b.model, codec, ro.ctx_size, o);
  const int port = server.bind();
  const std::string drafting = draft.drafter ? std::string(", drafting with ") + draft.drafter->name() : "";
  std::fprintf(stderr, "g4 serve: %s (%s) on http://%s:%d (model id '%s', %d slot%s of %lld tokens%s%s); Ctrl-C stops\n",
               b.name.c_str(), backend_summary(*b.backend).c_str(), so.host.c_str(), port, o.model_id.c_str(), so.parallel,
               so.parallel == 1 ? "" : "s", static_cast<long long>(ro.ctx_size), drafting.c_str(),
               so.api_key.empty() ? "" : ", API key required");
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
  });
  server.serve();
  pthread_kill(watcher.native_handle(), SIGTERM);  // wake the watcher if the server stopped on its own
  watcher.join();
  const ServerStats& st = server.stats();
  std::fprintf(stderr, "g4 serve: stopped after %lld requests (%lld errors, %lld cancelled)\n",
               static_cast<long long>(st.requests.load()), static_cast<long long>(st.errors.load()),
               static_cast<long long>(st.cancelled.load()));
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Action* action) {
  static RunOptions ro;
  static ServeOpts so;
  static DraftFlags df;
  CLI::App* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, ...); "
                                         "with --draft-ngram or -md DIR every slot decodes speculatively");
  add_run_options(c, ro);
  c->add_option("--host", so.host, "address to listen on (default 127.0.0.1: this machine only)");
  c->add_option("--port", so.port, "TCP port (0 = any free port)")->check(in_range(0, 65535));
  c->add_option("--api-key", so.api_key, "require 'Authorization: Bearer KEY' on every /v1 request");
  c->add_option("--model-id", so.model_id, "model name reported by /v1/models (default: the directory name)");
  c->add_option("--http-threads", so.http_threads,
                 "connections handled at once (default: --parallel + --queue + 8, at most 1024)")
      ->check(in_range(1, 1024));
  c->add_option("--max-body", so.max_body, "largest accepted request body in bytes")
      ->check(in_range(int64_t(1024), int64_t(1) << 30));
  c->add_option("--parallel", so.parallel, "slots: requests generated at once, batched in one step (-np)")
      ->check(in_range(1, 256));
  c->add_option("--prefill-cap", so.prefill_cap,
                "prompt tokens per step over all slots (a long prompt never stalls the others; default 512 on cuda, 64 on cpu)")
      ->check(in_range(int64_t(1), int64_t(1) << 20));
  c->add_option("--queue", so.queue, "requests waiting for a slot before the server answers 503")
      ->check(in_range(int64_t(0), int64_t(1) << 20));
  c->add_flag("--quiet", so.quiet, "no log line per request");
  c->add_option("--cors-origin", so.cors_origin,
                "answer browsers from this origin ('*': any): CORS headers on every reply, preflights answered (default: off)");
  add_draft_options(c, df);
  c->callback([action] { *action = [] { return run_serve(ro, so, df); }; });
}

}  // namespace g4
