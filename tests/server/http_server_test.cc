// The HTTP server over loopback with a stand-in TextCodec (token id <-> "w<id> ") on the fixture
// model: responses, SSE streaming reassembly, stop strings, error statuses, API key, and isolation
// under concurrent clients, some of which disconnect mid-stream.
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "server/http_server.h"
#include "tokenizer/chat_output.h"

namespace g4 {
namespace {

using nlohmann::json;

// Words for ids; prompts are the bytes of the text (+3), after <bos>.
class FakeCodec : public TextCodec {
 public:
  std::vector<int32_t> chat_prompt(const CompletionRequest& r) override {
    std::string all;
    for (const json& m : r.messages) all += m["role"].get<std::string>() + ":" + m["content"].get<std::string>() + "|";
    return text_prompt(all);
  }
  std::vector<int32_t> text_prompt(const std::string& text) override {
    std::vector<int32_t> ids = {2};
    for (unsigned char c : text) ids.push_back(int32_t(c) + 3);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) override { return visible_text(ids); }
  ParsedReply parse_reply(const std::string& text, bool) override {
    ParsedReply p;
    p.content = text;
    return p;
  }
  std::string visible_text(const std::vector<int32_t>& ids) override {
    std::string s;
    for (int32_t id : ids) s += "w" + std::to_string(id) + " ";
    return s;
  }
  std::vector<int32_t> stop_ids() override { return {}; }
};

// As FakeCodec, but the reply decodes as a Gemma 4 thought channel holding the first two words, then the
// answer; parse_reply is the product's parser. The server must send the thought as reasoning_content.
class ThinkingCodec : public FakeCodec {
 public:
  std::string decode(const std::vector<int32_t>& ids) override {
    std::string s = "<|channel>thought\n";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i == 2) s += "<channel|>";
      s += "w" + std::to_string(ids[i]) + " ";
    }
    return s;
  }
  ParsedReply parse_reply(const std::string& text, bool) override {
    const ParsedOutput o = parse_gemma4_output(text);
    ParsedReply p;
    p.reasoning = o.thinking;
    p.content = o.content;
    return p;
  }
};

template <class Codec = FakeCodec>
struct ServerFixtureOf {
  std::unique_ptr<Backend> be = make_backend("ref");
  std::unique_ptr<Model> model =
      Model::load(std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model", *be);
  Codec codec;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;

  explicit ServerFixtureOf(ServerOptions o = {}) {
    o.port = 0;
    o.max_body_bytes = 64 << 10;
    server = std::make_unique<HttpServer>(*model, codec, 512, o);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~ServerFixtureOf() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
};
using ServerFixture = ServerFixtureOf<>;

std::string chat_body(const std::string& text, int max_tokens, bool stream, double temperature = 0, int seed = 0) {
  json b = {{"model", "x"}, {"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", max_tokens},
            {"stream", stream}, {"temperature", temperature}, {"seed", seed}};
  return b.dump();
}

// Streams a chat completion; returns the reassembled content. abort_after > 0 disconnects after that many events.
template <class F>
std::string stream_chat(const F& f, const std::string& body, int abort_after = 0, json* last = nullptr,
                        std::string* reasoning = nullptr, json* usage = nullptr) {
  httplib::Client c = f.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  std::string buffer, content;
  int events = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string ev = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (ev.rfind("data: ", 0) != 0) continue;
      ev = ev.substr(6);
      if (ev == "[DONE]") continue;
      json j = json::parse(ev);
      if (last) *last = j;
      if (usage && j.contains("usage")) *usage = j["usage"];
      if (reasoning && !j["choices"].empty() && j["choices"][0]["delta"].contains("reasoning_content"))
        *reasoning += j["choices"][0]["delta"]["reasoning_content"].get<std::string>();
      if (!j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
        content += j["choices"][0]["delta"]["content"].get<std::string>();
      if (abort_after > 0 && ++events >= abort_after) return false;
    }
    return true;
  };
  c.send(req);
  return content;
}

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

namespace g4 {
namespace {

// The prompt cache: a follow-up turn reuses the cached prefix of the conversation (cached_tokens > 0) and
// answers exactly as a server that never saw the first turn; an unrelated prompt reuses only the shared
// "<bos>user:" head.
TEST(HttpServer, FollowUpTurnReusesTheCachedPrefix) {
  auto body = [](const std::string& first, const std::string& second) {
    json msgs = {{{"role", "user"}, {"content", first}}};
    if (!second.empty()) {
      msgs.push_back({{"role", "assistant"}, {"content", "ok"}});
      msgs.push_back({{"role", "user"}, {"content", second}});
    }
    return json{{"model", "x"}, {"messages", msgs}, {"max_tokens", 5}, {"temperature", 0}}.dump();
  };
  ServerFixture warm, cold;
  httplib::Client w = warm.client(), c = cold.client();
  auto r1 = w.Post("/v1/chat/completions", body("tell me about the beginning", ""), "application/json");
  ASSERT_TRUE(r1);
  EXPECT_EQ(json::parse(r1->body)["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  auto r2 = w.Post("/v1/chat/completions", body("tell me about the beginning", "and the end"), "application/json");
  auto r2c = c.Post("/v1/chat/completions", body("tell me about the beginning", "and the end"), "application/json");
  ASSERT_TRUE(r2 && r2c);
  const json j2 = json::parse(r2->body), j2c = json::parse(r2c->body);
  // "user:tell me about the beginning|" and <bos>: 34 tokens shared with the first request.
  EXPECT_EQ(j2["usage"]["prompt_tokens_details"]["cached_tokens"], 34);
  EXPECT_EQ(j2c["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(j2["choices"][0]["message"]["content"], j2c["choices"][0]["message"]["content"]);
  auto r3 = w.Post("/v1/chat/completions", body("something else", ""), "application/json");
  ASSERT_TRUE(r3);
  EXPECT_EQ(json::parse(r3->body)["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
}

}  // namespace
}  // namespace g4
