// See json_grammar.h. The recognizer is a set of explicit parse stacks, one frame per open value; an
// anyOf / enum / "any value" node forks the stack when its value starts and the forks that reject a byte
// die. Every frame only accepts a byte after which its value can still be completed (an object closes
// only when its required keys are there, a key must be a prefix of a key still allowed, ...), so a
// prefix the state accepts never dead-ends in the grammar itself.
#include "engine/json_grammar.h"

#include <cstring>
#include <set>

#include "base/error.h"

namespace g4 {

using nlohmann::json;
using Node = JsonGrammar::Node;
using Kind = JsonGrammar::Kind;
using Frame = GrammarState::Frame;
using Stack = GrammarState::Stack;

namespace {

constexpr int kMaxNumber = 32;
constexpr int kMaxInteger = 18;  // characters: every such integer fits int64
constexpr size_t kMaxStack = 40;
constexpr int kMaxDepth = 32;
constexpr int32_t kMaxKey = 256;

bool is_ws(uint8_t b) { return b == ' ' || b == '\n' || b == '\t' || b == '\r'; }

uint64_t all_keys(const Node& n) {
  return n.names.size() >= 64 ? ~uint64_t(0) : (uint64_t(1) << n.names.size()) - 1;
}

// One byte of UTF-8 text: -1 invalid, 0 inside a character, 1 a character complete.
int utf8_step(Frame& f, uint8_t b) {
  if (f.pend) {
    if (b < f.lo || b > f.hi) return -1;
    f.lo = 0x80;
    f.hi = 0xBF;
    return --f.pend == 0 ? 1 : 0;
  }
  if (b < 0x80) return 1;
  f.lo = 0x80;
  f.hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) f.pend = 1;
  else if (b == 0xE0) f.pend = 2, f.lo = 0xA0;
  else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) f.pend = 2;
  else if (b == 0xED) f.pend = 2, f.hi = 0x9F;
  else if (b == 0xF0) f.pend = 3, f.lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) f.pend = 3;
  else if (b == 0xF4) f.pend = 3, f.hi = 0x8F;
  else return -1;
  return 0;
}

