#include "engine/json_grammar.h"

#include <gtest/gtest.h>

#include <random>

#include "base/error.h"
#include "tokenizer/chat_output.h"

namespace g4 {
namespace {

using nlohmann::json;

// Feeds `text` byte by byte: how many bytes were accepted (text.size() when all were).
size_t accepted(const GrammarState& start, const std::string& text) {
  GrammarState s = start;
  for (size_t i = 0; i < text.size(); ++i)
    if (!s.feed(uint8_t(text[i]))) return i;
  return text.size();
}
bool complete(const JsonGrammar& g, const std::string& text) {
  GrammarState s(g);
  return s.feed(std::string_view(text)) && s.can_end();
}

const json kPerson = json::parse(R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}, "legs": {"type": "number"}},
            "required": ["kind"], "additionalProperties": false},
    "ok": {"type": ["boolean", "null"]}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})");

TEST(JsonGrammar, ValidDocumentsAndEveryPrefixAreAccepted) {
  auto g = JsonGrammar::from_schema(kPerson, false);
  for (const std::string doc : {R"({"name":"Bo","age":3})",
                                R"({"age":-12,"name":"\u00e9\n\"q\"","tags":["a","b"],"pet":{"legs":4.5e1,"kind":"cat"},"ok":null})",
                                "{ \"name\" : \"Ünïcode ✓\", \"age\": 0, \"ok\": true }",
                                R"({"name":"","age":7,"tags":[],"pet":{"kind":"dog"}})"}) {
    GrammarState s(*g);
    EXPECT_EQ(accepted(s, doc), doc.size()) << doc;
    EXPECT_TRUE(complete(*g, doc)) << doc;
    ASSERT_TRUE(s.feed(std::string_view(doc)));
    EXPECT_TRUE(s.finished()) << doc;
    EXPECT_FALSE(s.feed(uint8_t(' '))) << "nothing may follow the closed value";
  }
}

TEST(JsonGrammar, InvalidOutputIsRejectedAtTheFirstBadByte) {
  auto g = JsonGrammar::from_schema(kPerson, false);
  GrammarState s(*g);
  struct Case {
    std::string text;
    size_t good;  // bytes accepted before the bad one
  };
  for (const Case& c : std::vector<Case>{
           {R"({"name":"Bo"})", 12},                    // '}' before the required "age"
           {R"({"nam":1})", 5},                         // no key "nam": the closing quote is refused
           {R"({"nickname":"x"})", 3},                  // no key starts "ni" (additionalProperties false)
           {R"({"age":1.5})", 8},                       // an integer has no fraction
           {R"({"age":01})", 8},                        // no leading zeros
           {R"({"name":"a)" "\n" R"("})", 10},          // raw control character in a string
           {R"({"name":"\x"})", 10},                    // unknown escape
           {R"({"name":"\ud800"})", 12},                // escaped surrogate
           {R"({"pet":{"kind":"cow"}})", 17},           // not in the enum
           {R"({"tags":["a","b","c"]})", 16},           // maxItems 2
           {R"({"ok":"yes"})", 6},                      // boolean or null
           {R"({"name":"x","name":"y"})", 13},          // a key given twice
           {"[1]", 0},                                  // the top level is an object
           {"{\"name\":\"\xC3\x28\"}", 10},             // invalid UTF-8
           {R"({"age":1234567890123456789})", 25},      // an integer fits int64 (18 characters)
           {"{  ", 2},                                  // one space at most
           {"{\"name\":\"\" ,\n", 12}}) {               // no newlines
    EXPECT_EQ(accepted(s, c.text), c.good) << c.text;
  }
}

