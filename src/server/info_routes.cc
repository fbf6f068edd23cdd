// The server's small endpoints: /tokenize and /detokenize (llama-server's shapes), /metrics (Prometheus
// text) and /v1/models/{id}.
#include <httplib.h>

#include "base/error.h"
#include "server/http_server.h"
#include "server/http_util.h"
#include "server/metrics.h"

namespace g4 {

using nlohmann::json;

namespace {

// The body as a JSON object, or an error written to res.
bool parse_object(const httplib::Request& req, httplib::Response& res, json* out) {
  *out = json::parse(req.body, nullptr, false);
  if (out->is_discarded() || !out->is_object()) {
    send_error(res, ApiError{400, "the body must be a JSON object", ""});
    return false;
  }
  return true;
}

bool flag(const json& j, const char* key, bool fallback, httplib::Response& res, bool* out) {
  *out = fallback;
  if (!j.contains(key) || j[key].is_null()) return true;
  if (!j[key].is_boolean()) {
    send_error(res, ApiError{400, std::string("'") + key + "' must be a boolean", key});
    return false;
  }
  *out = j[key].get<bool>();
  return true;
}

}  // namespace

void HttpServer::install_info_routes() {
  http_->Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    json j;
    bool add_special = false, with_pieces = false;
    if (!parse_object(req, res, &j) || !flag(j, "add_special", false, res, &add_special) ||
        !flag(j, "with_pieces", false, res, &with_pieces))
      return;
    if (!j.contains("content") || !j["content"].is_string())
      return send_error(res, ApiError{400, "'content' must be a string", "content"});
    std::vector<int32_t> ids;
    try {
      ids = codec_.tokenize(j["content"].get<std::string>(), add_special);
    } catch (const Error& e) {
      return send_error(res, ApiError{400, e.what(), "content"});
    }
    json tokens = json::array();
    for (int32_t id : ids) {
      if (with_pieces) tokens.push_back({{"id", id}, {"piece", codec_.decode({id})}});
      else tokens.push_back(id);
    }
    res.set_content(dump_json(json{{"tokens", tokens}}), "application/json");
  });

  http_->Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    json j;
    if (!parse_object(req, res, &j)) return;
    if (!j.contains("tokens") || !j["tokens"].is_array())
      return send_error(res, ApiError{400, "'tokens' must be an array of token ids", "tokens"});
    const int64_t V = model_.spec().vocab_size;
    std::vector<int32_t> ids;
    for (const json& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= V)
        return send_error(res, ApiError{400, "every token must be an integer id in [0, " + std::to_string(V) + ")", "tokens"});
      ids.push_back(int32_t(t.get<int64_t>()));
    }
    res.set_content(dump_json(json{{"content", codec_.decode(ids)}}), "application/json");
  });

  http_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(metrics_text(stats_, scheduler_->load()), "text/plain; version=0.0.4");
  });

  http_->Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    const std::string id = req.matches[1];
    if (id != opts_.model_id)
      return send_error(res, ApiError{404, "no model '" + id + "' (this server has '" + opts_.model_id + "')", "model",
                                      "not_found_error"});
    res.set_content(json{{"id", opts_.model_id}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "g4"}}.dump(),
                    "application/json");
  });
}

}  // namespace g4
