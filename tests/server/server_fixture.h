// The test server: the HTTP server over loopback on the fixture model with a stand-in TextCodec
// (token id <-> "w<id> "), and the client helpers the server tests share.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>
#include <thread>

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
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> model;
  Codec codec;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;

  // model_dir: a model directory (default: the fixture model, random weights), run on the ref backend.
  explicit ServerFixtureOf(ServerOptions o = {}, int64_t ctx = 512, const std::string& model_dir = "")
      : be(make_backend("ref")),
        model(Model::load(model_dir.empty() ? std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model" : model_dir,
                          *be)) {
    o.port = 0;
    o.max_body_bytes = 64 << 10;
    o.quiet = true;
    server = std::make_unique<HttpServer>(*model, codec, ctx, o);
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

}  // namespace
}  // namespace g4
