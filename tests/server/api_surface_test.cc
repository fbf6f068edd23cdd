// The API surface beyond plain generation: logprobs (chat and completions, streaming and not) against the
// model's own log-softmax computed here with a Session; response_format json_schema / json_object through
// constrained decoding on the shipped model (replies parse and validate against their schemas, checked by
// a validator written here); tool_choice required / named / none; a grammar that dead-ends; CORS on and
// off; bodies without a JSON content type.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/model_bundle.h"
#include "model/session.h"
#include "server/gemma_codec.h"
#include "server_fixture.h"

namespace g4 {
namespace {

const std::string kKjv = std::string(G4_TEST_DATA) + "/../../models/tiny-kjv";

// g4 serve on the shipped model with its real tokenizer and chat template.
struct KjvServer {
  ModelBundle b = ModelBundle::load(kKjv, "ref", LoadOptions{}, 2);
  GemmaCodec codec{b};
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;
  explicit KjvServer(ServerOptions o = {}) {
    o.port = 0;
    o.quiet = true;
    server = std::make_unique<HttpServer>(*b.model, codec, 1024, o);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~KjvServer() {
    server->stop();
    thread.join();
  }
  json post(const json& body, int* status = nullptr) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    if (status) *status = r ? r->status : -1;
    return r ? json::parse(r->body) : json();
  }
};

// A JSON schema validator for the subset the grammar supports, independent of the grammar's code.
bool valid(const json& v, const json& s, std::string& why) {
  auto no = [&](const std::string& w) { why = w + " in " + v.dump(); return false; };
  if (s.contains("const")) return v == s["const"] || no("not the const");
  if (s.contains("enum")) {
    for (const json& e : s["enum"]) if (e == v) return true;
    return no("not in the enum");
  }
  if (s.contains("anyOf")) {
    for (const json& a : s["anyOf"]) if (valid(v, a, why)) return true;
    return no("no anyOf branch");
  }
  if (!s.contains("type")) return true;
  const std::string t = s["type"];
  if (t == "string") {
    if (!v.is_string()) return no("not a string");
    size_t chars = 0;
    for (unsigned char c : v.get<std::string>()) chars += (c & 0xC0) != 0x80;
    if (s.contains("maxLength") && chars > s["maxLength"].get<size_t>()) return no("too long");
    return true;
  }
  if (t == "integer") return v.is_number_integer() || no("not an integer");
  if (t == "number") return v.is_number() || no("not a number");
  if (t == "boolean") return v.is_boolean() || no("not a boolean");
  if (t == "null") return v.is_null() || no("not null");
  if (t == "array") {
    if (!v.is_array()) return no("not an array");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return no("too many items");
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return no("too few items");
    for (const json& x : v) if (s.contains("items") && !valid(x, s["items"], why)) return false;
    return true;
  }
  if (t == "object") {
    if (!v.is_object()) return no("not an object");
    for (const json& r : s.value("required", json::array())) if (!v.contains(r.get<std::string>())) return no("missing " + r.dump());
    const json props = s.value("properties", json::object());
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (!valid(x, props[k], why)) return false;
      } else if (s.value("additionalProperties", true) == false) {
        return no("extra key " + k);
      }
    }
    return true;
  }
  return no("unknown type " + t);
}

