#include "engine/json_grammar.h"

#include <gtest/gtest.h>

#include "base/error.h"

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

  auto obj = JsonGrammar::any_object();
  EXPECT_TRUE(complete(*obj, R"({"k":[{"x":-0.5E+3},"s",false]})"));
  EXPECT_FALSE(complete(*obj, R"("just a string")"));
  EXPECT_FALSE(complete(*obj, R"({"k":})"));
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
