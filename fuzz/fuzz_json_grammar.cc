// Fuzzes constrained decoding's recognizer: a JSON schema from the request (response_format, tools)
// compiled into a JsonGrammar, then output bytes fed to a GrammarState. Input: a flags byte (bit 0 strict,
// bit 1 the Gemma dialect, bit 2 a forced tool call of one function whose parameters are the schema), the
// schema's JSON text, a NUL byte, then the output bytes. Checked on every input:
// - whatever bytes come, nothing crashes, and the first refused byte ends the output;
// - feeding the accepted bytes in one call (all or nothing) ends in the same state as byte by byte, and
//   the whole input in one call is refused, leaving a fresh state, when a byte of it was refused;
// - finished() implies can_end(); where the state says it is inside a free string, a plain letter is taken;
// - in standard JSON (no tool call), an output the state says may end here is valid JSON and satisfies the
//   schema (checked by the small validator below, for the keywords the compiler accepts).
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "engine/json_grammar.h"

namespace {

using nlohmann::json;

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool valid(const json& v, const json& s, bool strict);

bool valid_type(const json& v, const std::string& t, const json& s, bool strict) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (t == "string") {
    if (!v.is_string()) return false;
    const int64_t n = code_points(v.get<std::string>());
    return n >= s.value("minLength", int64_t(0)) && (!s.contains("maxLength") || n <= s["maxLength"].get<int64_t>());
  }
  if (t == "array") {
    if (!v.is_array()) return false;
    const int64_t n = int64_t(v.size());
    if (n < s.value("minItems", int64_t(0)) || (s.contains("maxItems") && n > s["maxItems"].get<int64_t>())) return false;
    for (const json& x : v)
      if (s.contains("items") && !valid(x, s["items"], strict)) return false;
    return true;
  }
  if (t == "object") {
    if (!v.is_object()) return false;
    const json props = s.contains("properties") ? s["properties"] : json::object();
    if (s.contains("required"))
      for (const json& r : s["required"])
        if (!v.contains(r.get<std::string>())) return false;
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (!valid(x, props[k], strict)) return false;
      } else if (strict) {
        return false;
      } else if (s.contains("additionalProperties") && !valid(x, s["additionalProperties"], strict)) {
        return false;
      }
    }
    return true;
  }
  return false;
}

// Whether v satisfies schema s (one the compiler accepted, so only its keywords occur).
bool valid(const json& v, const json& s, bool strict) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("const")) return v == s["const"];
  if (s.contains("enum")) {
    for (const json& e : s["enum"])
      if (v == e) return true;
    return false;
  }
  if (s.contains("anyOf")) {
    for (const json& b : s["anyOf"])
      if (valid(v, b, strict)) return true;
    return false;
  }
  std::vector<std::string> types;
  if (s.contains("type")) {
    if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
    else for (const json& t : s["type"]) types.push_back(t.get<std::string>());
  } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
    types.push_back("object");
  } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
    types.push_back("array");
  } else {
    return true;
  }
  if (s.contains("nullable") && s["nullable"] == true) types.push_back("null");
  for (const std::string& t : types)
    if (valid_type(v, t, s, strict)) return true;
  return false;
}

bool same(const g4::GrammarState& a, const g4::GrammarState& b) {
  int64_t la = 0, lb = 0;
  return a.can_end() == b.can_end() && a.finished() == b.finished() && a.in_free_string(&la) == b.in_free_string(&lb) &&
         la == lb;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const char* body = reinterpret_cast<const char*>(data) + 1;
  const size_t n = size - 1;
  const void* nul = std::memchr(body, 0, n);
  if (!nul) return 0;
  const size_t schema_len = size_t(static_cast<const char*>(nul) - body);
  const nlohmann::json schema = nlohmann::json::parse(std::string(body, schema_len), nullptr, false);
  if (schema.is_discarded()) return 0;
  const std::string_view out(body + schema_len + 1, n - schema_len - 1);
  const bool strict = flags & 1, gemma = flags & 2, tool = flags & 4;

  std::shared_ptr<const g4::JsonGrammar> g;
  try {
    g = tool ? g4::JsonGrammar::tool_call({{"f", schema}})
             : g4::JsonGrammar::from_schema(schema, strict, gemma ? g4::JsonDialect::kGemma : g4::JsonDialect::kJson);
  } catch (const g4::Error&) {
    return 0;
  }

  g4::GrammarState st(*g);
  size_t taken = 0;
  while (taken < out.size()) {
    if (st.finished() && !st.can_end()) __builtin_trap();
    int64_t left = 0;
    if (st.in_free_string(&left) && left != 0) {
      g4::GrammarState probe = st;
      if (!probe.feed(uint8_t('a'))) __builtin_trap();
    }
    if (!st.feed(uint8_t(out[taken]))) break;
    ++taken;
  }
  if (taken < out.size()) {
    // Byte `taken` was refused: st is spoilt. Replay the accepted prefix and compare, all or nothing.
    st = g4::GrammarState(*g);
    if (!st.feed(out.substr(0, taken))) __builtin_trap();
    g4::GrammarState whole(*g);
    if (whole.feed(out)) __builtin_trap();
    if (!same(whole, g4::GrammarState(*g))) __builtin_trap();
  } else {
    g4::GrammarState once(*g);
    if (!once.feed(out) || !same(once, st)) __builtin_trap();
  }
  if (st.finished() && !st.can_end()) __builtin_trap();
  if (!gemma && !tool && st.can_end()) {
    const json v = json::parse(out.substr(0, taken), nullptr, false);
    if (v.is_discarded() || !valid(v, schema, strict)) __builtin_trap();
  }
  return 0;
}
