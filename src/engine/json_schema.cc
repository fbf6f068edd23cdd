// Compiling a JSON schema into a JsonGrammar (json_grammar.h): one node per schema (object, array,
// string, number, literal for const / enum / true / false / null, alternatives for anyOf / enum / type
// lists, a sequence for a tool call); keywords the recognizer cannot enforce are refused by name.
#include <set>

#include "base/error.h"
#include "engine/json_grammar.h"

namespace g4 {

using nlohmann::json;
using Node = JsonGrammar::Node;
using Kind = JsonGrammar::Kind;

namespace {
constexpr int kMaxDepth = 32;
}  // namespace

struct SchemaCompiler {
  JsonGrammar g;
  bool strict = false;
  int32_t any_[2] = {-1, -1};

  [[noreturn]] static void fail(const std::string& path, const std::string& msg) {
    throw Error("schema at " + (path.empty() ? std::string("/") : path) + ": " + msg);
  }
  int32_t add(Node n) {
    g.nodes_.push_back(std::move(n));
    return int32_t(g.nodes_.size() - 1);
  }
  int32_t literal(std::string s, bool gemma) {
    Node n;
    n.kind = Kind::kLiteral;
    n.gemma = gemma;
    n.lit = std::move(s);
    return add(std::move(n));
  }
  int32_t alt(std::vector<int32_t> kids) {
    if (kids.size() == 1) return kids[0];
    Node n;
    n.kind = Kind::kAlt;
    n.kids = std::move(kids);
    return add(std::move(n));
  }
  int32_t simple(Kind k, bool gemma) {
    Node n;
    n.kind = k;
    n.gemma = gemma;
    return add(std::move(n));
  }

  // Any JSON value (in the dialect); built once, recursive through its object and array nodes.
  int32_t any(bool gemma) {
    int32_t& a = any_[gemma];
    if (a >= 0) return a;
    Node n;
    n.kind = Kind::kAlt;
    a = add(std::move(n));
    Node obj;
    obj.kind = Kind::kObject;
    obj.gemma = gemma;
    obj.additional = a;
    Node arr;
    arr.kind = Kind::kArray;
    arr.gemma = gemma;
    arr.kids = {a};
    std::vector<int32_t> kids = {add(std::move(obj)), add(std::move(arr)), simple(Kind::kString, gemma),
                                 simple(Kind::kNumber, gemma), literal("true", gemma), literal("false", gemma),
                                 literal("null", gemma)};
    g.nodes_[size_t(a)].kids = std::move(kids);
    return a;
  }

