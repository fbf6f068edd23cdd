// Load test (issue 7), loopback only and bounded: the real server on the shipped model (tokenizer,
// chat template, cpu backend) under 32 concurrent streaming clients plus 8 that hang up mid-stream.
// Every completed reply must equal the same request served alone (greedy and seeded sampling), the
// server must stay up, and its memory must return to where it was. Prints requests served, errors
// and p50/p99 latency.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "engine/model_bundle.h"
#include "server/gemma_codec.h"
#include "server/http_server.h"

namespace g4 {
namespace {

using nlohmann::json;

int64_t rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

struct Reply {
  std::string text;
  bool done = false;  // saw [DONE]
  double seconds = 0;
};

// One streaming chat request; abort_after > 0 hangs up after that many events.
Reply stream(int port, const std::string& body, int abort_after = 0) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  Reply r;
  std::string buf;
  int events = 0;
  const auto t0 = std::chrono::steady_clock::now();
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buf.append(d, n);
    size_t e;
    while ((e = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, e);
      buf.erase(0, e + 2);
      if (ev == "data: [DONE]") { r.done = true; continue; }
      if (ev.rfind("data: ", 0) != 0) continue;
      const json j = json::parse(ev.substr(6));
      if (!j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
        r.text += j["choices"][0]["delta"]["content"].get<std::string>();
      if (abort_after > 0 && ++events >= abort_after) return false;
    }
    return true;
  };
  c.send(req);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string body(int i) {
  static const char* prompts[] = {"In the beginning", "Who was Moses?", "Tell me of the sea", "And God said",
                                  "What is love?", "Sing a psalm", "Where is Jerusalem?", "Speak of the king"};
  json b = {{"messages", {{{"role", "user"}, {"content", prompts[i % 8]}}}}, {"max_tokens", 24}, {"stream", true}};
  if (i >= 8) b["temperature"] = 0.9, b["seed"] = 1000 + i;  // seeded sampling
  else b["temperature"] = 0;
  return b.dump();
}

TEST(LoadTest, ConcurrentStreamingClientsGetTheirSoloReplies) {
  ModelBundle b = ModelBundle::load(std::string(G4_TEST_DATA) + "/../../models/tiny-kjv", "cpu", LoadOptions{});
  GemmaCodec codec(b);
  ServerOptions o;
  o.port = 0;
  o.threads = 48;
  HttpServer server(*b.model, codec, 1024, o);
  const int port = server.bind();
  std::thread serving([&] { server.serve(); });

  constexpr int kDistinct = 16, kClients = 32, kQuitters = 8;
  std::vector<std::string> solo(kDistinct);
  for (int i = 0; i < kDistinct; ++i) {
    Reply r = stream(port, body(i));
    ASSERT_TRUE(r.done) << i;
    solo[size_t(i)] = r.text;
  }
  for (int i = 0; i < kDistinct; ++i) stream(port, body(i));  // warm every allocation path once more
  const int64_t rss_before = rss_kb();

  std::vector<std::future<Reply>> clients, quitters;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::async(std::launch::async, [&, i] { return stream(port, body(i % kDistinct)); }));
  for (int i = 0; i < kQuitters; ++i)
    quitters.push_back(std::async(std::launch::async, [&, i] { return stream(port, body(i), 2); }));
  std::vector<double> latency;
  int mismatches = 0;
  for (int i = 0; i < kClients; ++i) {
    Reply r = clients[size_t(i)].get();
    EXPECT_TRUE(r.done) << "client " << i << " did not complete";
    if (r.text != solo[size_t(i % kDistinct)]) ++mismatches;
    EXPECT_EQ(r.text, solo[size_t(i % kDistinct)]) << "client " << i;
    latency.push_back(r.seconds);
  }
  for (auto& q : quitters) q.get();
  for (int i = 0; i < 600 && server.stats().cancelled.load() < kQuitters; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

  httplib::Client c("127.0.0.1", port);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const int64_t rss_after = rss_kb();
  std::sort(latency.begin(), latency.end());
  const ServerStats& st = server.stats();
  std::printf("[ load ] %lld requests served, %lld errors, %lld cancelled, %d mismatches; latency p50 %.2f s, p99 %.2f s;"
              " RSS %lld -> %lld KB\n",
              static_cast<long long>(st.requests.load()), static_cast<long long>(st.errors.load()),
              static_cast<long long>(st.cancelled.load()), mismatches, latency[latency.size() / 2],
              latency[std::min(latency.size() - 1, size_t(double(latency.size()) * 0.99))],
              static_cast<long long>(rss_before), static_cast<long long>(rss_after));
  EXPECT_EQ(st.errors.load(), 0);
  EXPECT_EQ(st.cancelled.load(), kQuitters);
  // 40 connections' thread stacks and buffers come and go; more than 8 MB kept would be a leak.
  EXPECT_LT(rss_after - rss_before, 8 * 1024) << "memory did not return to its starting level";
  server.stop();
  serving.join();
}

}  // namespace
}  // namespace g4
