#include "server/http_server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <random>

#include "base/error.h"
#include "engine/stop_strings.h"
#include "server/http_util.h"
#include "server/logprob_format.h"
#include "server/peer_socket.h"

namespace g4 {

using nlohmann::json;

bool keys_equal(const std::string& a, const std::string& b) {
  // Compare over the expected key's length always; fold the length difference into the result.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= uint8_t(b[i] ^ (i < a.size() ? a[i] : 0));
  return diff == 0;
}

namespace {

// Connections the kernel may hold complete but not yet accepted (capped by net.core.somaxconn).
constexpr int kListenBacklog = 1024;

std::string new_id(const char* prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

uint64_t random_seed() {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  return rng();
}

// The methods a known path takes ("" for an unknown path).
std::string allowed_methods(const std::string& path) {
  if (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/tokenize" || path == "/detokenize")
    return "POST";
  if (path == "/health" || path == "/v1/models" || path == "/metrics" || path.rfind("/v1/models/", 0) == 0) return "GET";
  return "";
}

}  // namespace

HttpServer::HttpServer(const Model& model, TextCodec& codec, int64_t ctx_size, ServerOptions opts)
    : model_(model), codec_(codec), opts_(std::move(opts)), http_(std::make_unique<httplib::Server>()) {
  KvCacheOptions c = opts_.cache;
  c.ctx_size = ctx_size;
  SchedulerOptions so;
  so.prefill_cap = opts_.prefill_cap;
  so.queue_max = opts_.queue_max;
  so.draft = opts_.draft;
  scheduler_ = std::make_unique<Scheduler>(model, c, so, &stats_);
  install_routes();
  install_info_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  http_->set_payload_max_length(opts_.max_body_bytes);
  // cpp-httplib's 5 s defaults drop a client whose request or stream is stalled that long, which happens on
  // a loaded machine with many concurrent streams (the load test saw it on 2 busy cores); generation
  // servers allow far longer (llama-server: 600 s).
  http_->set_read_timeout(60, 0);
  http_->set_write_timeout(60, 0);
  const int threads = std::max(1, opts_.threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // Debian's cpp-httplib 0.11 listens with a backlog of 5, compiled into the library. A burst of more
  // connections than that overflows the accept queue; Linux then answers with SYN cookies or drops the
  // handshake's ACK, and a client that already sent its request reads a reset ("transport error Read"
  // in the load test, seen in CI). The listening socket is remembered here and its backlog raised after
  // the bind (listen() again on a listening socket only changes the backlog). Replacing httplib's
  // default options also means SO_REUSEADDR instead of its SO_REUSEPORT, so a second server on the same
  // port fails to bind instead of silently sharing it.
  auto listen_fd = std::make_shared<int>(-1);
  http_->set_socket_options([listen_fd](int fd) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = fd;
  });
  int port = opts_.port;
  if (port == 0) port = http_->bind_to_any_port(opts_.host);
  else if (!http_->bind_to_port(opts_.host, port)) port = -1;
  if (port < 0) throw Error("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + " (in use or not allowed)");
  if (*listen_fd < 0 || ::listen(*listen_fd, kListenBacklog) != 0)
    throw Error("cannot set the listen backlog on " + opts_.host + ":" + std::to_string(port));
  return port;
}

void HttpServer::serve() { http_->listen_after_bind(); }
void HttpServer::stop() {
  scheduler_->cancel_all();  // running generations end at the next step, so the handler threads can finish
  http_->stop();
}

std::shared_ptr<const TokenVocab> HttpServer::vocab() {
  std::lock_guard<std::mutex> lock(vocab_m_);
  if (!vocab_) {
    std::vector<TokenVocab::Token> tokens(size_t(model_.spec().vocab_size));
    for (size_t id = 0; id < tokens.size(); ++id) tokens[id] = codec_.token(int32_t(id));
    vocab_ = std::make_shared<TokenVocab>(
        tokens, std::vector<std::pair<std::string, uint8_t>>{
                    {"<|\"|>", kSymQuote}, {"<|tool_call>", kSymToolCallOpen}, {"<tool_call|>", kSymToolCallClose}});
  }
  return vocab_;
}

bool HttpServer::authorized(const httplib::Request& req, httplib::Response& res) {
  if (opts_.api_key.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (h.compare(0, prefix.size(), prefix) == 0 && keys_equal(h.substr(prefix.size()), opts_.api_key)) return true;
  send_error(res, ApiError{401, "invalid or missing API key", "", "authentication_error"});
  ++stats_.errors;
  return false;
}

void HttpServer::install_routes() {
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) { return this->authorized(req, res); };

  http_->Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });

  http_->Get("/v1/models", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    json m = {{"id", opts_.model_id}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "g4"}};
    res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
  });

