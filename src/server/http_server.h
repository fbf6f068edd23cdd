// The OpenAI-compatible HTTP server: /v1/chat/completions (streaming SSE and not), /v1/completions,
// /v1/models, /health. One model, one Conversation: requests are served one at a time in arrival
// order (the rest wait on a lock). A request reuses the longest common token prefix with what the cache
// holds from the previous one (usage.prompt_tokens_details.cached_tokens) and rolls the rest back; the
// rollback is exact, so a reply never depends on other clients.
// A client that disconnects cancels its generation at the next token (streaming: the next write fails;
// otherwise the connection is checked after every token), and a stop string ends it where it completes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "engine/conversation.h"
#include "server/openai_request.h"
#include "server/text_codec.h"

namespace httplib {
class Server;
}

namespace g4 {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;
  std::string api_key;             // empty: no authentication
  std::string model_id = "g4";
  size_t max_body_bytes = size_t(4) << 20;
  int threads = 8;                 // connections handled at once (generation itself is serialised)
  int64_t default_max_tokens = 512;
  SamplingParams defaults;         // from generation_config.json, overridable per request
  KvCacheOptions cache;            // the KV cache (its ctx_size is the server's)
};

struct ServerStats {
  std::atomic<int64_t> requests{0}, errors{0}, cancelled{0};
  std::atomic<int64_t> tokens{0};  // tokens generated, all requests together (the server's work)
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
  void install_routes();

  const Model& model_;
  TextCodec& codec_;
  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::mutex model_mutex_;  // one generation at a time
  Conversation conv_;
  ServerStats stats_;
};

// Constant-time comparison of a presented key with the expected one (no early exit on a mismatch).
bool keys_equal(const std::string& presented, const std::string& expected);

}  // namespace g4