json schema_format(const json& schema) {
  return {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", schema}, {"strict", true}}}};
}

json chat(const std::string& text, int max_tokens) {
  return {{"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// log-softmax of the model's logits after `ids`, computed here with a Session.
std::vector<double> log_softmax_after(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m, 512);
  const std::vector<float> l = s.forward(ids, LogitsMode::kLast);
  double mx = -INFINITY, sum = 0;
  for (float x : l) mx = std::max(mx, double(x));
  for (float x : l) sum += std::exp(double(x) - mx);
  std::vector<double> out(l.size());
  for (size_t i = 0; i < l.size(); ++i) out[i] = double(l[i]) - mx - std::log(sum);
  return out;
}

TEST(Logprobs, CompletionsAndChatReportTheModelsLogSoftmax) {
  ServerFixture f;
  httplib::Client c = f.client();
  auto r = c.Post("/v1/completions", R"({"prompt": "ab", "max_tokens": 3, "temperature": 0, "logprobs": 3})",
                  "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json lp = json::parse(r->body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u) << lp;
  std::vector<int32_t> ids = f.codec.text_prompt("ab");
  size_t offset = 0;
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<double> ref = log_softmax_after(*f.model, ids);
    const int32_t chosen = int32_t(std::max_element(ref.begin(), ref.end()) - ref.begin());  // greedy
    EXPECT_EQ(lp["tokens"][i], "w" + std::to_string(chosen) + " ");
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), ref[size_t(chosen)], 1e-4);
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    const json& top = lp["top_logprobs"][i];
    ASSERT_EQ(top.size(), 3u);
    EXPECT_NEAR(top[lp["tokens"][i].get<std::string>()].get<double>(), ref[size_t(chosen)], 1e-4);
    for (const auto& [tok, v] : top.items()) {
      EXPECT_NEAR(v.get<double>(), ref[size_t(std::stoi(tok.substr(1)))], 1e-4);
      EXPECT_LE(v.get<double>(), ref[size_t(chosen)] + 1e-4);
    }
    EXPECT_EQ(lp["text_offset"][i], offset);
    offset += lp["tokens"][i].get<std::string>().size();
    ids.push_back(chosen);
  }

  // Chat: the same numbers in the chat shape, top_logprobs sorted with the greedy token first; the stream
  // carries the same entries.
  json body = json::parse(chat_body("hi", 3, false));
  body["logprobs"] = true;
  body["top_logprobs"] = 4;
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json content = json::parse(r->body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  for (const json& e : content) {
    ASSERT_EQ(e["top_logprobs"].size(), 4u);
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
    EXPECT_EQ(e["top_logprobs"][0]["logprob"], e["logprob"]);
    for (size_t k = 1; k < 4; ++k) EXPECT_GE(e["top_logprobs"][k - 1]["logprob"], e["top_logprobs"][k]["logprob"]);
    std::string bytes;
    for (const json& x : e["bytes"]) bytes += char(x.get<int>());
    EXPECT_EQ(bytes, e["token"].get<std::string>());
  }
  const std::vector<int32_t> chat_ids = f.codec.chat_prompt(*parse_completion_request(body.dump(), true, {}, nullptr));
  EXPECT_NEAR(content[0]["logprob"].get<double>(), log_softmax_after(*f.model, chat_ids)[size_t(std::stoi(
                                                        content[0]["token"].get<std::string>().substr(1)))], 1e-4);
  body["stream"] = true;
  json streamed = json::array();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  std::string buffer;
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buffer.append(d, n);
    return true;
  };
  c.send(req);
  for (size_t at = 0; (at = buffer.find("data: {", at)) != std::string::npos; ++at) {
    const json ev = json::parse(buffer.substr(at + 6, buffer.find("\n\n", at) - at - 6));
    const json& l = ev["choices"][0]["logprobs"];
    if (l.is_object()) for (const json& e : l["content"]) streamed.push_back(e);
  }
  EXPECT_EQ(streamed, content);

  EXPECT_EQ(c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})",
                   "application/json")->status, 400);
  EXPECT_EQ(c.Post("/v1/completions", R"({"prompt":"x","logprobs":21})", "application/json")->status, 400);
}