  auto completion = [this, authorized](bool chat) {
    return [this, authorized, chat](const httplib::Request& req, httplib::Response& res) {
      ++stats_.requests;
      if (!authorized(req, res)) return;
      ApiError err;
      auto parsed = parse_completion_request(req.body, chat, opts_.defaults, &err);
      if (!parsed) {
        ++stats_.errors;
        return send_error(res, err);
      }
      auto r = std::make_shared<CompletionRequest>(std::move(*parsed));
      std::vector<int32_t> prompt;
      try {
        prompt = chat ? codec_.chat_prompt(*r) : codec_.text_prompt(r->prompt);
      } catch (const Error& e) {
        ++stats_.errors;
        return send_error(res, ApiError{400, e.what(), chat ? "messages" : "prompt"});
      }
      if (int64_t(prompt.size()) >= scheduler_->ctx_size()) {
        ++stats_.errors;
        return send_error(res, ApiError{400,
                                        "the prompt has " + std::to_string(prompt.size()) +
                                            " tokens, which does not fit the context of " +
                                            std::to_string(scheduler_->ctx_size()),
                                        chat ? "messages" : "prompt"});
      }
      if (r->seed_random || (!r->seed_given && opts_.random_seed)) r->sampling.seed = random_seed();
      GenJob job;
      job.prompt = prompt;
      job.opts.sampling = r->sampling;
      job.opts.stop_ids = codec_.stop_ids();
      job.opts.max_new_tokens = r->max_tokens > 0 ? r->max_tokens : opts_.default_max_tokens;
      job.top_logprobs = r->top_logprobs;
      if (r->grammar) {
        std::shared_ptr<const TokenVocab> v = vocab();
        if (r->forced_tool && !(v->has_symbol(kSymToolCallOpen) && v->has_symbol(kSymToolCallClose) && v->has_symbol(kSymQuote))) {
          ++stats_.errors;
          return send_error(res, ApiError{400, "this model's vocabulary has no Gemma 4 tool-call tokens, so a tool call cannot be forced",
                                          "tool_choice"});
        }
        job.constraint = std::make_shared<TokenConstraint>(r->grammar, v, job.opts.stop_ids);
      }
      if (r->no_tool_calls)
        if (auto opener = codec_.special_id("<|tool_call>")) job.banned.push_back(*opener);
      if (r->ignore_eos) {  // benchmarks: the answer runs to max_tokens (or the context's end)
        job.banned.insert(job.banned.end(), job.opts.stop_ids.begin(), job.opts.stop_ids.end());
        job.opts.stop_ids.clear();
      }
      const std::string id = new_id(chat ? "chatcmpl-" : "cmpl-");
      const int64_t created = unix_now();

      // Turns the generated ids into the reply; `final` marks the end (no more tokens will come).
      struct Reply {
        std::string text;  // visible text (completions) or content (chat), stop strings applied
        ParsedReply parsed;
        bool stopped_by_string = false;
      };
      auto build = [this, r, chat](const std::vector<int32_t>& ids) {
        Reply out;
        if (chat && !r->json_output) {
          out.parsed = codec_.parse_reply(codec_.decode(ids), r->enable_thinking);
          out.text = out.parsed.content;
        } else {
          out.text = codec_.visible_text(ids);
        }
        const size_t cut = find_stop(out.text, r->stop);
        if (cut != std::string::npos) {
          out.text.resize(cut);
          out.stopped_by_string = true;
        }
        return out;
      };
      // cached: prompt tokens whose keys and values were reused from a slot's cache (prompt cache). With
      // speculative decoding, the drafted tokens accepted and rejected, under OpenAI's names for predicted
      // outputs (which are drafts the client gives).
      auto usage = [](int64_t p, const JobChannel::Snapshot& g) {
        const int64_t c = int64_t(g.tokens.size());
        json u = {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c},
                  {"prompt_tokens_details", {{"cached_tokens", g.cached_tokens}}}};
        if (g.drafting)
          u["completion_tokens_details"] = {{"accepted_prediction_tokens", g.accepted},
                                            {"rejected_prediction_tokens", g.drafted - g.accepted}};
        return u;
      };
      auto finish_reason = [](const Reply& rep, StopReason why) -> std::string {
        if (!rep.parsed.tool_calls.empty()) return "tool_calls";
        if (rep.stopped_by_string || why == StopReason::kStopToken) return "stop";
        return "length";
      };
      // The scheduler ends generation where a stop string completes, and when the client hangs up.
      if (!r->stop.empty()) job.stop_check = [build](const std::vector<int32_t>& ids) { return build(ids).stopped_by_string; };
      const int sock = find_peer_socket(req.remote_addr, req.remote_port, req.local_port);
      job.client_gone = [sock] { return peer_closed(sock); };

      std::shared_ptr<JobChannel> ch;
      try {
        ch = scheduler_->submit(std::move(job));
      } catch (const Error& e) {
        ++stats_.errors;
        return send_error(res, ApiError{400, e.what(), "", "invalid_request_error"});
      }
      if (!ch) {
        ++stats_.errors;
        ++stats_.rejected;
        res.set_header("Retry-After", "1");
        return send_error(res, ApiError{503, "the server is busy: every slot is in use and the queue is full; retry later",
                                        "", "unavailable_error"});
      }
      RequestLog& log = request_log();
      log.prompt = int64_t(prompt.size());
      const std::vector<int32_t> stop_ids = codec_.stop_ids();

      if (!r->stream) {
        const JobChannel::Snapshot g = ch->wait_done();
        log.cached = g.cached_tokens;
        log.completion = int64_t(g.tokens.size());
        if (!g.error.empty()) {
          ++stats_.errors;
          return send_error(res, ApiError{500, g.error, "", "server_error"});
        }
        if (g.reason == StopReason::kCancelled) return;  // nobody to answer
        const Reply rep = build(g.tokens);
        json body = {{"id", id}, {"created", created}, {"model", opts_.model_id},
                     {"usage", usage(int64_t(prompt.size()), g)}};
        const std::vector<size_t> shown =
            r->top_logprobs >= 0 ? shown_tokens(g.logprobs, 0, g.logprobs.size(), stop_ids) : std::vector<size_t>{};
        size_t offset = 0;
        if (chat) {
          json msg = {{"role", "assistant"}, {"content", rep.text}};
          if (!rep.parsed.reasoning.empty()) msg["reasoning_content"] = rep.parsed.reasoning;
          if (!rep.parsed.tool_calls.empty()) {
            msg["tool_calls"] = rep.parsed.tool_calls;
            if (rep.text.empty()) msg["content"] = nullptr;
          }
          body["object"] = "chat.completion";
          body["choices"] = json::array({{{"index", 0}, {"message", msg}, {"finish_reason", finish_reason(rep, g.reason)}}});
          body["choices"][0]["logprobs"] =
              r->top_logprobs >= 0 ? json{{"content", chat_logprobs(codec_, g.logprobs, shown)}, {"refusal", nullptr}} : json(nullptr);
        } else {
          body["object"] = "text_completion";
          body["choices"] = json::array({{{"index", 0}, {"text", rep.text},
                                          {"logprobs", r->top_logprobs >= 0 ? completion_logprobs(codec_, g.logprobs, shown, offset) : json(nullptr)},
                                          {"finish_reason", finish_reason(rep, g.reason)}}});
        }
        res.set_content(dump_json(body), "application/json");
        return;
      }

      // Streaming: server-sent events, one chunk per change of the visible reply.
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, r, chat, prompt, ch, id, created, build, usage, finish_reason, stop_ids](size_t, httplib::DataSink& sink) {
            auto send = [&](const json& j) {
              const std::string s = "data: " + dump_json(j) + "\n\n";
              return sink.write(s.data(), s.size());
            };
            // Log probabilities ride on the chunks that carry text: each takes the tokens not yet reported.
            size_t lp_sent = 0, lp_offset = 0;
            std::vector<PickedToken> lps;
            auto take_logprobs = [&]() -> json {
              if (r->top_logprobs < 0) return nullptr;
              const std::vector<size_t> shown = shown_tokens(lps, lp_sent, lps.size(), stop_ids);
              lp_sent = lps.size();
              if (chat) return json{{"content", chat_logprobs(codec_, lps, shown)}, {"refusal", nullptr}};
              return completion_logprobs(codec_, lps, shown, lp_offset);
            };
            auto chunk = [&](const json& delta, const json& finish, const json& logprobs = nullptr) {
              json c = {{"id", id}, {"created", created}, {"model", opts_.model_id},
                        {"object", chat ? "chat.completion.chunk" : "text_completion"}};
              if (chat) c["choices"] = json::array({{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", finish}}});
              else c["choices"] = json::array({{{"index", 0}, {"text", delta}, {"logprobs", logprobs}, {"finish_reason", finish}}});
              return c;
            };
            bool alive = chat ? send(chunk({{"role", "assistant"}, {"content", ""}}, nullptr)) : true;
            size_t sent_text = 0, sent_reasoning = 0;
            auto flush = [&](const std::vector<int32_t>& ids, bool final) {
              Reply rep = build(ids);
              std::string& text = rep.text;
              const std::string& reasoning = rep.parsed.reasoning;
              size_t text_end = text.size(), reason_end = reasoning.size();
              if (!final && !rep.stopped_by_string) {
                text_end -= std::max(stop_prefix_hold(text, r->stop), utf8_incomplete_tail(text));
                reason_end -= utf8_incomplete_tail(reasoning);
              }
              if (chat && reason_end > sent_reasoning && reasoning.compare(0, sent_reasoning, reasoning, 0, sent_reasoning) == 0) {
                alive = alive && send(chunk({{"reasoning_content", reasoning.substr(sent_reasoning, reason_end - sent_reasoning)}}, nullptr));
                sent_reasoning = reason_end;
              }
              if (text_end > sent_text) {
                const std::string piece = text.substr(sent_text, text_end - sent_text);
                const json lp = take_logprobs();
                alive = alive && send(chat ? chunk({{"content", piece}}, nullptr, lp) : chunk(piece, nullptr, lp));
                sent_text = text_end;
              }
              return rep;
            };
            JobChannel::Snapshot g;
            while (alive) {
              g = ch->wait(g.tokens.size());
              lps = g.logprobs;
              if (!g.done && !g.tokens.empty()) flush(g.tokens, false);
              if (g.done) break;
            }
            RequestLog& log = request_log();
            log.cached = g.cached_tokens;
            log.completion = int64_t(g.tokens.size());
            if (!alive || g.reason == StopReason::kCancelled) {
              ch->cancel();
              return false;  // the client left: close the connection
            }
            if (!g.error.empty()) {
              send(ApiError{500, g.error, "", "server_error"}.body());
              sink.done();
              return true;
            }
            Reply rep = flush(g.tokens, true);
            if (r->top_logprobs >= 0 && !shown_tokens(lps, lp_sent, lps.size(), stop_ids).empty()) {
              const json lp = take_logprobs();
              send(chat ? chunk(json::object(), nullptr, lp) : chunk("", nullptr, lp));
            }
            if (chat && !rep.parsed.tool_calls.empty()) {
              json calls = rep.parsed.tool_calls;
              for (size_t i = 0; i < calls.size(); ++i) calls[i]["index"] = i;
              send(chunk({{"tool_calls", calls}}, nullptr));
            }
            const std::string fin = finish_reason(rep, g.reason);
            send(chat ? chunk(json::object(), fin) : chunk("", fin));
            if (r->include_usage) {
              json u = chunk(json::object(), nullptr);
              u["choices"] = json::array();
              u["usage"] = usage(int64_t(prompt.size()), g);
              send(u);
            }
            const std::string done = "data: [DONE]\n\n";
            sink.write(done.data(), done.size());
            sink.done();
            return true;
          },
          [ch](bool) { ch->cancel(); });  // the stream ended, however it ended: nothing runs on for nobody
    };
  };
  http_->Post("/v1/chat/completions", completion(true));
  http_->Post("/v1/completions", completion(false));

  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler already wrote an error
    // A known path asked with the wrong method: 405 and the methods it takes.
    const std::string allow = allowed_methods(req.path);
    if (res.status == 404 && !allow.empty()) {
      res.set_header("Allow", allow);
      return send_error(res, ApiError{405, req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")",
                                      "", "invalid_request_error"});
    }
    const int s = res.status;
    std::string msg = s == 404 ? "no such endpoint" : s == 413 ? "the request body is too large" : "request failed";
    send_error(res, ApiError{s, msg, "", s == 404 ? "not_found_error" : "invalid_request_error"});
  });
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_log() = RequestLog{std::chrono::steady_clock::now()};
    // CORS preflight (only with --cors-origin): any path, no API key (browsers send none on a preflight).
    if (!opts_.cors_origin.empty() && req.method == "OPTIONS") {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type" : asked);
      res.set_header("Access-Control-Max-Age", "600");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Every reply (errors and streams included) carries the CORS headers when they are on.
  if (!opts_.cors_origin.empty())
    http_->set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Origin", opts_.cors_origin);
      if (opts_.cors_origin != "*") res.set_header("Vary", "Origin");
    });
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (opts_.quiet) return;
    const RequestLog& l = request_log();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - l.start).count();
    std::string path = req.path;
    for (char& c : path)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';  // one line per request, whatever the path
    std::string tokens;
    if (l.prompt >= 0)
      tokens = " prompt=" + std::to_string(l.prompt) + " cached=" + std::to_string(std::max<int64_t>(0, l.cached)) +
               " completion=" + std::to_string(std::max<int64_t>(0, l.completion));
    std::fprintf(stderr, "g4 serve: %s %s %d%s %.3f s\n", req.method.c_str(), path.c_str(), res.status, tokens.c_str(), s);
  });
  http_->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    ++stats_.errors;
    send_error(res, ApiError{500, "internal error", "", "server_error"});
  });
}

}  // namespace g4