  static std::string gemma_text(const json& v) {
    if (v.is_string()) {
      std::string s(1, char(kSymQuote));
      s += v.get<std::string>();
      s += char(kSymQuote);
      return s;
    }
    if (v.is_object()) {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        if (!first) s += ',';
        s += k;
        s += ':';
        s += gemma_text(x);
        first = false;
      }
      return s + "}";
    }
    if (v.is_array()) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ',';
        s += gemma_text(v[i]);
      }
      return s + "]";
    }
    return v.dump();
  }
  int32_t value_literal(const json& v, bool gemma) { return literal(gemma ? gemma_text(v) : v.dump(), gemma); }

  static int64_t count(const json& s, const char* key, const std::string& path) {
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(path, std::string("'") + key + "' must be an integer >= 0");
    return v.get<int64_t>();
  }

  int32_t object(const json& s, const std::string& path, bool gemma, int depth) {
    Node n;
    n.kind = Kind::kObject;
    n.gemma = gemma;
    if (s.contains("properties")) {
      const json& props = s["properties"];
      if (!props.is_object()) fail(path, "'properties' must be an object");
      if (props.size() > 64) fail(path, "more than 64 properties in one object are not supported");
      for (const auto& [name, sub] : props.items()) {
        for (unsigned char c : name)
          if (gemma ? !gemma_key_byte(c) : (c < 0x20 || c == '\\' || c == '"'))
            fail(path, "the property name '" + name + "' has characters keys cannot hold here");
        if (gemma && name.empty()) fail(path, "an empty property name cannot be written as a bare key");
        n.names.push_back(name);
        n.kids.push_back(compile(sub, path + "/properties/" + name, gemma, depth + 1));
      }
    }
    if (s.contains("required")) {
      const json& req = s["required"];
      if (!req.is_array()) fail(path, "'required' must be an array of property names");
      for (const json& r : req) {
        if (!r.is_string()) fail(path, "'required' must be an array of property names");
        size_t i = 0;
        while (i < n.names.size() && n.names[i] != r.get<std::string>()) ++i;
        if (i == n.names.size()) fail(path, "required property '" + r.get<std::string>() + "' is not in 'properties'");
        n.required |= uint64_t(1) << i;
      }
    }
    n.additional = strict ? -1 : any(gemma);
    if (s.contains("additionalProperties") && !strict) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean()) n.additional = a.get<bool>() ? any(gemma) : -1;
      else n.additional = compile(a, path + "/additionalProperties", gemma, depth + 1);
    }
    return add(std::move(n));
  }

  int32_t array(const json& s, const std::string& path, bool gemma, int depth) {
    Node n;
    n.kind = Kind::kArray;
    n.gemma = gemma;
    n.kids = {s.contains("items") ? compile(s["items"], path + "/items", gemma, depth + 1) : any(gemma)};
    if (s.contains("minItems")) n.min = count(s, "minItems", path);
    if (s.contains("maxItems")) n.max = count(s, "maxItems", path);
    if (n.max >= 0 && n.max < n.min) fail(path, "'maxItems' is below 'minItems'");
    return add(std::move(n));
  }

  int32_t of_type(const std::string& t, const json& s, const std::string& path, bool gemma, int depth) {
    if (t == "object") return object(s, path, gemma, depth);
    if (t == "array") return array(s, path, gemma, depth);
    if (t == "string") {
      Node n;
      n.kind = Kind::kString;
      n.gemma = gemma;
      if (s.contains("minLength")) n.min = count(s, "minLength", path);
      if (s.contains("maxLength")) n.max = count(s, "maxLength", path);
      if (n.max >= 0 && n.max < n.min) fail(path, "'maxLength' is below 'minLength'");
      return add(std::move(n));
    }
    if (t == "number") return simple(Kind::kNumber, gemma);
    if (t == "integer") return simple(Kind::kInteger, gemma);
    if (t == "boolean") return alt({literal("true", gemma), literal("false", gemma)});
    if (t == "null") return literal("null", gemma);
    fail(path, "unknown type '" + t + "'");
  }

  int32_t compile(const json& s, const std::string& path, bool gemma, int depth) {
    if (depth > kMaxDepth) fail(path, "nested more than " + std::to_string(kMaxDepth) + " levels deep");
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "the schema 'false' matches nothing");
      return any(gemma);
    }
    if (!s.is_object()) fail(path, "a schema must be an object");
    static const std::set<std::string> kRefused = {
        "$ref", "$dynamicRef", "pattern", "patternProperties", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "oneOf", "allOf", "not", "if", "then", "else", "dependentRequired",
        "dependentSchemas", "uniqueItems", "prefixItems", "contains", "minContains", "maxContains",
        "minProperties", "maxProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
        "additionalItems"};
    for (const auto& [k, v] : s.items())
      if (kRefused.count(k)) fail(path, "'" + k + "' is not supported in constrained decoding");
    if (s.contains("const")) return value_literal(s["const"], gemma);
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) fail(path, "'enum' must be a non-empty array");
      if (e.size() > 256) fail(path, "'enum' with more than 256 values is not supported");
      std::vector<int32_t> kids;
      for (const json& v : e) kids.push_back(value_literal(v, gemma));
      return alt(std::move(kids));
    }
    if (s.contains("anyOf")) {
      const json& a = s["anyOf"];
      if (!a.is_array() || a.empty()) fail(path, "'anyOf' must be a non-empty array of schemas");
      if (s.contains("type")) fail(path, "'anyOf' next to 'type' is not supported (put the type in each branch)");
      std::vector<int32_t> kids;
      for (size_t i = 0; i < a.size(); ++i) kids.push_back(compile(a[i], path + "/anyOf/" + std::to_string(i), gemma, depth + 1));
      return alt(std::move(kids));
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) types.push_back(t.get<std::string>());
      else if (t.is_array() && !t.empty()) {
        for (const json& x : t) {
          if (!x.is_string()) fail(path, "'type' must be a string or an array of strings");
          types.push_back(x.get<std::string>());
        }
      } else {
        fail(path, "'type' must be a string or an array of strings");
      }
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types.push_back("array");
    } else {
      return any(gemma);
    }
    if (s.contains("nullable") && s["nullable"].is_boolean() && s["nullable"].get<bool>()) types.push_back("null");
    std::vector<int32_t> kids;
    for (const std::string& t : types) kids.push_back(of_type(t, s, path, gemma, depth));
    return alt(std::move(kids));
  }
};

std::shared_ptr<const JsonGrammar> JsonGrammar::from_schema(const json& schema, bool strict, JsonDialect dialect) {
  SchemaCompiler c;
  c.strict = strict;
  c.g.root_ = c.compile(schema, "", dialect == JsonDialect::kGemma, 0);
  return std::make_shared<JsonGrammar>(std::move(c.g));
}

std::shared_ptr<const JsonGrammar> JsonGrammar::any_object() {
  SchemaCompiler c;
  c.g.root_ = c.compile(json{{"type", "object"}}, "", false, 0);
  return std::make_shared<JsonGrammar>(std::move(c.g));
}

std::shared_ptr<const JsonGrammar> JsonGrammar::tool_call(const std::vector<std::pair<std::string, json>>& functions) {
  if (functions.empty()) throw Error("a forced tool call needs at least one function");
  SchemaCompiler c;
  std::vector<int32_t> calls;
  for (const auto& [name, params] : functions) {
    if (name.empty()) throw Error("a function needs a name");
    for (unsigned char ch : name)
      if (!gemma_key_byte(ch)) throw Error("the function name '" + name + "' cannot be written in a Gemma 4 tool call");
    const json schema = params.is_null() ? json{{"type", "object"}} : params;
    int32_t args;
    try {
      args = c.compile(schema, "", true, 0);
    } catch (const Error& e) {
      throw Error("function '" + name + "' parameters: " + e.what());
    }
    if (c.g.nodes_[size_t(args)].kind != Kind::kObject)
      throw Error("function '" + name + "' parameters: the schema must describe an object");
    Node seq;
    seq.kind = Kind::kSeq;
    seq.kids = {c.literal(std::string(1, char(kSymToolCallOpen)) + "call:" + name, true), args,
                c.literal(std::string(1, char(kSymToolCallClose)), true)};
    calls.push_back(c.add(std::move(seq)));
  }
  c.g.root_ = c.alt(std::move(calls));
  return std::make_shared<JsonGrammar>(std::move(c.g));
}

}  // namespace g4
