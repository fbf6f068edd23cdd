// Load test of `g4 serve` on models/tiny-kjv over loopback: 32+ concurrent streaming clients, a quarter
// of which hang up mid-stream. Every completed reply must equal the same request served alone (greedy and
// seeded sampling), the server must stay up, and its resident memory after the load must come back to the
// level it had after an identical warm-up round (tolerance kRssToleranceBytes: allocator slack, not leaks).
// The server runs 4 slots batched together (--parallel 4) with an f32 KV cache: with the cpu backend's
// default bf16 cache a reply depends on how its prompt was split into chunks (the prompt-cache hit
// length), which seeded sampling turns into a different text.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "util/g4_server_process.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 32;
constexpr int kRequestsPerClient = 4;
#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed blocks in a quarantine (up to 256 MB by default) before reusing them, so RSS after a
// round of 128 requests sits higher without any leak; LeakSanitizer checks leaks in that build instead.
constexpr int64_t kRssToleranceBytes = int64_t(96) << 20;
#else
constexpr int64_t kRssToleranceBytes = int64_t(12) << 20;
#endif

// The request mix: greedy and seeded sampling, chat with and without a system turn.
json request_body(int kind) {
  static const char* kPrompts[] = {"Who created the heaven and the earth?", "Tell me about Noah.",
                                   "What did Moses say?", "In the beginning", "Say a psalm."};
  json b = {{"model", "tiny-kjv"}, {"stream", true}, {"max_tokens", 12 + 5 * (kind % 4)}};
  b["messages"] = json::array();
  if (kind % 3 == 0) b["messages"].push_back({{"role", "system"}, {"content", "Answer in the King James style."}});
  b["messages"].push_back({{"role", "user"}, {"content", kPrompts[kind % 5]}});
  if (kind % 2 == 1) {
    b["temperature"] = 0.9;
    b["top_p"] = 0.95;
    b["seed"] = 1000 + kind;
  } else {
    b["temperature"] = 0;
  }
  return b;
}
constexpr int kKinds = 10;

struct Outcome {
  bool ok = false;         // a complete stream ending in [DONE]
  bool cancelled = false;  // we hung up on purpose
  std::string error;
  std::string content, finish;
  double seconds = 0;
};

// Streams one chat completion; hang_up_after > 0 closes the connection after that many SSE events.
Outcome stream_chat(int port, const json& body, int hang_up_after = 0) {
  Outcome o;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  c.set_connection_timeout(10, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.headers.emplace("Content-Type", "application/json");
  std::string buf;
  int events = 0;
  bool done = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (ev.rfind("data: ", 0) != 0) {
        o.error = "not an SSE data line: " + ev;
        return false;
      }
      ++events;
      const std::string payload = ev.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      const json j = json::parse(payload, nullptr, false);
      if (j.is_discarded() || !j.contains("choices")) {
        o.error = "bad chunk: " + payload;
        return false;
      }
      for (const json& ch : j["choices"]) {
        const json& d = ch["delta"];
        if (d.contains("content") && d["content"].is_string()) o.content += d["content"].get<std::string>();
        if (d.contains("tool_calls")) o.content += "[tool_calls]" + d["tool_calls"].dump();
        if (ch["finish_reason"].is_string()) o.finish = ch["finish_reason"];
      }
      if (hang_up_after > 0 && events >= hang_up_after) {
        o.cancelled = true;
        return false;
      }
    }
    return true;
  };
  const auto t0 = Clock::now();
  auto res = c.send(req);
  o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (o.cancelled) return o;
  if (!o.error.empty()) return o;
  if (!res) o.error = "transport error " + httplib::to_string(res.error());
  else if (res->status != 200) o.error = "HTTP " + std::to_string(res->status) + ": " + res->body;
  else if (!done) o.error = "stream ended without [DONE]";
  else o.ok = true;
  return o;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

struct Round {
  int served = 0, cancelled = 0, errors = 0, mismatches = 0;
  std::vector<double> latencies;
  std::string first_problem;
};