// Random walks over the bytes the grammar accepts: every document that completes is handed to `check`.
// Returns how many completed.
template <class F>
int random_walks(const JsonGrammar& g, const std::string& alphabet, int walks, uint32_t seed, const F& check) {
  std::mt19937 rng(seed);
  int complete_docs = 0;
  for (int walk = 0; walk < walks; ++walk) {
    GrammarState s(g);
    std::string doc;
    for (int step = 0; step < 400 && !s.finished(); ++step) {
      std::vector<char> ok;
      for (char c : alphabet) {
        GrammarState t = s;
        if (t.feed(uint8_t(c))) ok.push_back(c);
      }
      EXPECT_FALSE(ok.empty()) << "a dead end after " << doc;
      if (ok.empty()) return complete_docs;
      const char c = ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng)];
      EXPECT_TRUE(s.feed(uint8_t(c)));
      doc += c;
    }
    if (!s.finished()) continue;
    ++complete_docs;
    check(doc);
  }
  return complete_docs;
}

const std::string kAlphabet = "{}[]\",:- .eE+0123456789truefalsnmgkdcoplishpy\\/u\xc3\xa9";

// Documents built by random walks parse as JSON and satisfy the schema (checked here by hand, not by the
// grammar); with the Gemma dialect, calls parse back through the product's tool-call parser.
TEST(JsonGrammar, RandomWalksOnlyProduceValidDocuments) {
  json schema = kPerson;
  schema["properties"]["name"]["maxLength"] = 4;
  schema["properties"]["tags"]["items"]["maxLength"] = 3;
  auto g = JsonGrammar::from_schema(schema, false);
  const int person = random_walks(*g, kAlphabet, 300, 1, [&](const std::string& doc) {
    json v;
    ASSERT_NO_THROW(v = json::parse(doc)) << doc;
    ASSERT_TRUE(v.is_object()) << doc;
    EXPECT_TRUE(v.contains("name") && v["name"].is_string() && v.contains("age") && v["age"].is_number_integer()) << doc;
    for (const auto& [k, x] : v.items()) {
      ASSERT_TRUE(schema["properties"].contains(k)) << doc;
      if (k == "tags") {
        EXPECT_TRUE(x.is_array() && x.size() <= 2) << doc;
      }
      if (k == "ok") {
        EXPECT_TRUE(x.is_boolean() || x.is_null()) << doc;
      }
      if (k == "pet") {
        ASSERT_TRUE(x.is_object() && x.contains("kind")) << doc;
        EXPECT_TRUE(x["kind"] == "cat" || x["kind"] == "dog") << doc;
        for (const auto& [pk, px] : x.items()) EXPECT_TRUE(pk == "kind" || (pk == "legs" && px.is_number())) << doc;
      }
    }
  });
  EXPECT_GT(person, 50);

  const int objects = random_walks(*JsonGrammar::any_object(), kAlphabet, 200, 2, [](const std::string& doc) {
    json v;
    ASSERT_NO_THROW(v = json::parse(doc)) << doc;
    EXPECT_TRUE(v.is_object()) << doc;
  });
  EXPECT_GT(objects, 50);

  const json params = json::parse(R"({"type":"object","properties":{"city":{"type":"string","maxLength":3},
      "days":{"type":"integer"},"at":{"type":"array","items":{"type":"number"},"maxItems":2}},"required":["city"],
      "additionalProperties":false})");
  auto call = JsonGrammar::tool_call({{"get", params}});
  std::string gemma_alphabet = kAlphabet + char(kSymQuote) + char(kSymToolCallOpen) + char(kSymToolCallClose) + "<|>";
  const int calls = random_walks(*call, gemma_alphabet, 200, 3, [&](const std::string& doc) {
    std::string text;  // the symbols as the tokens decode
    for (char c : doc)
      text += uint8_t(c) == kSymQuote ? "<|\"|>" : uint8_t(c) == kSymToolCallOpen ? "<|tool_call>"
            : uint8_t(c) == kSymToolCallClose ? "<tool_call|>" : std::string(1, c);
    const ParsedOutput p = parse_gemma4_output(text);
    ASSERT_EQ(p.tool_calls.size(), 1u) << text;
    EXPECT_EQ(p.tool_calls[0].name, "get");
    const auto& a = p.tool_calls[0].arguments;
    ASSERT_TRUE(a.is_object()) << text;
    EXPECT_TRUE(a.contains("city") && a["city"].is_string()) << text;
    for (const auto& [k, x] : a.items()) {
      if (k == "days") {
        EXPECT_TRUE(x.is_number_integer()) << text;
      } else if (k == "at") {
        EXPECT_TRUE(x.is_array() && x.size() <= 2) << text;
      } else {
        EXPECT_EQ(k, "city") << text;
      }
    }
  });
  EXPECT_GT(calls, 50);
}