TEST(StructuredOutput, JsonSchemaRepliesParseAndValidate) {
  KjvServer s;
  const std::vector<json> schemas = {
      json::parse(R"({"type":"object","properties":{
          "name":{"type":"string","maxLength":12},
          "age":{"type":"integer"},
          "tribe":{"enum":["Judah","Levi","Dan"]},
          "kin":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":3},
          "place":{"type":"object","properties":{"city":{"type":"string","maxLength":10},"far":{"type":"boolean"}},
                   "required":["city","far"],"additionalProperties":false}},
        "required":["name","age","tribe","kin","place"],"additionalProperties":false})"),
      json::parse(R"({"type":"array","items":{"type":"object","properties":{"n":{"type":"number"},
          "ok":{"anyOf":[{"type":"null"},{"type":"boolean"}]}},"required":["n","ok"],"additionalProperties":false},
          "minItems":2,"maxItems":2})"),
      json::parse(R"({"type":"object","properties":{"verse":{"const":"In the beginning"},"book":{"enum":[1,2,"Genesis"]}},
          "required":["verse","book"],"additionalProperties":false})")};
  for (size_t k = 0; k < schemas.size(); ++k) {
    for (double temperature : {0.0, 1.0}) {
      json body = chat("Tell me of the sons of Jacob.", 200);
      body["temperature"] = temperature;
      body["seed"] = 5;
      body["response_format"] = schema_format(schemas[k]);
      int status = 0;
      const json r = s.post(body, &status);
      ASSERT_EQ(status, 200) << r;
      const json& choice = r["choices"][0];
      EXPECT_EQ(choice["finish_reason"], "stop") << choice;
      const std::string text = choice["message"]["content"];
      json v;
      ASSERT_NO_THROW(v = json::parse(text)) << "schema " << k << ": " << text;
      std::string why;
      EXPECT_TRUE(valid(v, schemas[k], why)) << "schema " << k << ": " << why;
    }
  }
  json body = chat("Tell me of the sons of Jacob.", 200);
  body["response_format"] = {{"type", "json_object"}};
  int status = 0;
  json r = s.post(body, &status);
  ASSERT_EQ(status, 200) << r;
  // Whether or not the model closes its object in 200 tokens, the text is a prefix of an object; closed, it parses.
  const std::string object_text = r["choices"][0]["message"]["content"];
  const auto any_object = JsonGrammar::any_object();
  GrammarState prefix(*any_object);
  EXPECT_TRUE(prefix.feed(std::string_view(object_text))) << object_text;
  if (r["choices"][0]["finish_reason"] == "stop") {
    EXPECT_TRUE(json::parse(object_text).is_object()) << object_text;
  } else {
    EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  }

  // Out of tokens mid-value: finish_reason "length" (the text is a valid prefix, not a whole value).
  body = chat("Tell me of the sons of Jacob.", 3);
  body["response_format"] = schema_format(schemas[0]);
  r = s.post(body, &status);
  ASSERT_EQ(status, 200) << r;
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["choices"][0]["message"]["content"].get<std::string>().substr(0, 1), "{");

  // A schema that cannot be compiled: 400 naming the problem.
  body["response_format"] = schema_format(json::parse(R"({"type":"object","properties":{"a":{"$ref":"#/x"}}})"));
  r = s.post(body, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(r["error"]["param"], "response_format.json_schema.schema");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'$ref' is not supported"), std::string::npos) << r;
  body["response_format"] = {{"type", "xml"}};
  EXPECT_EQ((s.post(body, &status), status), 400);
}

TEST(StructuredOutput, ForcedAndForbiddenToolCalls) {
  KjvServer s;
  const json tools = json::parse(R"([
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
      "properties":{"city":{"type":"string","maxLength":16},"days":{"type":"integer"}},"required":["city","days"],
      "additionalProperties":false}}},
    {"type":"function","function":{"name":"read_verse","parameters":{"type":"object",
      "properties":{"book":{"enum":["Genesis","Exodus"]},"chapter":{"type":"integer"}},"required":["book","chapter"]}}}])");
  auto call = [&](const std::string& prompt, const json& choice, int* status) {
    json body = chat(prompt, 80);
    body["tools"] = tools;
    body["tool_choice"] = choice;
    return s.post(body, status);
  };
  int status = 0;
  // Named: the model must call read_verse, though the prompt asks about the weather.
  json r = call("What is the weather in Jerusalem?", {{"type", "function"}, {"function", {{"name", "read_verse"}}}}, &status);
  ASSERT_EQ(status, 200) << r;
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls") << r;
  ASSERT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u) << r;
  const json& fn = r["choices"][0]["message"]["tool_calls"][0]["function"];
  EXPECT_EQ(fn["name"], "read_verse");
  std::string why;
  EXPECT_TRUE(valid(json::parse(fn["arguments"].get<std::string>()), tools[1]["function"]["parameters"], why)) << why;

  // Required: a call to one of the tools, arguments valid for it, though the prompt asks for none.
  r = call("In the beginning", "required", &status);
  ASSERT_EQ(status, 200) << r;
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls") << r;
  ASSERT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u) << r;
  const json& any = r["choices"][0]["message"]["tool_calls"][0]["function"];
  const size_t which = any["name"] == "get_weather" ? 0 : 1;
  EXPECT_EQ(any["name"], tools[which]["function"]["name"]);
  EXPECT_TRUE(valid(json::parse(any["arguments"].get<std::string>()), tools[which]["function"]["parameters"], why)) << why;

  // None: the prompt the model answers with a call (the npm test's) gets no call.
  json body = chat("What is the weather in Jerusalem?", 60);
  body["tools"] = json::array({tools[0]});
  r = s.post(body, &status);
  ASSERT_EQ(r["choices"][0]["finish_reason"], "tool_calls") << "the model calls the tool unprompted: " << r;
  body["tool_choice"] = "none";
  r = s.post(body, &status);
  ASSERT_EQ(status, 200) << r;
  EXPECT_NE(r["choices"][0]["finish_reason"], "tool_calls") << r;
  EXPECT_FALSE(r["choices"][0]["message"].contains("tool_calls")) << r;

  EXPECT_EQ((call("x", {{"type", "function"}, {"function", {{"name", "nope"}}}}, &status), status), 400);
  body = chat("x", 5);
  body["tool_choice"] = "required";
  EXPECT_EQ((s.post(body, &status), status), 400);  // no tools
}

