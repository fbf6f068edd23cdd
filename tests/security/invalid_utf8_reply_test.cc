// A model can generate bytes that are not UTF-8 (byte-fallback tokens such as <0xFF>). The server must
// still send valid JSON (invalid sequences become U+FFFD) and stay up, streaming or not: a JSON encoder
// exception escaping a connection thread would end the process.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "backend/backend.h"
#include "server/http_server.h"

namespace g4 {
namespace {

using nlohmann::json;

// Every generated token decodes to an invalid byte followed by a word.
class InvalidUtf8Codec : public TextCodec {
 public:
  std::vector<int32_t> chat_prompt(const CompletionRequest&) override { return {2, 10, 11}; }
  std::vector<int32_t> text_prompt(const std::string&) override { return {2, 10, 11}; }
  std::string decode(const std::vector<int32_t>& ids) override { return visible_text(ids); }
  ParsedReply parse_reply(const std::string& text, bool) override {
    ParsedReply p;
    p.content = text;
    return p;
  }
  std::string visible_text(const std::vector<int32_t>& ids) override {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += "\xff\xfe w ";
    return s;
  }
  std::vector<int32_t> stop_ids() override { return {}; }
};

TEST(InvalidUtf8Reply, ServerSendsValidJsonAndStaysUp) {
  auto be = make_backend("ref");
  auto model = Model::load(std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model", *be);
  InvalidUtf8Codec codec;
  ServerOptions o;
  o.port = 0;
  HttpServer server(*model, codec, 64, o);
  const int port = server.bind();
  std::thread t([&] { server.serve(); });
  httplib::Client c("127.0.0.1", port);
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3})";
  auto res = c.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << res->body;
  EXPECT_NE(j["choices"][0]["message"]["content"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);
  const std::string sbody = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true})";
  res = c.Post("/v1/chat/completions", sbody, "application/json");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("data: [DONE]"), std::string::npos) << res->body;
  res = c.Post("/v1/completions", R"({"prompt":"x","max_tokens":2,"stream":true})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("data: [DONE]"), std::string::npos) << res->body;
  EXPECT_TRUE(c.Get("/health"));
  server.stop();
  t.join();
}

}  // namespace
}  // namespace g4
