// Fuzzes constrained decoding's recognizer: a JSON schema from the request (response_format, tools)
// compiled into a JsonGrammar, then output bytes fed to a GrammarState. Input: a flags byte (bit 0 strict,
// bit 1 the Gemma dialect, bit 2 a forced tool call of one function whose parameters are the schema), the
// schema's JSON text, a NUL byte, then the output bytes. Checked on every input:
// - whatever bytes come, nothing crashes, and the first refused byte ends the output;
// - feeding the accepted bytes in one call (all or nothing) ends in the same state as byte by byte, and
//   the whole input in one call is refused, leaving a fresh state, when a byte of it was refused;
// - finished() implies can_end(); where the state says it is inside a free string, a plain letter is taken;
// - in standard JSON (no tool call), an output the state says may end here is valid JSON.
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <string_view>

#include "base/error.h"
#include "engine/json_grammar.h"

namespace {

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
  if (!gemma && !tool && st.can_end() && !nlohmann::json::accept(out.substr(0, taken))) __builtin_trap();
  return 0;
}
