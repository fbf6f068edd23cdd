// See json_grammar.h (schemas are compiled in json_schema.cc). The recognizer is a set of explicit parse stacks, one frame per open value; an
// anyOf / enum / "any value" node forks the stack when its value starts and the forks that reject a byte
// die. Every frame only accepts a byte after which its value can still be completed (an object closes
// only when its required keys are there, a key must be a prefix of a key still allowed, ...), so a
// prefix the state accepts never dead-ends in the grammar itself.
#include "engine/json_grammar.h"

#include <cstring>

namespace g4 {

using Node = JsonGrammar::Node;
using Kind = JsonGrammar::Kind;
using Frame = GrammarState::Frame;
using Stack = GrammarState::Stack;

namespace {

constexpr int kMaxNumber = 32;
constexpr int kMaxInteger = 18;  // characters: every such integer fits int64
constexpr size_t kMaxStack = 40;
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

bool number_accepting(const Frame& f) { return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8; }

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
    // The length cap only stops a number that could end here ("1." must still get its digit).
    if (f.n >= (real ? kMaxNumber : kMaxInteger) && number_accepting(f)) return Act::kReject;
    if (next == 8) {  // exponent digits: at most two, so the value fits a double (parsers refuse 1e999)
      f.lo = f.phase == 8 ? uint8_t(f.lo + 1) : 1;
      if (f.lo > 2) return Act::kReject;
    }
    ++f.n;
    f.phase = uint8_t(next);
    return Act::kTake;
  }
  return number_accepting(f) ? Act::kPassUp : Act::kReject;
}


// A key byte: matches it against the declared keys still possible (and, with other keys allowed, checks
// it as UTF-8 text).
Act key_byte(Frame& f, const Node& nd, uint8_t b) {
  // Other keys are capped; a character already begun and a declared name may finish.
  if (f.n >= kMaxKey && !f.pend && !f.cand) return Act::kReject;
  const auto matching = [&](uint64_t keys) {
    uint64_t out = 0;
    for (uint64_t m = keys; m; m &= m - 1) {
      const int i = __builtin_ctzll(m);
      const std::string& name = nd.names[size_t(i)];
      if (size_t(f.n) < name.size() && uint8_t(name[size_t(f.n)]) == b) out |= uint64_t(1) << i;
    }
    return out;
  };
  const uint64_t cand = matching(f.cand);
  if (nd.additional >= 0) {
    if (utf8_step(f, b) < 0) return Act::kReject;
  } else if (cand == 0) {
    return Act::kReject;
  }
  f.cand = cand;
  f.dup = matching(f.dup);
  ++f.n;
  return Act::kTake;
}

// The key just read: the declared property it names, -2 for another key, or -1 (not allowed: a declared
// key given twice is not another key).
int key_end(const Frame& f, const Node& nd) {
  if (f.pend) return -1;
  const auto named = [&](uint64_t keys) {
    for (uint64_t m = keys; m; m &= m - 1) {
      const int i = __builtin_ctzll(m);
      if (nd.names[size_t(i)].size() == size_t(f.n)) return i;
    }
    return -1;
  };
  if (const int i = named(f.cand); i >= 0) return i;
  if (named(f.dup) >= 0) return -1;
  return nd.additional >= 0 && (f.n > 0 || !nd.gemma) ? -2 : -1;
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
      f.dup = nd.additional >= 0 ? all_keys(nd) & f.seen : 0;  // (without other keys they cannot match)
      f.n = 0;
      f.pend = 0;
      f.phase = 3;
      if (!nd.gemma) return b == '"' ? Act::kTake : Act::kReject;
      if (!gemma_key_byte(b)) return Act::kReject;
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
      if (nd.gemma ? !gemma_key_byte(b) : (b < 0x20 || b == '\\')) return Act::kReject;
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

bool gemma_key_byte(uint8_t b) {
  return b != ' ' && b != '\n' && b != '\t' && b != '\r' && b != 0 && !std::strchr(":,{}[]<|>", b) && b < 0xF5;
}

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
