// Continuous batching through the HTTP server (server/scheduler.h) on the fixture model: concurrent
// greedy requests get their solo answers, also while another slot reads a long prompt in small chunks
// (and a short request answers before the long prompt's first token: the steps interleave); a
// non-streaming client that leaves frees its slot for the next queued request; the prompt cache finds
// each conversation's slot; a full queue answers 503 with Retry-After; seeds; /metrics; the small
// endpoints; 405.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_fixture.h"

namespace g4 {
namespace {

ServerOptions slots(int n, int64_t prefill_cap = 512, size_t queue = 64) {
  ServerOptions o;
  o.cache.n_seq = n;
  o.prefill_cap = prefill_cap;
  o.queue_max = queue;
  return o;
}

std::string content_of(const httplib::Result& r) {
  if (!r || r->status != 200) return "<error " + (r ? std::to_string(r->status) + " " + r->body : std::string("transport")) + ">";
  return json::parse(r->body)["choices"][0]["message"]["content"];
}

// A metric's value from /metrics (-1 when absent).
double metric(const httplib::Client& cc, const std::string& name) {
  httplib::Client& c = const_cast<httplib::Client&>(cc);
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  const std::string key = "\ng4_" + name + " ";
  const size_t at = r->body.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + key.size()));
}

template <class F>
void wait_for(const F& cond, int ms = 60000) {
  for (int i = 0; i < ms / 5 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// Sends a non-streaming request on a raw socket and returns the socket (close it to hang up).
int send_raw(int port, const std::string& body) {
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  if (write(fd, request.data(), request.size()) != ssize_t(request.size())) return -1;
  return fd;
}

// A trained model (models/tiny-kjv): its greedy replies depend on the prompt, where the fixture model's
// random weights repeat one token whatever the prompt.
std::string trained_model() { return std::string(G4_TEST_DATA) + "/../../models/tiny-kjv"; }

std::string long_text(int n) {
  std::string s;
  for (int i = 0; s.size() < size_t(n); ++i) s += "verse " + std::to_string(i) + " ";
  return s.substr(0, size_t(n));
}

// Four greedy requests and a seeded sampled one at once on four slots, one of them a long prompt read 8
// tokens per step: each reply is the one the request gets alone on a one-slot server.
TEST(Scheduler, ConcurrentRequestsGetTheirSoloAnswers) {
  const std::string long_prompt = long_text(400);
  const std::vector<std::string> prompts = {"In the beginning", "And God said", "x", "the end", long_prompt, "Let there be"};
  auto body = [&](size_t i, bool stream) {
    return i == 5 ? chat_body(prompts[i], 12, stream, 0.9, 42) : chat_body(prompts[i], 12, stream);
  };
  std::vector<std::string> solo;
  {
    ServerFixture one({}, 512, trained_model());
    for (size_t i = 0; i < prompts.size(); ++i)
      solo.push_back(content_of(one.client().Post("/v1/chat/completions", body(i, false), "application/json")));
  }
  std::set<std::string> distinct(solo.begin(), solo.end());
  ASSERT_GE(distinct.size(), 4u) << "the solo replies hardly depend on the prompt: the test could not see a mix-up";
  ServerFixture f(slots(4, 8), 512, trained_model());
  std::vector<std::future<std::string>> got;
  for (size_t i = 0; i < prompts.size(); ++i)
    got.push_back(std::async(std::launch::async, [&, i] {
      return i % 2 ? stream_chat(f, body(i, true)) : content_of(f.client().Post("/v1/chat/completions", body(i, false), "application/json"));
    }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i].get(), solo[i]) << "request " << i;
}

// A long prompt read 4 tokens per step: a short request sent while it is being read answers in full
// before the long prompt's first token (the steps interleave), and both answers equal their solo runs.
// A server that runs one request at a time answers the short request only after the long one.
TEST(Scheduler, ShortRequestAnswersWhileALongPromptIsRead) {
  const std::string long_prompt = long_text(480);
  std::string solo_long, solo_short;
  {
    ServerFixture one({}, 512, trained_model());
    solo_long = content_of(one.client().Post("/v1/chat/completions", chat_body(long_prompt, 4, false), "application/json"));
    solo_short = content_of(one.client().Post("/v1/chat/completions", chat_body("hi", 8, false), "application/json"));
  }
  ASSERT_NE(solo_short, solo_long);
  ServerFixture f(slots(2, 4), 512, trained_model());
  httplib::Client probe = f.client();
  std::atomic<int> order{0};
  std::atomic<int> long_first{-1}, short_done{-1};
  auto long_reply = std::async(std::launch::async, [&] {
    std::string got;
    httplib::Client c = f.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = chat_body(long_prompt, 4, true);
    req.set_header("Content-Type", "application/json");
    std::string buffer;
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      buffer.append(d, n);
      if (long_first < 0 && buffer.find("\"content\":\"w") != std::string::npos) long_first = order++;
      return true;
    };
    c.send(req);
    return buffer;
  });
  wait_for([&] { return metric(probe, "slots_busy") == 1; });
  const std::string short_reply = content_of(f.client().Post("/v1/chat/completions", chat_body("hi", 8, false), "application/json"));
  short_done = order++;
  const std::string long_sse = long_reply.get();
  EXPECT_EQ(short_reply, solo_short);
  EXPECT_EQ(short_done, 0) << "the short request waited for the long prompt's first token";
  EXPECT_EQ(long_first, 1);
  // The long stream's content, reassembled, is its solo answer.
  std::string content;
  for (size_t at = 0; (at = long_sse.find("data: {", at)) != std::string::npos; ++at) {
    const json j = json::parse(long_sse.substr(at + 6, long_sse.find("\n\n", at) - at - 6));
    if (!j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
      content += j["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, solo_long);
}

// One slot: a non-streaming client hangs up mid-generation; the request queued behind it starts at
// once and answers in full, long before the first request's 400 tokens would have ended.
TEST(Scheduler, CancelledNonStreamingRequestFreesItsSlot) {
  ServerFixture f(slots(1));
  httplib::Client probe = f.client();
  const int fd = send_raw(f.port, chat_body("long", 400, false));
  ASSERT_GE(fd, 0);
  wait_for([&] { return f.server->stats().tokens.load() >= 2; });
  auto next = std::async(std::launch::async, [&] {
    return content_of(f.client().Post("/v1/chat/completions", chat_body("next", 5, false), "application/json"));
  });
  wait_for([&] { return metric(probe, "queue_length") == 1; });
  const int64_t before = f.server->stats().tokens.load();
  close(fd);
  const std::string reply = next.get();
  EXPECT_EQ(std::count(reply.begin(), reply.end(), 'w'), 5) << reply;
  EXPECT_EQ(f.server->stats().cancelled.load(), 1);
  // The first request stopped within a few steps of the hang-up: 5 tokens for "next" and a handful more.
  EXPECT_LT(f.server->stats().tokens.load() - before, 5 + 20);
  EXPECT_LT(f.server->stats().tokens.load(), 200);
}

// Two conversations alternate on two slots: each follow-up turn finds its own conversation's slot and
// reuses its whole first turn (34 tokens: <bos> and "user:tell me about the beginning|"), and answers as
// a server that never saw anything before. One slot serving both reuses only the shared "<bos>user:".
TEST(Scheduler, FollowUpTurnsFindTheirSlot) {
  auto body = [](const std::string& first, const std::string& second) {
    json msgs = {{{"role", "user"}, {"content", first}}};
    if (!second.empty()) {
      msgs.push_back({{"role", "assistant"}, {"content", "ok"}});
      msgs.push_back({{"role", "user"}, {"content", second}});
    }
    return json{{"model", "x"}, {"messages", msgs}, {"max_tokens", 5}, {"temperature", 0}}.dump();
  };
  const std::string a1 = "tell me about the beginning", b1 = "what is at the end of days";
  ServerFixture cold;
  auto cold_reply = cold.client().Post("/v1/chat/completions", body(a1, "and the end"), "application/json");
  ASSERT_TRUE(cold_reply);
  EXPECT_EQ(json::parse(cold_reply->body)["usage"]["prompt_tokens_details"]["cached_tokens"], 0);  // nothing cached yet
  const std::string want = content_of(cold_reply);
  for (int n : {2, 1}) {
    ServerFixture f(slots(n));
    httplib::Client c = f.client();
    ASSERT_EQ(c.Post("/v1/chat/completions", body(a1, ""), "application/json")->status, 200);
    ASSERT_EQ(c.Post("/v1/chat/completions", body(b1, ""), "application/json")->status, 200);
    auto r = c.Post("/v1/chat/completions", body(a1, "and the end"), "application/json");
    ASSERT_TRUE(r);
    const json j = json::parse(r->body);
    EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], n == 2 ? 34 : 6) << n << " slots";
    EXPECT_EQ(content_of(r), want);
    // One slot: b1 and the follow-up each reuse "<bos>user:"; two: b1 takes the empty slot.
    EXPECT_EQ(metric(c, "prompt_cache_hits_total"), n == 2 ? 1 : 2);
  }
}

// One slot busy, one request queued, queue of 1: the next request gets 503 with Retry-After and a JSON
// error; once the slot frees, requests are served again.
TEST(Scheduler, FullQueueAnswers503WithRetryAfter) {
  ServerFixture f(slots(1, 512, 1));
  httplib::Client probe = f.client();
  const int fd = send_raw(f.port, chat_body("long", 400, false));
  ASSERT_GE(fd, 0);
  wait_for([&] { return metric(probe, "slots_busy") == 1; });
  auto queued = std::async(std::launch::async, [&] {
    return content_of(f.client().Post("/v1/chat/completions", chat_body("q", 3, false), "application/json"));
  });
  wait_for([&] { return metric(probe, "queue_length") == 1; });
  auto r = probe.Post("/v1/chat/completions", chat_body("refused", 3, false), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_TRUE(json::parse(r->body)["error"]["message"].is_string());
  EXPECT_EQ(metric(probe, "requests_rejected_total"), 1);
  close(fd);
  const std::string q = queued.get();
  EXPECT_EQ(std::count(q.begin(), q.end(), 'w'), 3) << q;
  EXPECT_EQ(probe.Post("/v1/chat/completions", chat_body("again", 3, false), "application/json")->status, 200);
}

// Without a seed, each request draws its own: sampled replies differ. With one, they repeat.
TEST(Scheduler, RequestsWithoutASeedDrawTheirOwn) {
  ServerFixture f(slots(2));
  httplib::Client c = f.client();
  auto ask = [&](bool with_seed) {
    json b = json::parse(chat_body("tell me a story", 16, false, 1.0, 7));
    if (!with_seed) b.erase("seed");
    return content_of(c.Post("/v1/chat/completions", b.dump(), "application/json"));
  };
  const std::string s1 = ask(true), s2 = ask(true);
  EXPECT_EQ(s1, s2);
  const std::string u1 = ask(false), u2 = ask(false), u3 = ask(false);
  EXPECT_FALSE(u1 == u2 && u2 == u3) << "three unseeded replies were identical: " << u1;
  // "seed": -1 is llama-server's "random": a seed of the request's own, not the seed 2^64 - 1
  auto ask_random = [&] {
    json b = json::parse(chat_body("tell me a story", 16, false, 1.0, 7));
    b["seed"] = -1;
    return content_of(c.Post("/v1/chat/completions", b.dump(), "application/json"));
  };
  const std::string r1 = ask_random(), r2 = ask_random(), r3 = ask_random();
  EXPECT_FALSE(r1 == r2 && r2 == r3) << "three replies with seed -1 were identical: " << r1;
}

TEST(Scheduler, MetricsCountersMove) {
  ServerFixture f(slots(2));
  httplib::Client c = f.client();
  auto m = c.Get("/metrics");
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(m->body.find("# TYPE g4_requests_total counter"), std::string::npos);
  EXPECT_EQ(metric(c, "requests_total"), 0);
  EXPECT_EQ(metric(c, "slots_total"), 2);
  EXPECT_EQ(metric(c, "kv_cache_capacity_positions"), 2 * 512);
  ASSERT_EQ(c.Post("/v1/chat/completions", chat_body("hello", 6, false), "application/json")->status, 200);
  ASSERT_EQ(c.Post("/v1/chat/completions", chat_body("hello", 6, false), "application/json")->status, 200);
  EXPECT_EQ(metric(c, "requests_total"), 2);
  EXPECT_EQ(metric(c, "tokens_generated_total"), 12);
  const int prompt = 1 + int(std::string("user:hello|").size());
  EXPECT_EQ(metric(c, "prompt_tokens_total"), 2 * prompt);
  EXPECT_EQ(metric(c, "prompt_tokens_cached_total"), prompt - 1);  // all but the last prompt token
  EXPECT_EQ(metric(c, "prompt_cache_hits_total"), 1);
  EXPECT_EQ(metric(c, "requests_finished_total"), 2);
  EXPECT_EQ(metric(c, "slots_busy"), 0);
  EXPECT_EQ(metric(c, "queue_length"), 0);
  EXPECT_EQ(metric(c, "kv_cache_used_positions"), prompt + 5);  // prompt + the 5 fed tokens, in one slot
  // One step reads the first prompt whole and picks its first token, five more decode; the second request
  // reads its one uncached prompt token in a step that picks its first token, then five more.
  EXPECT_EQ(metric(c, "steps_total"), 12);
  const double fwd = metric(c, "step_forward_seconds_total"), all = metric(c, "step_seconds_total");
  EXPECT_GT(fwd, 0.0);
  EXPECT_GE(all, fwd);
}

TEST(Scheduler, SmallEndpointsAndWrongMethods) {
  ServerFixture f;
  httplib::Client c = f.client();
  auto t = c.Post("/tokenize", R"({"content": "ab"})", "application/json");
  ASSERT_EQ(t->status, 200) << t->body;
  EXPECT_EQ(json::parse(t->body)["tokens"], json::array({'a' + 3, 'b' + 3}));
  t = c.Post("/tokenize", R"({"content": "ab", "add_special": true, "with_pieces": true})", "application/json");
  ASSERT_EQ(t->status, 200);
  EXPECT_EQ(json::parse(t->body)["tokens"][1], json({{"id", 'a' + 3}, {"piece", "w100 "}}));
  auto d = c.Post("/detokenize", R"({"tokens": [5, 6]})", "application/json");
  ASSERT_EQ(d->status, 200);
  EXPECT_EQ(json::parse(d->body)["content"], "w5 w6 ");
  EXPECT_EQ(c.Post("/detokenize", R"({"tokens": [-1]})", "application/json")->status, 400);
  EXPECT_EQ(c.Post("/tokenize", R"({"content": 3})", "application/json")->status, 400);
  auto m = c.Get("/v1/models/g4");
  ASSERT_EQ(m->status, 200);
  EXPECT_EQ(json::parse(m->body)["id"], "g4");
  EXPECT_EQ(c.Get("/v1/models/other")->status, 404);
  auto wrong_method = [](const httplib::Result& r) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    EXPECT_FALSE(r->get_header_value("Allow").empty());
    EXPECT_TRUE(json::parse(r->body).contains("error"));
  };
  wrong_method(c.Get("/v1/chat/completions"));
  wrong_method(c.Get("/tokenize"));
  wrong_method(c.Post("/v1/models", "{}", "application/json"));
  wrong_method(c.Post("/metrics", "", "text/plain"));
  wrong_method(c.Delete("/health"));
  EXPECT_EQ(c.Get("/v1/nothing")->status, 404);
}

}  // namespace
}  // namespace g4
