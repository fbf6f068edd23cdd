// The OpenAI-compatible HTTP server: /v1/chat/completions (streaming SSE and not), /v1/completions,
// /v1/models, /v1/models/{id}, /tokenize, /detokenize, /metrics, /health. Generation goes through a
// Scheduler (server/scheduler.h): N slots batched continuously, a prompt cache per slot, a bounded queue
// (503 with Retry-After when full). Handler threads submit a job and stream from its channel. A reply
// never depends on other clients (every sequence's logits are its own). A client that disconnects cancels
// its generation at the next step (streaming or not), and a stop string ends it where it completes.
// logprobs, response_format (json_object, json_schema) and a forced tool_choice go through the scheduler's
// token picker, the JSON kinds and forced calls through a grammar mask (engine/token_mask.h).
// ServerOptions::cors_origin adds CORS headers and answers preflights.
// One log line per request on stderr unless quiet.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "server/openai_request.h"
#include "server/scheduler.h"
#include "server/server_stats.h"
#include "server/text_codec.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace g4 {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;
  std::string api_key;             // empty: no authentication
  std::string model_id = "g4";
  size_t max_body_bytes = size_t(4) << 20;
  int threads = 8;                 // connections handled at once
  int64_t default_max_tokens = 512;
  SamplingParams defaults;         // from generation_config.json, overridable per request
  bool random_seed = true;         // a request without a seed gets a random one (else defaults.seed)
  KvCacheOptions cache;            // the KV cache: its n_seq is the number of slots (--parallel)
  int64_t prefill_cap = 512;       // prompt tokens per scheduler step, all slots together
  size_t queue_max = 64;           // requests waiting for a slot before 503
  bool quiet = false;              // no per-request log line
  std::string cors_origin;         // non-empty: CORS headers on every reply and preflights answered
  DraftOptions draft;              // draft.drafter set: speculative decoding in every slot (server/scheduler.h)
};

class HttpServer {
 public:
  HttpServer(const Model& model, TextCodec& codec, int64_t ctx_size, ServerOptions opts);
  ~HttpServer();

  // Binds the socket; throws g4::Error naming host and port when it cannot. Returns the bound port
  // (useful with port 0).
  int bind();
  // Serves until stop() is called from another thread or a signal handler.
  void serve();
  void stop();
  const ServerStats& stats() const { return stats_; }

 private:
  // False (and a 401 written) when an API key is required and the request lacks it.
  bool authorized(const httplib::Request& req, httplib::Response& res);
  void install_routes();
  void install_info_routes();  // /tokenize, /detokenize, /metrics, /v1/models/{id} (info_routes.cc)
  // The vocabulary as token masks read it, built on first use.
  std::shared_ptr<const TokenVocab> vocab();

  const Model& model_;
  TextCodec& codec_;
  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  ServerStats stats_;
  std::mutex vocab_m_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::unique_ptr<Scheduler> scheduler_;  // declared last: its thread stops first
};

// Constant-time comparison of a presented key with the expected one (no early exit on a mismatch).
bool keys_equal(const std::string& presented, const std::string& expected);

}  // namespace g4
