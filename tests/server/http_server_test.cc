// The HTTP server over loopback with a stand-in TextCodec (token id <-> "w<id> ") on the fixture
// model: responses, SSE streaming reassembly, stop strings, error statuses, API key, and isolation
// under concurrent clients, some of which disconnect mid-stream.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_fixture.h"

namespace g4 {
namespace {

using nlohmann::json;

TEST(HttpServer, ChatStreamingEqualsNonStreaming) {
  ServerFixture f;
  httplib::Client c = f.client();
  auto res = c.Post("/v1/chat/completions", chat_body("hello", 6, false), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  const std::string content = j["choices"][0]["message"]["content"];
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 1 + int(std::string("user:hello|").size()));
  EXPECT_EQ(std::count(content.begin(), content.end(), 'w'), 6);
  json last;
  EXPECT_EQ(stream_chat(f, chat_body("hello", 6, true), 0, &last), content);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");

  auto comp = c.Post("/v1/completions", R"({"prompt": "hello", "max_tokens": 4})", "application/json");
  ASSERT_EQ(comp->status, 200) << comp->body;
  EXPECT_EQ(json::parse(comp->body)["object"], "text_completion");
  auto models = c.Get("/v1/models");
  ASSERT_EQ(models->status, 200);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "g4");
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST(HttpServer, StopStringsCutTheReply) {
  ServerFixture f;
  httplib::Client c = f.client();
  auto res = c.Post("/v1/chat/completions", chat_body("hello", 6, false), "application/json");
  const std::string content = json::parse(res->body)["choices"][0]["message"]["content"];
  const std::string second_word = content.substr(content.find(' ') + 1, content.find(' ', content.find(' ') + 1) - content.find(' ') - 1);
  json b = json::parse(chat_body("hello", 6, false));
  b["stop"] = second_word;
  res = c.Post("/v1/chat/completions", b.dump(), "application/json");
  const json j = json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], content.substr(0, content.find(second_word)));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  b["stream"] = true;
  EXPECT_EQ(stream_chat(f, b.dump()), content.substr(0, content.find(second_word)));
}

// A stop string ends generation where it completes, not at max_tokens: completion_tokens and the server's
// token count both show it, streaming or not, for chat and for completions (issue 18: the non-streaming
// path generated all max_tokens and only cut the text).
TEST(HttpServer, StopStringsEndGeneration) {
  ServerFixture f;
  httplib::Client c = f.client();
  const int max_tokens = 40;
  auto res = c.Post("/v1/chat/completions", chat_body("hello", max_tokens, false), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string content = json::parse(res->body)["choices"][0]["message"]["content"];
  ASSERT_EQ(std::count(content.begin(), content.end(), ' '), max_tokens);  // "wID " per token
  // The third word, with the spaces around it, so it cannot match inside another word.
  size_t w3 = content.find(' ', content.find(' ') + 1);
  const std::string stop = content.substr(w3, content.find(' ', w3 + 1) - w3 + 1);
  const size_t cut = content.find(stop);
  const int64_t want_tokens = std::count(content.begin(), content.begin() + int64_t(cut + stop.size()), ' ');
  ASSERT_LT(want_tokens, max_tokens);
  for (bool stream : {false, true}) {
    for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
      const bool chat = std::string(path) == "/v1/chat/completions";
      json b = json::parse(chat_body("hello", max_tokens, stream));
      if (!chat) {
        b.erase("messages");
        b["prompt"] = "user:hello|";  // FakeCodec renders the chat prompt as this text
      }
      b["stop"] = json::array({stop});
      b["stream_options"] = {{"include_usage", true}};
      if (!stream) b.erase("stream_options");
      const int64_t before = f.server->stats().tokens.load();
      json usage;
      std::string text;
      if (stream && chat) {
        text = stream_chat(f, b.dump(), 0, nullptr, nullptr, &usage);
      } else if (stream) {
        auto r = c.Post(path, b.dump(), "application/json");
        ASSERT_EQ(r->status, 200);
        for (size_t at = 0; (at = r->body.find("data: {", at)) != std::string::npos; ++at) {
          const json j = json::parse(r->body.substr(at + 6, r->body.find("\n\n", at) - at - 6));
          if (j.contains("usage")) usage = j["usage"];
          if (!j["choices"].empty()) text += j["choices"][0]["text"].get<std::string>();
        }
      } else {
        auto r = c.Post(path, b.dump(), "application/json");
        ASSERT_EQ(r->status, 200) << r->body;
        const json j = json::parse(r->body);
        usage = j["usage"];
        text = chat ? j["choices"][0]["message"]["content"] : j["choices"][0]["text"];
        EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
      }
      const std::string what = std::string(path) + (stream ? " streaming" : "");
      EXPECT_EQ(text, content.substr(0, cut)) << what;
      EXPECT_EQ(usage["completion_tokens"], want_tokens) << what;
      EXPECT_EQ(f.server->stats().tokens.load() - before, want_tokens) << what;
    }
  }
}