int hex_value(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

enum class Act { kTake, kTakeDone, kReject, kPassUp, kPush };

// Whitespace between tokens: none or one space (outlines' default), so endless blank runs and newline
// indentation, which small models like and which cost tokens, cannot happen. f.ws: 1 after the space.
// Returns kTake when `b` is the space taken, kReject for whitespace not allowed here, kPush (meaning:
// not whitespace) else.
Act take_ws(Frame& f, uint8_t b) {
  if (!is_ws(b)) {
    f.ws = 0;
    return Act::kPush;
  }
  if (b != ' ' || f.ws) return Act::kReject;
  f.ws = 1;
  return Act::kTake;
}

Act step_string(Frame& f, const Node& nd, uint8_t b) {
  const uint8_t quote = nd.gemma ? kSymQuote : uint8_t('"');
  switch (f.phase) {
    case 0:
      if (b != quote) return Act::kReject;
      f.phase = 1;
      return Act::kTake;
    case 1: {
      if (f.pend) return utf8_step(f, b) < 0 ? Act::kReject : Act::kTake;
      if (b == quote) return f.n < nd.min ? Act::kReject : Act::kTakeDone;
      if (!nd.gemma) {
        if (b < 0x20) return Act::kReject;
        if (b == '\\') {
          if (nd.max >= 0 && f.n >= nd.max) return Act::kReject;
          f.phase = 2;
          return Act::kTake;
        }
      } else if ((f.prev == '<' && b == '|') || (f.prev == '|' && b == '>')) {
        return Act::kReject;
      }
      if (nd.max >= 0 && f.n >= nd.max) return Act::kReject;
      if (utf8_step(f, b) < 0) return Act::kReject;
      ++f.n;
      f.prev = b;
      return Act::kTake;
    }
    case 2:
      if (b != 0 && std::strchr("\"\\/bfnrt", b)) {
        ++f.n;
        f.phase = 1;
        return Act::kTake;
      }
      if (b == 'u') {
        f.phase = 3;
        f.lo = 0;
        return Act::kTake;
      }
      return Act::kReject;
    default: {  // phases 3..6: the four hex digits of \uXXXX (no surrogates)
      const int h = hex_value(b);
      if (h < 0) return Act::kReject;
      if (f.phase == 3) f.lo = h == 0xD;
      if (f.phase == 4 && f.lo && h >= 8) return Act::kReject;
      if (++f.phase == 7) {
        f.phase = 1;
        f.lo = 0;
        ++f.n;
      }
      return Act::kTake;
    }
  }
}

Act step_number(Frame& f, const Node& nd, uint8_t b) {
  const bool digit = b >= '0' && b <= '9';
  const bool real = nd.kind == Kind::kNumber;
  int next = -1;
  switch (f.phase) {
    case 0: next = b == '-' ? 1 : b == '0' ? 3 : digit ? 2 : -1; break;
    case 1: next = b == '0' ? 3 : digit ? 2 : -1; break;
    case 2: next = digit ? 2 : (real && b == '.') ? 4 : (real && (b == 'e' || b == 'E')) ? 6 : -1; break;
    case 3: next = (real && b == '.') ? 4 : (real && (b == 'e' || b == 'E')) ? 6 : -1; break;
    case 4: next = digit ? 5 : -1; break;
    case 5: next = digit ? 5 : (b == 'e' || b == 'E') ? 6 : -1; break;
    case 6: next = (b == '+' || b == '-') ? 7 : digit ? 8 : -1; break;
    case 7: next = digit ? 8 : -1; break;
    case 8: next = digit ? 8 : -1; break;
  }
  if (next >= 0) {
    if (f.n >= (real ? kMaxNumber : kMaxInteger)) return Act::kReject;
    if (next == 8) {  // exponent digits: at most two, so the value fits a double (parsers refuse 1e999)
      f.lo = f.phase == 8 ? uint8_t(f.lo + 1) : 1;
      if (f.lo > 2) return Act::kReject;
    }
    ++f.n;
    f.phase = uint8_t(next);
    return Act::kTake;
  }
  const bool accepting = f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
  return accepting ? Act::kPassUp : Act::kReject;
}

bool number_accepting(const Frame& f) { return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8; }

// A key byte: matches it against the declared keys still possible (and, with other keys allowed, checks
// it as UTF-8 text).
Act key_byte(Frame& f, const Node& nd, uint8_t b) {
  if (f.n >= kMaxKey && !f.pend) return Act::kReject;  // a character already begun may finish
  uint64_t cand = 0;
  for (uint64_t m = f.cand; m; m &= m - 1) {
    const int i = __builtin_ctzll(m);
    const std::string& name = nd.names[size_t(i)];
    if (size_t(f.n) < name.size() && uint8_t(name[size_t(f.n)]) == b) cand |= uint64_t(1) << i;
  }
  if (nd.additional >= 0) {
    if (utf8_step(f, b) < 0) return Act::kReject;
  } else if (cand == 0) {
    return Act::kReject;
  }
  f.cand = cand;
  ++f.n;
  return Act::kTake;
}

// The key just read: the declared property it names, -2 for another key, or -1 (not allowed).
int key_end(const Frame& f, const Node& nd) {
  if (f.pend) return -1;
  for (uint64_t m = f.cand; m; m &= m - 1) {
    const int i = __builtin_ctzll(m);
    if (nd.names[size_t(i)].size() == size_t(f.n)) return i;
  }
  return nd.additional >= 0 && (f.n > 0 || !nd.gemma) ? -2 : -1;
}

bool gemma_key_char(uint8_t b) {
  return !is_ws(b) && !std::strchr(":,{}[]<|>", b) && b != 0 && b < 0xF5;
}

Act step_object(Frame& f, const Node& nd, uint8_t b, int32_t* child) {
  if (f.phase == 0) {
    if (b != '{') return Act::kReject;
    f.phase = 1;
    return Act::kTake;
  }
  if (!nd.gemma && f.phase != 3) {
    const Act w = take_ws(f, b);
    if (w != Act::kPush) return w;
  }
  const uint64_t free_keys = all_keys(nd) & ~f.seen;
  switch (f.phase) {
    case 1:
      if (b == '}') return (nd.required & ~f.seen) == 0 ? Act::kTakeDone : Act::kReject;
      [[fallthrough]];
    case 2:  // a key starts
      if (free_keys == 0 && nd.additional < 0) return Act::kReject;
      f.cand = free_keys;
      f.n = 0;
      f.pend = 0;
      f.phase = 3;
      if (!nd.gemma) return b == '"' ? Act::kTake : Act::kReject;
      if (!gemma_key_char(b)) return Act::kReject;
      return key_byte(f, nd, b);
    case 3: {
      const uint8_t end = nd.gemma ? uint8_t(':') : uint8_t('"');
      if (b == end) {
        const int k = key_end(f, nd);
        if (k == -1) return Act::kReject;
        f.key = int16_t(k);
        f.phase = nd.gemma ? 5 : 4;
        return Act::kTake;
      }
      if (nd.gemma ? !gemma_key_char(b) : (b < 0x20 || b == '\\')) return Act::kReject;
      return key_byte(f, nd, b);
    }
    case 4:
      if (b != ':') return Act::kReject;
      f.phase = 5;
      return Act::kTake;
    case 5:
      if (f.key >= 0) {
        f.seen |= uint64_t(1) << f.key;
        *child = nd.kids[size_t(f.key)];
      } else {
        *child = nd.additional;
      }
      f.phase = 6;
      return Act::kPush;
    default:  // 6: after a value
      if (b == ',') {
        if (free_keys == 0 && nd.additional < 0) return Act::kReject;
        f.phase = 2;
        return Act::kTake;
      }
      if (b == '}') return (nd.required & ~f.seen) == 0 ? Act::kTakeDone : Act::kReject;
      return Act::kReject;
  }
}

Act step_array(Frame& f, const Node& nd, uint8_t b, int32_t* child) {
  if (f.phase == 0) {
    if (b != '[') return Act::kReject;
    f.phase = 1;
    return Act::kTake;
  }
  if (!nd.gemma) {
    const Act w = take_ws(f, b);
    if (w != Act::kPush) return w;
  }
  switch (f.phase) {
    case 1:
      if (b == ']') return nd.min == 0 ? Act::kTakeDone : Act::kReject;
      if (nd.max == 0) return Act::kReject;
      [[fallthrough]];
    case 3:
      ++f.n;
      f.phase = 2;
      *child = nd.kids[0];
      return Act::kPush;
    default:  // 2: after an item
      if (b == ',') {
        if (nd.max >= 0 && f.n >= nd.max) return Act::kReject;
        f.phase = 3;
        return Act::kTake;
      }
      if (b == ']') return f.n >= nd.min ? Act::kTakeDone : Act::kReject;
      return Act::kReject;
  }
}

// Pops a finished frame and every sequence it finishes.
void pop_done(const JsonGrammar& g, Stack& st) {
  st.pop_back();
  while (!st.empty()) {
    const Frame& f = st.back();
    const Node& nd = g.nodes()[size_t(f.node)];
    if (nd.kind != Kind::kSeq || size_t(f.n) < nd.kids.size()) break;
    st.pop_back();
  }
}

// Pushes node `id`, forking once per alternative.
void expand(const JsonGrammar& g, Stack st, int32_t id, std::vector<Stack>& out) {
  const Node& nd = g.nodes()[size_t(id)];
  if (nd.kind == Kind::kAlt) {
    for (int32_t k : nd.kids) expand(g, st, k, out);
    return;
  }
  if (st.size() >= kMaxStack) return;
  Frame f;
  f.node = id;
  st.push_back(f);
  out.push_back(std::move(st));
}

void feed_stack(const JsonGrammar& g, Stack st, uint8_t b, std::vector<Stack>& out) {
  for (;;) {
    if (st.empty()) return;  // the value is finished: nothing may follow
    Frame& f = st.back();
    const Node& nd = g.nodes()[size_t(f.node)];
    int32_t child = -1;
    Act a = Act::kReject;
    switch (nd.kind) {
      case Kind::kObject: a = step_object(f, nd, b, &child); break;
      case Kind::kArray: a = step_array(f, nd, b, &child); break;
      case Kind::kString: a = step_string(f, nd, b); break;
      case Kind::kNumber:
      case Kind::kInteger: a = step_number(f, nd, b); break;
      case Kind::kLiteral:
        if (uint8_t(nd.lit[size_t(f.n)]) != b) return;
        a = size_t(++f.n) == nd.lit.size() ? Act::kTakeDone : Act::kTake;
        break;
      case Kind::kSeq:
        child = nd.kids[size_t(f.n++)];
        a = Act::kPush;
        break;
      case Kind::kAlt: return;  // never on a stack
    }
    switch (a) {
      case Act::kTake: out.push_back(std::move(st)); return;
      case Act::kTakeDone:
        pop_done(g, st);
        out.push_back(std::move(st));
        return;
      case Act::kReject: return;
      case Act::kPassUp: pop_done(g, st); continue;
      case Act::kPush: {
        std::vector<Stack> forks;
        expand(g, std::move(st), child, forks);
        for (Stack& s : forks) feed_stack(g, std::move(s), b, out);
        return;
      }
    }
  }
}

bool stack_can_end(const JsonGrammar& g, Stack st) {
  while (!st.empty()) {
    const Frame& f = st.back();
    const Kind k = g.nodes()[size_t(f.node)].kind;
    if ((k != Kind::kNumber && k != Kind::kInteger) || !number_accepting(f)) return false;
    pop_done(g, st);
  }
  return true;
}

}  // namespace

