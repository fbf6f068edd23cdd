// See chat_output.h. The argument parser is a small recursive descent over the format the chat template's
// format_argument writes (keys bare, strings between <|"|> with no escaping), so rendering a tool call and
// parsing it back gives the same JSON.
#include "tokenizer/chat_output.h"

#include <cstdlib>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace g4 {

namespace {

using Json = nlohmann::ordered_json;
constexpr std::string_view kQ = "<|\"|>";

struct ValueParser {
  std::string_view s;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("tool call arguments: " + what + " at offset " + std::to_string(i));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool starts(std::string_view t) const { return s.substr(i, t.size()) == t; }

  std::string quoted() {
    i += kQ.size();
    const size_t end = s.find(kQ, i);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s.substr(i, end - i));
    i = end + kQ.size();
    return out;
  }

  Json value() {
    if (++depth > 128) fail("nesting too deep");
    ws();
    Json v;
    if (i >= s.size()) fail("missing value");
    if (starts(kQ)) {
      v = quoted();
    } else if (s[i] == '{') {
      v = object();
    } else if (s[i] == '[') {
      ++i;
      v = Json::array();
      ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
      } else {
        while (true) {
          v.push_back(value());
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == ']') { ++i; break; }
          fail("expected ',' or ']'");
        }
      }
    } else {
      // A bare scalar runs to the next delimiter.
      size_t e = i;
      while (e < s.size() && s[e] != ',' && s[e] != '}' && s[e] != ']') ++e;
      std::string tok(utf8::py_strip(s.substr(i, e - i)));
      i = e;
      if (tok == "true") v = true;
      else if (tok == "false") v = false;
      else if (tok == "null" || tok == "None") v = nullptr;
      else {
        char* end = nullptr;
        const long long n = std::strtoll(tok.c_str(), &end, 10);
        if (!tok.empty() && end && *end == '\0') {
          v = int64_t(n);
        } else {
          const double d = std::strtod(tok.c_str(), &end);
          if (!tok.empty() && end && *end == '\0') v = d;
          else v = tok;  // unquoted text: keep it as a string rather than failing the whole call
        }
      }
    }
    --depth;
    return v;
  }

  Json object() {
    ++i;  // '{'
    Json o = Json::object();
    ws();
    if (i < s.size() && s[i] == '}') {
      ++i;
      return o;
    }
    while (true) {
      ws();
      std::string key;
      if (starts(kQ)) {
        key = quoted();
      } else {
        const size_t c = s.find(':', i);
        if (c == std::string_view::npos) fail("expected 'key:'");
        key = std::string(utf8::py_strip(s.substr(i, c - i)));
        i = c;
      }
      ws();
      if (i >= s.size() || s[i] != ':') fail("expected ':'");
      ++i;
      o[key] = value();
      ws();
      if (i < s.size() && s[i] == ',') { ++i; continue; }
      if (i < s.size() && s[i] == '}') { ++i; break; }
      fail("expected ',' or '}'");
    }
    return o;
  }
};

}  // namespace

Json parse_gemma4_value(std::string_view text) {
  ValueParser p{text};
  Json v = p.value();
  p.ws();
  if (p.i != text.size()) p.fail("trailing text");
  return v;
}

ParsedOutput parse_gemma4_output(std::string_view text) {
  // Stop at the first stop token.
  size_t stop = text.size();
  for (std::string_view t : {"<turn|>", "<|tool_response>", "<eos>"}) stop = std::min(stop, text.find(t));
  text = text.substr(0, stop);

  ParsedOutput out;
  std::string content;
  size_t i = 0;
  while (i < text.size()) {
    const size_t ch = text.find("<|channel>", i), tc = text.find("<|tool_call>", i);
    const size_t next = std::min(ch, tc);
    content.append(text.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i));
    if (next == std::string_view::npos) break;
    if (next == ch) {
      size_t b = ch + 10;
      const size_t e = text.find("<channel|>", b);
      std::string_view body = text.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
      if (body.substr(0, 7) == "thought") body.remove_prefix(body.size() > 7 && body[7] == '\n' ? 8 : 7);
      if (!out.thinking.empty()) out.thinking += "\n";
      out.thinking.append(body);
      i = e == std::string_view::npos ? text.size() : e + 10;
    } else {
      const size_t b = tc + 12;
      const size_t e = text.find("<tool_call|>", b);
      std::string_view body = text.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
      i = e == std::string_view::npos ? text.size() : e + 12;
      ToolCall call;
      if (body.substr(0, 5) == "call:") body.remove_prefix(5);
      const size_t brace = body.find('{');
      call.name = std::string(utf8::py_strip(body.substr(0, brace)));
      if (brace == std::string_view::npos) {
        call.arguments = Json::object();
      } else {
        try {
          call.arguments = parse_gemma4_value(body.substr(brace));
        } catch (const Error&) {
          call.arguments = std::string(body.substr(brace));
        }
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  out.content = std::string(utf8::py_strip(content));
  return out;
}

}  // namespace g4