// A non-streaming client that hangs up stops its generation at the next token (issue 18: it ran to
// max_tokens for nobody).
TEST(HttpServer, NonStreamingDisconnectCancels) {
  ServerFixture f;
  const std::string body = chat_body("long", 400, false);
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(f.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(write(fd, request.data(), request.size()), ssize_t(request.size()));
  close(fd);  // gone before the answer
  for (int i = 0; i < 600 && f.server->stats().cancelled.load() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(f.server->stats().cancelled.load(), 1);
  EXPECT_LE(f.server->stats().tokens.load(), 2) << "generation went on after the client left";
  // The server still answers the next client in full.
  httplib::Client c = f.client();
  auto res = c.Post("/v1/chat/completions", chat_body("x", 3, false), "application/json");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["usage"]["completion_tokens"], 3);
}

// reasoning_content carries the thought channel, apart from the content, streaming and not.
TEST(HttpServer, ReasoningContentIsSeparated) {
  ServerFixtureOf<ThinkingCodec> f;
  httplib::Client c = f.client();
  auto res = c.Post("/v1/chat/completions", chat_body("hello", 5, false), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  const json msg = json::parse(res->body)["choices"][0]["message"];
  const std::string reasoning = msg["reasoning_content"], content = msg["content"];
  // Two words of thought, three of answer; the words are those of a plain reply (FakeCodec's).
  EXPECT_EQ(std::count(reasoning.begin(), reasoning.end(), 'w'), 2) << reasoning;
  EXPECT_EQ(std::count(content.begin(), content.end(), 'w'), 3) << content;
  ServerFixture plain;
  auto p = plain.client().Post("/v1/chat/completions", chat_body("hello", 5, false), "application/json");
  const json pm = json::parse(p->body)["choices"][0]["message"];
  EXPECT_FALSE(pm.contains("reasoning_content"));
  std::string words = pm["content"];
  while (!words.empty() && words.back() == ' ') words.pop_back();
  std::string joined = reasoning;
  while (!joined.empty() && joined.back() == ' ') joined.pop_back();
  EXPECT_EQ(joined + " " + content, words);
  std::string streamed_reasoning;
  EXPECT_EQ(stream_chat(f, chat_body("hello", 5, true), 0, nullptr, &streamed_reasoning), content);
  EXPECT_EQ(streamed_reasoning, reasoning);
}

TEST(HttpServer, ErrorsHaveStatusAndJson) {
  ServerOptions o;
  o.api_key = "sesame";
  ServerFixture f(o);
  httplib::Client c = f.client();
  auto res = c.Post("/v1/chat/completions", chat_body("x", 2, false), "application/json");
  EXPECT_EQ(res->status, 401);
  EXPECT_TRUE(json::parse(res->body)["error"]["message"].is_string());
  c.set_bearer_token_auth("sesame");
  res = c.Post("/v1/chat/completions", "{bad json", "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  res = c.Post("/v1/chat/completions", chat_body("x", 2, false, 5.0), "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "temperature");
  res = c.Post("/v1/chat/completions", chat_body(std::string(600, 'a'), 2, false), "application/json");
  EXPECT_EQ(res->status, 400);  // prompt longer than the 512-token context
  res = c.Post("/v1/chat/completions", std::string(70 << 10, ' '), "application/json");
  EXPECT_EQ(res->status, 413);
  res = c.Get("/v1/nothing");
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  EXPECT_EQ(c.Post("/v1/chat/completions", chat_body("x", 2, false), "application/json")->status, 200);
}

TEST(HttpServer, ConcurrentClientsGetTheirSoloAnswersAndDisconnectsCancel) {
  ServerFixture f;
  // Alone, one after the other.
  std::vector<std::string> solo;
  for (int i = 0; i < 6; ++i) solo.push_back(stream_chat(f, chat_body("q" + std::to_string(i), 5, true, 0.8, i)));
  // Together, with two extra clients that hang up after their second event.
  std::vector<std::future<std::string>> futures;
  for (int i = 0; i < 6; ++i)
    futures.push_back(std::async(std::launch::async, [&, i] {
      return stream_chat(f, chat_body("q" + std::to_string(i), 5, true, 0.8, i));
    }));
  std::vector<std::future<std::string>> quitters;
  for (int i = 0; i < 2; ++i)
    quitters.push_back(std::async(std::launch::async, [&] { return stream_chat(f, chat_body("long", 200, true), 2); }));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(futures[size_t(i)].get(), solo[size_t(i)]) << i;
  for (auto& q : quitters) q.get();
  // The server notices a hang-up at its next write; give a queued quitter time to get its turn.
  for (int i = 0; i < 600 && f.server->stats().cancelled.load() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(f.server->stats().cancelled.load(), 2);
  // Work done: 12 answers of 5 tokens, and each quitter stopped long before its 200.
  EXPECT_LT(f.server->stats().tokens.load(), 12 * 5 + 2 * 20);
  httplib::Client c = f.client();
  EXPECT_EQ(c.Get("/health")->status, 200);
}

}  // namespace
}  // namespace g4
