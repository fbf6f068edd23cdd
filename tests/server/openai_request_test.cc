// Request validation: good bodies parse into the right fields; every bad type, range, NaN-ish value
// and shape gives a 400 naming the parameter.
#include <gtest/gtest.h>

#include "server/http_server.h"
#include "server/openai_request.h"

namespace g4 {
namespace {

std::optional<CompletionRequest> parse(const std::string& body, ApiError* e, bool chat = true) {
  return parse_completion_request(body, chat, SamplingParams{}, e);
}

TEST(OpenAiRequest, ParsesAChatRequest) {
  ApiError e;
  auto r = parse(R"({"model": "m", "messages": [{"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "stream": true, "max_tokens": 7,
      "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 3, "stop": ["\n\n"],
      "stream_options": {"include_usage": true}, "chat_template_kwargs": {"enable_thinking": true},
      "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]})", &e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_TRUE(r->enable_thinking);
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.5f);
  EXPECT_EQ(r->sampling.top_k, 40);
  EXPECT_EQ(r->sampling.seed, 3u);
  EXPECT_EQ(r->stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->tools.size(), 1u);
  auto c = parse(R"({"prompt": "Once", "max_tokens": 3})", &e, false);
  ASSERT_TRUE(c) << e.message;
  EXPECT_EQ(c->prompt, "Once");
  EXPECT_FALSE(c->ignore_eos);
  auto i = parse(R"({"prompt": "Once", "ignore_eos": true})", &e, false);
  ASSERT_TRUE(i) << e.message;
  EXPECT_TRUE(i->ignore_eos);
}

TEST(OpenAiRequest, RejectsBadBodiesNamingTheParameter) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", ""},
      {"[1]", ""},
      {R"({})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 9})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": -0.1})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [""]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools[0]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "seed": 1e300})", "seed"},
      {R"({"messages": [{"role": "user", "content": "x"}], "model": 3})", "model"},
      {R"({"messages": [{"role": "user", "content": "x"}], "ignore_eos": 1})", "ignore_eos"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 1})", "logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": "json"})", "response_format"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}})", "response_format.type"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}})",
       "response_format.json_schema"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema",
          "json_schema": {"name": "x", "schema": {"type": "integr"}}}})", "response_format.json_schema.schema"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "always"})", "tool_choice"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})", "tool_choice"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}],
          "tool_choice": {"type": "function", "function": {"name": "g"}}})", "tool_choice"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f",
          "parameters": {"type": "object", "properties": {"a": {"pattern": "x"}}}}}], "tool_choice": "required"})", "tools"},
  };
  for (const auto& [body, param] : cases) {
    ApiError e;
    EXPECT_FALSE(parse(body, &e)) << body;
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << " -> " << e.message;
    EXPECT_FALSE(e.message.empty());
    EXPECT_TRUE(e.body()["error"]["message"].is_string());
  }
  ApiError e;
  EXPECT_FALSE(parse(R"({"prompt": 7})", &e, false));
  EXPECT_EQ(e.param, "prompt");
}

TEST(OpenAiRequest, LogprobsResponseFormatAndToolChoice) {
  ApiError e;
  const std::string msgs = R"("messages": [{"role": "user", "content": "x"}])";
  auto r = parse("{" + msgs + R"(, "logprobs": true, "top_logprobs": 5})", &e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->top_logprobs, 5);
  r = parse("{" + msgs + R"(, "logprobs": true})", &e);
  EXPECT_EQ(r->top_logprobs, 0);
  r = parse("{" + msgs + R"(, "logprobs": false})", &e);
  EXPECT_EQ(r->top_logprobs, -1);
  r = parse(R"({"prompt": "x", "logprobs": 3})", &e, false);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->top_logprobs, 3);

  r = parse("{" + msgs + R"(, "response_format": {"type": "text"}})", &e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_FALSE(r->grammar);
  r = parse("{" + msgs + R"(, "response_format": {"type": "json_object"}})", &e);
  ASSERT_TRUE(r && r->grammar && r->json_output) << e.message;
  r = parse("{" + msgs + R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "n",
      "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, "strict": true}}})", &e);
  ASSERT_TRUE(r && r->grammar) << e.message;
  GrammarState s(*r->grammar);
  EXPECT_TRUE(s.feed(std::string_view(R"({"a":1})")) && s.finished());

  const std::string tools = R"("tools": [{"type": "function", "function": {"name": "f"}},
      {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}])";
  r = parse("{" + msgs + "," + tools + R"(, "tool_choice": "none"})", &e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_TRUE(r->no_tool_calls);
  EXPECT_EQ(r->tools.size(), 2u) << "the tools stay in the prompt";
  r = parse("{" + msgs + "," + tools + R"(, "tool_choice": {"type": "function", "function": {"name": "g"}},
      "response_format": {"type": "json_object"}})", &e);
  ASSERT_TRUE(r && r->forced_tool && r->grammar) << e.message;
  EXPECT_FALSE(r->json_output) << "a forced call wins over response_format";
  GrammarState call(*r->grammar);
  EXPECT_TRUE(call.feed(std::string(1, char(kSymToolCallOpen)) + "call:g{}" + char(kSymToolCallClose)) && call.finished());
  GrammarState other(*r->grammar);
  EXPECT_FALSE(other.feed(std::string(1, char(kSymToolCallOpen)) + "call:f"));
}

TEST(OpenAiRequest, KeysCompareInConstantTimeShape) {
  EXPECT_TRUE(keys_equal("secret", "secret"));
  EXPECT_FALSE(keys_equal("secreT", "secret"));
  EXPECT_FALSE(keys_equal("secret1", "secret"));
  EXPECT_FALSE(keys_equal("secre", "secret"));
  EXPECT_FALSE(keys_equal("", "secret"));
}

}  // namespace
}  // namespace g4