TEST(JsonGrammar, SchemaFeatures) {
  auto any_of = JsonGrammar::from_schema(json::parse(R"({"anyOf":[{"type":"integer"},{"const":{"a":[1,"x"]}}]})"), false);
  EXPECT_TRUE(complete(*any_of, "42"));
  EXPECT_TRUE(complete(*any_of, R"({"a":[1,"x"]})"));
  EXPECT_FALSE(complete(*any_of, R"({"a":[1,"y"]})"));
  EXPECT_FALSE(complete(*any_of, "4.5"));

  // A top-level number can end, but more digits may follow.
  auto num = JsonGrammar::from_schema(json{{"type", "number"}}, false);
  GrammarState s(*num);
  ASSERT_TRUE(s.feed(std::string_view("12")));
  EXPECT_TRUE(s.can_end());
  EXPECT_FALSE(s.finished());
  ASSERT_TRUE(s.feed(std::string_view("e")));
  EXPECT_FALSE(s.can_end());

  // At the length cap a number may still finish what it started.
  EXPECT_TRUE(complete(*num, std::string(31, '1') + ".5"));
  EXPECT_TRUE(complete(*num, std::string(31, '1') + "e+5"));
  EXPECT_FALSE(complete(*num, std::string(33, '1')));

  auto len = JsonGrammar::from_schema(json::parse(R"({"type":"string","minLength":2,"maxLength":3})"), false);
  EXPECT_FALSE(complete(*len, R"("a")"));
  EXPECT_TRUE(complete(*len, R"("ab")"));
  EXPECT_TRUE(complete(*len, R"("a\u00e9")"));
  EXPECT_FALSE(complete(*len, R"("abcd")"));

  auto items = JsonGrammar::from_schema(json::parse(R"({"type":"array","items":{"type":"null"},"minItems":1})"), false);
  EXPECT_FALSE(complete(*items, "[]"));
  EXPECT_TRUE(complete(*items, "[null, null]"));

  // Extra keys: allowed by default (JSON Schema), with a schema for their values, refused under strict.
  const json open = json::parse(R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}})");
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(open, false), R"({"a":1,"b":"x"})"));
  EXPECT_FALSE(complete(*JsonGrammar::from_schema(open, false), R"({"a":1,"b":2})"));
  EXPECT_FALSE(complete(*JsonGrammar::from_schema(open, true), R"({"a":1,"b":"x"})"));
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(json{{"type", "object"}}, false), R"({"any":[1,{"b":null}],"c":true})"));

  // A declared key given twice is refused, whatever other keys may be: a parser keeping the last value would
  // skip the first's schema (found by fuzz_json_grammar); other keys may repeat.
  const json age = json::parse(R"({"type":"object","properties":{"age":{"type":"integer"}}})");
  EXPECT_FALSE(complete(*JsonGrammar::from_schema(age, false), R"({"age":1,"age":{"type":"integer"}})"));
  EXPECT_FALSE(complete(*JsonGrammar::from_schema(age, false), R"({"age":1, "age":2})"));
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(age, false), R"({"age":1,"ages":2,"ag":3})"));
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(age, false), R"({"x":1,"x":"y","age":2})"));
  EXPECT_FALSE(complete(*JsonGrammar::from_schema(age, false, JsonDialect::kGemma), "{age:1,age:2}"));
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(age, false, JsonDialect::kGemma), "{age:1,ages:2}"));

  auto obj = JsonGrammar::any_object();
  // Keys are capped at 256 bytes, but a character begun before the cap may finish (found by a random walk).
  EXPECT_TRUE(complete(*obj, "{\"" + std::string(255, 'k') + "\xC3\xA9\":1}"));
  EXPECT_FALSE(complete(*obj, "{\"" + std::string(257, 'k') + "\":1}"));
  const std::string long_name(300, 'n');
  EXPECT_TRUE(complete(*JsonGrammar::from_schema(json{{"properties", {{long_name, json::object()}}}}, true),
                       "{\"" + long_name + "\":1}"));
  EXPECT_TRUE(complete(*obj, R"({"k":[{"x":-0.5E+3},"s",false]})"));
  EXPECT_FALSE(complete(*obj, R"("just a string")"));
  EXPECT_FALSE(complete(*obj, R"({"k":})"));
}