TEST(StructuredOutput, ADeadEndIsAClearErrorNotAHang) {
  // The stand-in codec's tokens are words ("w12 "): none can open a JSON object.
  ServerFixture f;
  httplib::Client c = f.client();
  json body = json::parse(chat_body("x", 5, false));
  body["response_format"] = {{"type", "json_object"}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("dead-ended"), std::string::npos) << r->body;
  body["stream"] = true;
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("dead-ended"), std::string::npos) << r->body;
  // A forced tool call needs the tool-call tokens, which this vocabulary lacks: 400 at once.
  body = json::parse(chat_body("x", 5, false));
  body["tools"] = json::parse(R"([{"type":"function","function":{"name":"f"}}])");
  body["tool_choice"] = "required";
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
}

// ignore_eos (llama-server's field, for benchmarks of a fixed answer length): the stop tokens are never
// sampled, so a reply that would close its turn runs on to max_tokens; before the banned stop token it is
// the plain greedy reply.
TEST(HttpServer, IgnoreEosRunsToMaxTokens) {
  KjvServer s;
  json body = chat("Hello", 300);
  const json plain = s.post(body);
  ASSERT_EQ(plain["choices"][0]["finish_reason"], "stop") << plain;
  const int n = plain["usage"]["completion_tokens"];  // the closing <turn|> included
  const std::string text = plain["choices"][0]["message"]["content"];
  body["ignore_eos"] = true;
  body["max_tokens"] = n + 6;
  const json forced = s.post(body);
  EXPECT_EQ(forced["choices"][0]["finish_reason"], "length") << forced;
  EXPECT_EQ(forced["usage"]["completion_tokens"], n + 6);
  const std::string longer = forced["choices"][0]["message"]["content"];
  EXPECT_GT(longer.size(), text.size());
  EXPECT_EQ(longer.substr(0, text.size()), text);
  // The banned stop tokens hold wherever the token is chosen: where the logits are (no log probabilities
  // asked: only ids come back) and on the host (log probabilities asked), greedy and seeded sampling alike.
  auto with_logprobs = [](json b) {
    b["logprobs"] = true;
    b["top_logprobs"] = 1;
    return b;
  };
  EXPECT_EQ(s.post(with_logprobs(body))["choices"][0]["message"]["content"], longer);
  json sampled = body;
  sampled["temperature"] = 1.0;
  sampled["seed"] = 11;
  const json by_ids = s.post(sampled), by_logits = s.post(with_logprobs(sampled));
  EXPECT_EQ(by_ids["usage"]["completion_tokens"], n + 6);
  EXPECT_EQ(by_ids["choices"][0]["message"]["content"], by_logits["choices"][0]["message"]["content"]);
  body["ignore_eos"] = false;
  const json again = s.post(body);
  EXPECT_EQ(again["choices"][0]["message"]["content"], text);
  EXPECT_EQ(again["choices"][0]["finish_reason"], "stop");
}

TEST(HttpServer, CorsIsOffByDefaultAndOnWhenAsked) {
  {
    ServerFixture f;
    httplib::Client c = f.client();
    auto r = c.Get("/health");
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
    httplib::Headers h = {{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "POST"}};
    r = c.Options("/v1/chat/completions", h);
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 204);
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
  }
  ServerOptions o;
  o.cors_origin = "https://a.example";
  o.api_key = "k";
  ServerFixture f(o);
  httplib::Client c = f.client();
  httplib::Headers h = {{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "authorization, content-type"}};
  auto r = c.Options("/v1/chat/completions", h);  // a preflight carries no API key
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "https://a.example");
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Headers"), "authorization, content-type");
  EXPECT_NE(r->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_EQ(c.Get("/health")->get_header_value("Access-Control-Allow-Origin"), "https://a.example");
  r = c.Post("/v1/chat/completions", chat_body("x", 2, false), "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "https://a.example") << "errors too";
  c.set_bearer_token_auth("k");
  r = c.Post("/v1/chat/completions", chat_body("x", 2, true), "application/json");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "https://a.example") << "streams too";
}

TEST(HttpServer, BodiesWithoutAJsonContentTypeAreRead) {
  ServerFixture f;  // 64 KiB body limit
  httplib::Client c = f.client();
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "application/octet-stream"}) {
    auto r = c.Post("/v1/chat/completions", chat_body("x", 2, false), type);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << type << ": " << r->body;
    r = c.Post("/v1/chat/completions", std::string(70 << 10, ' '), type);
    EXPECT_EQ(r->status, 413) << type;
  }
  // And none at all.
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = chat_body("x", 2, false);
  auto r = c.send(req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace g4
