// The native Gemma 4 chat template against the official Jinja template: the 15 fixture conversations
// (rendered by transformers' setup, ../shared/fixtures/chat-template) and 600 random conversations rendered at
// test time by python3-jinja2 (gen_chat_cases.py, three seeds), byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/error.h"
#include "test_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/py_value.h"

namespace g4 {
namespace {

ChatOptions options_of(const ChatJson& c) {
  ChatOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", true);
  o.enable_thinking = c.value("enable_thinking", false);
  if (c.contains("tools")) o.tools = c["tools"];
  return o;
}

int check_cases(const ChatJson& cases) {
  int checked = 0, failures = 0;
  for (const auto& c : cases) {
    if (c.contains("error")) continue;
    ++checked;
    std::string got;
    try {
      got = render_gemma4_chat(c["messages"], options_of(c));
    } catch (const Error& e) {
      got = std::string("ERROR: ") + e.what();
    }
    const std::string want = c["rendered"];
    if (got != want && ++failures <= 3) {
      ADD_FAILURE() << c["name"].get<std::string>() << "\nconversation: " << c.dump() << "\nwant: " << ChatJson(want).dump()
                    << "\n got: " << ChatJson(got).dump();
    }
  }
  EXPECT_EQ(failures, 0) << "of " << checked;
  return checked;
}

TEST(ChatTemplate, FixtureConversationsByteForByte) {
  EXPECT_EQ(check_cases(test::read_json("chat-template/rendered_visible.json")), 15);
}

TEST(ChatTemplate, RandomConversationsMatchJinja) {
  const std::string script = std::string(G4_TEST_DATA) + "/../tokenizer/gen_chat_cases.py";
  const std::string tpl = std::string(G4_TEST_DATA) + "/chat-template/google-gemma-4-31B-it.jinja";
  for (int seed : {1, 2, 3}) {
    const std::string out = testing::TempDir() + "g4_chat_cases_" + std::to_string(seed) + ".json";
    const std::string cmd = "/usr/bin/python3 '" + script + "' '" + tpl + "' " + std::to_string(seed) + " 200 '" + out + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed (python3-jinja2 installed? scripts/install-deps.sh)";
    std::ifstream f(out);
    const ChatJson cases = ChatJson::parse(f);
    EXPECT_GE(check_cases(cases), 180) << "seed " << seed;
    std::filesystem::remove(out);
  }
}

TEST(ChatTemplate, ErrorsAreOneLine) {
  EXPECT_THROW(render_gemma4_chat(ChatJson::array()), Error);
  EXPECT_THROW(render_gemma4_chat(ChatJson::parse(R"([{"content":"no role"}])")), Error);
  // A tool message with neither name nor a matching id: Jinja fails on 'response:' + None, so do we.
  EXPECT_THROW(render_gemma4_chat(ChatJson::parse(R"([{"role":"user","content":"q"},
      {"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":{}}}]},
      {"role":"tool","tool_call_id":"b","content":"r"}])")), Error);
}

TEST(PyValue, FloatReprLikePython) {
  EXPECT_EQ(py::float_repr(0.1), "0.1");
  EXPECT_EQ(py::float_repr(1e-5), "1e-05");
  EXPECT_EQ(py::float_repr(0.0001), "0.0001");
  EXPECT_EQ(py::float_repr(1e16), "1e+16");
  EXPECT_EQ(py::float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py::float_repr(-2.5), "-2.5");
  EXPECT_EQ(py::float_repr(123456.789), "123456.789");
  EXPECT_EQ(py::float_repr(1.5e300), "1.5e+300");
  EXPECT_EQ(py::str(ChatJson::parse(R"(["a'b", 1, null, true, {"k": 2.0}])")), R"(["a'b", 1, None, True, {'k': 2.0}])");
}

}  // namespace
}  // namespace g4
