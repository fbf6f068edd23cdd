// Tool calling on the shipped model (models/tiny-kjv), the path an OpenAI-style server takes: the native chat
// template renders the tool declarations, the tokenizer encodes, Conversation generates greedily until a stop
// id, and parse_gemma4_output turns the text into a tool call. The prompt and greedy tokens must equal what
// tools/train_tiny/train.py recorded with transformers (tests/data/tiny-kjv expected.safetensors, case.json).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "backend/backend.h"
#include "engine/conversation.h"
#include "io/safetensors.h"
#include "util/fixture.h"
#include "model/model.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace g4 {
namespace {

const std::string kModelDir = std::string(G4_TEST_DATA) + "/../../models/tiny-kjv";
const std::string kDataDir = std::string(G4_TEST_DATA) + "/tiny-kjv";

// The declaration the training data uses most (tool_samples.WEATHER), in OpenAI form.
const char* kWeatherTool = R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Get the current weather in a city.",
  "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The name of the city."}},
                 "required": ["city"]}}}])";

std::vector<int32_t> read_ids(const SafetensorsFile& f, const char* name) {
  return testing_util::read_tensor<int32_t>(f, name);
}

struct Fixture {
  std::unique_ptr<Backend> be = make_backend("ref");
  std::unique_ptr<Model> model = Model::load(kModelDir, *be);
  Tokenizer tok = Tokenizer::from_json_file(kModelDir + "/tokenizer.json");

  // Renders one user message with `tools` declared, generates greedily, returns (prompt ids, result, text).
  std::tuple<std::vector<int32_t>, GenerateResult, std::string> ask(const std::string& question,
                                                                    const ChatJson& tools, int64_t max_new) {
    ChatOptions opt;
    opt.tools = tools;
    const std::string prompt = render_gemma4_chat(ChatJson::array({{{"role", "user"}, {"content", question}}}), opt);
    const std::vector<int32_t> ids = tok.encode(prompt);
    Conversation conv(*model, 512);
    GenerateOptions g;
    g.max_new_tokens = max_new;
    g.stop_ids.assign(model->spec().eos_ids.begin(), model->spec().eos_ids.end());
    GenerateResult r = conv.generate(ids, g, [](int32_t) { return true; });
    return {ids, r, tok.decode(r.tokens)};
  }
};

TEST(TinyModelTools, GreedyToolCallMatchesTransformersAndParses) {
  Fixture fx;
  const SafetensorsFile f(kDataDir + "/expected.safetensors");
  std::ifstream cf(kDataDir + "/case.json");
  std::stringstream ss;
  ss << cf.rdbuf();
  const auto c = nlohmann::json::parse(ss.str());

  ChatOptions opt;
  opt.tools = ChatJson::parse(kWeatherTool);
  const std::string prompt = render_gemma4_chat(
      ChatJson::array({{{"role", "user"}, {"content", "What is the weather in Jerusalem?"}}}), opt);
  EXPECT_EQ(prompt, c["tool_prompt_text"].get<std::string>()) << "native template vs the training renderer";

  auto [ids, r, text] = fx.ask("What is the weather in Jerusalem?", opt.tools, 48);
  EXPECT_EQ(ids, read_ids(f, "tool_prompt"));
  EXPECT_EQ(r.tokens, read_ids(f, "tool_greedy_tokens")) << text;
  EXPECT_EQ(r.reason, StopReason::kStopToken);
  ASSERT_FALSE(r.tokens.empty());
  EXPECT_EQ(fx.tok.piece(r.tokens.back()), "<|tool_response>") << "a call ends on the tool-response stop token";

  const ParsedOutput p = parse_gemma4_output(text);
  ASSERT_EQ(p.tool_calls.size(), 1u) << text;
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  ASSERT_TRUE(p.tool_calls[0].arguments.is_object()) << text;
  ASSERT_TRUE(p.tool_calls[0].arguments.contains("city")) << text;
  EXPECT_TRUE(p.tool_calls[0].arguments["city"].is_string());
  EXPECT_FALSE(p.tool_calls[0].arguments["city"].get<std::string>().empty());
  EXPECT_EQ(p.content, "");
  std::printf("[ tiny-kjv ] tool call: %s(%s)\n", p.tool_calls[0].name.c_str(),
              p.tool_calls[0].arguments.dump().c_str());
}

// Other wordings of the declaration (as a client writes them) and both tools declared: still a call.
TEST(TinyModelTools, OtherDeclarationWordingsStillCall) {
  Fixture fx;
  const ChatJson client = ChatJson::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get the current weather in a city", "parameters": {"type": "object",
    "properties": {"city": {"type": "string", "description": "The city"}}, "required": ["city"]}}}])");
  ChatJson both = ChatJson::parse(kWeatherTool);  // non-const: find_verse is appended below
  both.push_back(ChatJson::parse(R"({"type": "function", "function": {"name": "find_verse",
    "description": "Find a chapter of a book of the King James Bible.", "parameters": {"type": "object",
    "properties": {"book": {"type": "string", "description": "The name of the book, e.g. Genesis."},
                   "chapter": {"type": "integer", "description": "The chapter number."}},
    "required": ["book", "chapter"]}}})"));
  for (const ChatJson* tools : {&client, static_cast<const ChatJson*>(&both)}) {
    auto [ids, r, text] = fx.ask("What is the weather in Jerusalem?", *tools, 48);
    const ParsedOutput p = parse_gemma4_output(text);
    ASSERT_EQ(p.tool_calls.size(), 1u) << text;
    EXPECT_EQ(p.tool_calls[0].name, "get_weather") << text;
    EXPECT_TRUE(p.tool_calls[0].arguments.is_object() && p.tool_calls[0].arguments.contains("city")) << text;
  }
  auto [ids, r, text] = fx.ask("Find chapter 3 of Genesis", both, 48);
  const ParsedOutput p = parse_gemma4_output(text);
  ASSERT_EQ(p.tool_calls.size(), 1u) << text;
  EXPECT_EQ(p.tool_calls[0].name, "find_verse") << text;
  ASSERT_TRUE(p.tool_calls[0].arguments.is_object()) << text;
  EXPECT_TRUE(p.tool_calls[0].arguments["book"].is_string()) << text;
  EXPECT_TRUE(p.tool_calls[0].arguments["chapter"].is_number_integer()) << text;
}

// Tools declared but a question that does not need them: the model answers in text.
TEST(TinyModelTools, QuestionWithoutToolNeedGetsText) {
  Fixture fx;
  auto [ids, r, text] = fx.ask("Who was Moses?", ChatJson::parse(kWeatherTool), 40);
  const ParsedOutput p = parse_gemma4_output(text);
  EXPECT_TRUE(p.tool_calls.empty()) << text;
  EXPECT_FALSE(p.content.empty()) << text;
}

}  // namespace
}  // namespace g4