// kClients threads at once, each sending kRequestsPerClient streams; every 4th client hangs up on its
// even-numbered requests after two events (the role chunk and the first content).
Round load_round(int port, const std::vector<Outcome>& alone) {
  Round r;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c)
    threads.emplace_back([&, c] {
      for (int k = 0; k < kRequestsPerClient; ++k) {
        const int kind = (c * 3 + k) % kKinds;
        const bool hang_up = c % 4 == 3 && k % 2 == 0;
        const Outcome o = stream_chat(port, request_body(kind), hang_up ? 2 : 0);  // after the first content
        std::lock_guard<std::mutex> g(mu);
        if (o.cancelled) {
          ++r.cancelled;
        } else if (!o.ok) {
          ++r.errors;
          if (r.first_problem.empty()) r.first_problem = o.error;
        } else {
          ++r.served;
          r.latencies.push_back(o.seconds);
          if (o.content != alone[size_t(kind)].content || o.finish != alone[size_t(kind)].finish) {
            ++r.mismatches;
            if (r.first_problem.empty())
              r.first_problem = "kind " + std::to_string(kind) + ": got '" + o.content + "' (" + o.finish +
                                "), alone '" + alone[size_t(kind)].content + "' (" + alone[size_t(kind)].finish + ")";
          }
        }
      }
    });
  for (auto& t : threads) t.join();
  return r;
}

TEST(ServerLoad, ConcurrentStreamsMatchSoloRunsAndMemoryReturns) {
  g4::testing_util::G4ServerProcess server({"-m", std::string(G4_TEST_DATA) + "/../../models/tiny-kjv", "--backend",
                                         "cpu", "-t", "1", "-c", "512", "-n", "40", "--http-threads", "48",
                                         "--parallel", "4", "-ctk", "f32", "-ctv", "f32"});
  ASSERT_GT(server.port(), 0) << "g4 serve did not report a port:\n" << server.log();

  // Each request alone, one at a time: the reference replies.
  std::vector<Outcome> alone;
  for (int k = 0; k < kKinds; ++k) {
    alone.push_back(stream_chat(server.port(), request_body(k)));
    ASSERT_TRUE(alone.back().ok) << "kind " << k << ": " << alone.back().error;
    ASSERT_FALSE(alone.back().content.empty()) << "kind " << k;
  }
  // The seeded sampled requests must not all collapse onto the greedy replies (else sampling is untested).
  EXPECT_NE(alone[1].content, stream_chat(server.port(), [] { json b = request_body(1); b["seed"] = 7; return b; }()).content);

  const Round warm = load_round(server.port(), alone);  // fills the allocator's arenas and thread stacks
  EXPECT_EQ(warm.errors, 0) << warm.first_problem;
  EXPECT_EQ(warm.mismatches, 0) << warm.first_problem;
  const int64_t rss_start = server.rss_bytes();

  const auto t0 = Clock::now();
  const Round r = load_round(server.port(), alone);
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // cancelled generations end at their next token
  const int64_t rss_end = server.rss_bytes();

  std::printf("load: %d clients x %d requests in %.1f s: %d served, %d cancelled mid-stream, %d errors, "
              "%d mismatches; latency p50 %.3f s, p99 %.3f s; server RSS %.1f MiB -> %.1f MiB\n",
              kClients, kRequestsPerClient, wall, r.served, r.cancelled, r.errors, r.mismatches,
              percentile(r.latencies, 0.5), percentile(r.latencies, 0.99), double(rss_start) / (1 << 20),
              double(rss_end) / (1 << 20));
  EXPECT_EQ(r.errors, 0) << r.first_problem;
  EXPECT_EQ(r.mismatches, 0) << r.first_problem;
  EXPECT_EQ(r.served + r.cancelled, kClients * kRequestsPerClient);
  EXPECT_EQ(r.cancelled, (kClients / 4) * ((kRequestsPerClient + 1) / 2));
  ASSERT_TRUE(server.alive()) << server.log();
  httplib::Client c("127.0.0.1", server.port());
  auto health = c.Get("/health");
  ASSERT_TRUE(health) << "server gone after the load:\n" << server.log();
  EXPECT_EQ(health->status, 200);
  ASSERT_GT(rss_start, 0);
  EXPECT_LE(rss_end, rss_start + kRssToleranceBytes)
      << "server memory grew from " << rss_start << " to " << rss_end << " bytes over "
      << r.served + r.cancelled << " requests";
}

}  // namespace
