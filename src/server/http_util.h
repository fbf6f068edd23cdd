// Small helpers shared by the server's route files: JSON replies, errors, the clock, and the per-request
// record behind the log line (one request is handled on one thread from routing to the logger).
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "server/openai_request.h"

namespace g4 {

inline int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Generated text may hold bytes that are not UTF-8 (byte-fallback tokens): they become U+FFFD instead of
// an encoder exception, which inside a streaming provider would terminate the process.
inline std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(e.body()), "application/json");
}

struct RequestLog {
  std::chrono::steady_clock::time_point start;
  int64_t prompt = -1, cached = -1, completion = -1;  // -1: not a generation request
};
// The record of the request this thread is handling.
inline RequestLog& request_log() {
  thread_local RequestLog log;
  return log;
}

}  // namespace g4