// ---- compiling a schema ----

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
          if (gemma ? !gemma_key_char(c) : (c < 0x20 || c == '\\' || c == '"'))
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
      if (!gemma_key_char(ch)) throw Error("the function name '" + name + "' cannot be written in a Gemma 4 tool call");
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

// ---- the state ----

GrammarState::GrammarState(const JsonGrammar& g) : g_(&g) { expand(g, Stack{}, g.root(), stacks_); }

namespace {

// Merges identical parses (two anyOf branches that both finished leave the same stack behind; without this
// every array item would double them) and refuses more than kMaxParses.
bool merge_parses(std::vector<Stack>& stacks) {
  if (stacks.size() > 1) {
    size_t kept = 0;
    for (size_t i = 0; i < stacks.size(); ++i) {
      bool dup = false;
      for (size_t j = 0; j < kept && !dup; ++j) dup = stacks[j] == stacks[i];
      if (!dup) {
        if (kept != i) stacks[kept] = std::move(stacks[i]);
        ++kept;
      }
    }
    stacks.resize(kept);
  }
  return !stacks.empty() && stacks.size() <= GrammarState::kMaxParses;
}

}  // namespace

bool GrammarState::feed(uint8_t b) {
  if (stacks_.size() == 1) {  // the common case, in place: no allocation unless a value starts
    Stack st = std::move(stacks_[0]);
    stacks_.clear();
    feed_stack(*g_, std::move(st), b, stacks_);
    return stacks_.size() == 1 || merge_parses(stacks_);
  }
  std::vector<Stack> out;
  for (const Stack& s : stacks_) feed_stack(*g_, s, b, out);
  if (!merge_parses(out)) return false;
  stacks_ = std::move(out);
  return true;
}

bool GrammarState::feed(std::string_view s) {
  GrammarState t = *this;
  for (char c : s)
    if (!t.feed(uint8_t(c))) return false;
  *this = std::move(t);
  return true;
}

bool GrammarState::can_end() const {
  for (const Stack& s : stacks_)
    if (stack_can_end(*g_, s)) return true;
  return false;
}

bool GrammarState::finished() const {
  for (const Stack& s : stacks_)
    if (!s.empty()) return false;
  return true;
}

int GrammarState::in_free_string(int64_t* chars_left) const {
  if (stacks_.size() != 1 || stacks_[0].empty()) return 0;
  const Frame& f = stacks_[0].back();
  const Node& nd = g_->nodes()[size_t(f.node)];
  if (nd.kind != Kind::kString || f.phase != 1 || f.pend) return 0;
  *chars_left = nd.max >= 0 ? nd.max - f.n : -1;
  return nd.gemma ? 2 : 1;
}

}  // namespace g4