TEST(JsonGrammar, AlternativesThatAgreeDoNotMultiply) {
  // Two identical branches per item: without merging, 2^items parses (2^40 here).
  auto g = JsonGrammar::from_schema(json::parse(R"({"type":"array","items":{"anyOf":[{"type":"integer"},
      {"type":"integer"}, {"enum":[1, 1]}]}})"), false);
  std::string doc = "[";
  for (int i = 0; i < 40; ++i) doc += "1,";
  doc += "1]";
  EXPECT_TRUE(complete(*g, doc));
}

TEST(JsonGrammar, SchemasItCannotCompileAreRefusedClearly) {
  auto error_of = [](const std::string& schema) -> std::string {
    try {
      JsonGrammar::from_schema(json::parse(schema), false);
    } catch (const Error& e) {
      return e.what();
    }
    return "(compiled)";
  };
  EXPECT_EQ(error_of(R"({"type":"strin"})"), "schema at /: unknown type 'strin'");
  EXPECT_EQ(error_of(R"({"type":"object","properties":{"a":{"$ref":"#/$defs/a"}}})"),
            "schema at /properties/a: '$ref' is not supported in constrained decoding");
  EXPECT_EQ(error_of(R"({"type":"string","pattern":"^a"})"), "schema at /: 'pattern' is not supported in constrained decoding");
  EXPECT_EQ(error_of(R"({"type":"object","required":["x"]})"), "schema at /: required property 'x' is not in 'properties'");
  EXPECT_EQ(error_of(R"({"enum":[]})"), "schema at /: 'enum' must be a non-empty array");
  EXPECT_EQ(error_of("false"), "schema at /: the schema 'false' matches nothing");
  EXPECT_EQ(error_of("[1]"), "schema at /: a schema must be an object");
}

TEST(JsonGrammar, GemmaToolCall) {
  const json params = json::parse(R"({"type":"object","properties":{"city":{"type":"string"},
      "days":{"type":"integer"},"units":{"enum":["c","f"]}},"required":["city"]})");
  auto g = JsonGrammar::tool_call({{"get_weather", params}, {"get_time", nullptr}});
  const std::string Q(1, char(kSymQuote)), open(1, char(kSymToolCallOpen)), close(1, char(kSymToolCallClose));
  GrammarState s(*g);
  const std::string call = open + "call:get_weather{days:3,city:" + Q + "Paris \"x\"" + Q + ",units:" + Q + "c" + Q + "}" + close;
  EXPECT_EQ(accepted(s, call), call.size());
  ASSERT_TRUE(s.feed(std::string_view(call)));
  EXPECT_TRUE(s.finished());
  EXPECT_TRUE(complete(*g, open + "call:get_time{}" + close));
  EXPECT_TRUE(complete(*g, open + "call:get_time{tz:" + Q + "UTC" + Q + "}" + close));
  const std::string bad_name = open + "call:get_date{";
  EXPECT_EQ(accepted(GrammarState(*g), bad_name), 10u);
  EXPECT_EQ(accepted(GrammarState(*g), open + "call:get_weather{}"), 18u) << "city is required";
  EXPECT_EQ(accepted(GrammarState(*g), open + "call:get_weather{city:" + Q + "a<|b"), 26u) << "no special-token text in strings";
  EXPECT_EQ(accepted(GrammarState(*g), open + "call:get_weather{city:\"x\"}"), 23u) << "strings use the <|\"|> token";
}

}  // namespace
}  // namespace g4
