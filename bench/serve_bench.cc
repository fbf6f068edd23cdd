// serve_bench: drives N concurrent streaming chat clients against a running `g4 serve` (or any
// OpenAI-compatible server) and prints aggregate output tokens/s and p50/p99 time to first token and
// inter-token latency. Each client sends its requests one after the other, each with a distinct prompt.
//   serve_bench [--host H] [--port P] [--streams N] [--requests R] [--max-tokens M] [--prompt-words W]
//               [--prompt TEXT]  (TEXT after the request's own prefix instead of the W numbered words)
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size() - 1) + 0.5));
  return v[i];
}

struct Totals {
  std::mutex m;
  std::vector<double> ttft, itl;
  long long tokens = 0, failed = 0;
};

void client(const std::string& host, int port, int id, int requests, int max_tokens, int words, const std::string& text,
            Totals* t) {
  httplib::Client c(host, port);
  c.set_read_timeout(600, 0);
  for (int r = 0; r < requests; ++r) {
    std::string prompt = "Request " + std::to_string(id) + "." + std::to_string(r) + ":";
    if (!text.empty()) prompt += " " + text;
    else
      for (int w = 0; w < words; ++w) prompt += " word" + std::to_string((id * 131 + r * 17 + w) % 97);
    const json body = {{"model", "bench"}, {"messages", {{{"role", "user"}, {"content", prompt}}}}, {"max_tokens", max_tokens},
                       {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    std::vector<Clock::time_point> arrivals;
    long long tokens = -1;
    std::string buffer;
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      const auto now = Clock::now();
      buffer.append(d, n);
      size_t end;
      while ((end = buffer.find("\n\n")) != std::string::npos) {
        const std::string ev = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        if (ev.rfind("data: {", 0) != 0) continue;
        const json j = json::parse(ev.substr(6), nullptr, false);
        if (j.is_discarded()) continue;
        if (j.contains("usage") && j["usage"].is_object()) tokens = j["usage"]["completion_tokens"].get<long long>();
        if (j.contains("choices") && !j["choices"].empty()) {
          const json& delta = j["choices"][0]["delta"];
          if (delta.contains("content") && delta["content"].is_string() && !delta["content"].get<std::string>().empty())
            arrivals.push_back(now);
          else if (delta.contains("reasoning_content")) arrivals.push_back(now);
        }
      }
      return true;
    };
    const auto t0 = Clock::now();
    auto res = c.send(req);
    std::lock_guard<std::mutex> lock(t->m);
    if (!res || res->status != 200 || tokens < 0) {
      ++t->failed;
      continue;
    }
    t->tokens += tokens;
    if (!arrivals.empty()) t->ttft.push_back(ms_between(t0, arrivals[0]));
    for (size_t i = 1; i < arrivals.size(); ++i) t->itl.push_back(ms_between(arrivals[i - 1], arrivals[i]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", text;
  int port = 8080, streams = 1, requests = 4, max_tokens = 64, words = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") host = v;
    else if (k == "--port") port = std::atoi(v.c_str());
    else if (k == "--streams") streams = std::atoi(v.c_str());
    else if (k == "--requests") requests = std::atoi(v.c_str());
    else if (k == "--max-tokens") max_tokens = std::atoi(v.c_str());
    else if (k == "--prompt-words") words = std::atoi(v.c_str());
    else if (k == "--prompt") text = v;
    else {
      std::fprintf(stderr, "serve_bench: error: unknown flag %s\n", k.c_str());
      return 1;
    }
  }
  if (streams < 1 || requests < 1 || max_tokens < 1 || words < 0 || port < 1) {
    std::fprintf(stderr, "serve_bench: error: --streams, --requests, --max-tokens and --port must be >= 1\n");
    return 1;
  }
  Totals t;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) threads.emplace_back(client, host, port, s, requests, max_tokens, words, text, &t);
  for (auto& th : threads) th.join();
  const double wall = ms_between(t0, Clock::now()) / 1000.0;
  std::printf("streams %d  requests %d  failed %lld  tokens %lld  wall %.2f s  aggregate %.1f tok/s  "
              "TTFT p50 %.0f ms p99 %.0f ms  ITL p50 %.1f ms p99 %.1f ms\n",
              streams, streams * requests, t.failed, t.tokens, wall, double(t.tokens) / wall, percentile(t.ttft, 50),
              percentile(t.ttft, 99), percentile(t.itl, 50), percentile(t.itl, 99));
  return t.failed == 0 ? 0 : 1;
}
