// Gemma 4 on top of the Gemma 3 vocabulary: its special tokens overlaid (spec 4.2) are matched atomically, the
// canonical single-turn prompt tokenizes to the ids of spec 4.3, and model output parses back into thinking,
// answer and tool calls (including a render -> parse round trip of random tool-call arguments).
#include <gtest/gtest.h>

#include <random>

#include "base/error.h"
#include "test_tokenizer.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

namespace g4 {
namespace {

std::unique_ptr<Tokenizer> gemma4_tokenizer() {
  const std::string path = test::gemma3_tokenizer_path();
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " is missing: run scripts/fetch-test-tokenizer.sh";
    return nullptr;
  }
  auto tok = std::make_unique<Tokenizer>(Tokenizer::from_json_file(path));
  std::vector<std::pair<int32_t, std::string>> specials;
  for (const SpecialTokenSlot& s : kGemma4SpecialTokens) specials.emplace_back(s.id, s.piece);
  tok->set_special_tokens(specials);
  return tok;
}

TEST(Gemma4Tokens, SpecialsAreAtomicAndCanonicalPromptMatchesSpec) {
  auto tok = gemma4_tokenizer();
  ASSERT_NE(tok, nullptr);
  for (const SpecialTokenSlot& s : kGemma4SpecialTokens) {
    EXPECT_EQ(tok->encode(s.piece), std::vector<int32_t>{s.id}) << s.piece;
    std::string in_text = "ab";
    in_text += s.piece;
    in_text += "cd";
    EXPECT_EQ(tok->encode(in_text).size(), 3u) << s.piece;
    EXPECT_EQ(tok->decode(std::vector<int32_t>{s.id}), s.piece);
    EXPECT_EQ(tok->decode(std::vector<int32_t>{s.id}, true), "");
  }
  // The renamed Gemma 3 names are ordinary text now.
  EXPECT_GT(tok->encode("<start_of_turn>").size(), 1u);

  const Tokenizer* g3 = test::gemma3_tokenizer();
  ASSERT_NE(g3, nullptr);
  const std::vector<int32_t> hello = g3->encode("Hello, world!"), user = g3->encode("user"),
                             model = g3->encode("model"), thought = g3->encode("thought");
  ASSERT_EQ(user, std::vector<int32_t>{2364});
  ASSERT_EQ(model.size(), 1u);
  ASSERT_EQ(thought.size(), 1u);
  const std::string prompt = render_gemma4_chat(ChatJson::parse(R"([{"role":"user","content":"Hello, world!"}])"));
  EXPECT_EQ(prompt, "<bos><|turn>user\nHello, world!<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  std::vector<int32_t> want = {2, 105, 2364, 107};
  want.insert(want.end(), hello.begin(), hello.end());
  want.insert(want.end(), {106, 107, 105, model[0], 107, 100, thought[0], 107, 101});
  EXPECT_EQ(tok->encode(prompt), want);
  for (int32_t id : kGemma4StopIds) EXPECT_TRUE(is_gemma4_stop(id));
  EXPECT_FALSE(is_gemma4_stop(107));
}

TEST(Gemma4Output, ThinkingAnswerAndToolCalls) {
  ParsedOutput p = parse_gemma4_output("<|channel>thought\nLet me add.<channel|>The answer is 4.<turn|>ignored");
  EXPECT_EQ(p.thinking, "Let me add.");
  EXPECT_EQ(p.content, "The answer is 4.");
  EXPECT_TRUE(p.tool_calls.empty());

  p = parse_gemma4_output(
      "<|channel>thought\n<channel|><|tool_call>call:get_weather{city:<|\"|>Paris, FR<|\"|>,days:3,"
      "opts:{metric:true,tags:[<|\"|>a<|\"|>,2.5,null]}}<tool_call|><|tool_response>");
  EXPECT_EQ(p.thinking, "");
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  EXPECT_EQ(nlohmann::json(p.tool_calls[0].arguments),
            nlohmann::json::parse(R"({"city":"Paris, FR","days":3,"opts":{"metric":true,"tags":["a",2.5,null]}})"));

  p = parse_gemma4_output("Sure.<|tool_call>call:a{}<tool_call|><|tool_call>call:b{x:<|\"|>unterminated}<tool_call|>");
  EXPECT_EQ(p.content, "Sure.");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.tool_calls[0].name, "a");
  EXPECT_TRUE(p.tool_calls[0].arguments.is_object());
  EXPECT_TRUE(p.tool_calls[1].arguments.is_string()) << "unparseable arguments are kept raw";

  p = parse_gemma4_output("<|channel>thought\nstill thinking when cut off");
  EXPECT_EQ(p.thinking, "still thinking when cut off");
  EXPECT_EQ(p.content, "");
  EXPECT_THROW(parse_gemma4_value("{a:1"), Error);
  EXPECT_THROW(parse_gemma4_value(std::string(1000, '[')), Error);
}

nlohmann::ordered_json random_value(std::mt19937& rng, int depth) {
  static const char* kStrings[] = {"", "Paris", "a, b: {c}", "日本語 😀", "multi\nline", "  spaced  ", "[x]", "Zürich"};
  static const double kFloats[] = {0.1, 2.5, -3.0, 1e-07, 1e+16, 123456.789, 1e22, 100.0};
  switch (std::uniform_int_distribution<int>(0, depth < 3 ? 7 : 4)(rng)) {
    case 0: return std::uniform_int_distribution<int64_t>(-1000000, 1000000)(rng);
    case 1: return kFloats[rng() % 8];
    case 2: return bool(rng() % 2);
    case 3: return nullptr;
    case 4: return kStrings[rng() % 8];
    case 5: {
      auto a = nlohmann::ordered_json::array();
      for (int n = int(rng() % 4); n > 0; --n) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      auto o = nlohmann::ordered_json::object();
      for (int n = int(rng() % 4); n > 0; --n) o["k" + std::to_string(rng() % 20)] = random_value(rng, depth + 1);
      return o;
    }
  }
}

TEST(Gemma4Output, RenderedToolCallsParseBack) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    auto args = nlohmann::ordered_json::object();
    for (int n = int(rng() % 5); n > 0; --n) args["arg" + std::to_string(rng() % 9)] = random_value(rng, 0);
    ChatJson msgs = ChatJson::array();
    msgs.push_back({{"role", "user"}, {"content", "go"}});
    msgs.push_back({{"role", "assistant"},
                    {"content", "Calling."},
                    {"tool_calls", {{{"function", {{"name", "fn_" + std::to_string(iter)}, {"arguments", args}}}}}}});
    ChatOptions opt;
    opt.add_generation_prompt = false;
    const std::string rendered = render_gemma4_chat(msgs, opt);
    const size_t model_turn = rendered.rfind("<|turn>model\n");
    ASSERT_NE(model_turn, std::string::npos);
    const ParsedOutput p = parse_gemma4_output(std::string_view(rendered).substr(model_turn + 13));
    ASSERT_EQ(p.tool_calls.size(), 1u) << rendered;
    EXPECT_EQ(p.tool_calls[0].name, "fn_" + std::to_string(iter));
    EXPECT_EQ(nlohmann::json(p.tool_calls[0].arguments), nlohmann::json(args)) << rendered;
    EXPECT_EQ(p.content, "Calling.");
  }
}

}  // namespace
}  // namespace g4
