#include "engine/token_mask.h"

#include <algorithm>

#include "base/error.h"

namespace g4 {

namespace {

// Complete, valid UTF-8 (the bytes of whole characters).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = uint8_t(s[i]);
    int n = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80) n = 0;
    else if (b >= 0xC2 && b <= 0xDF) n = 1;
    else if (b == 0xE0) n = 2, lo = 0xA0;
    else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) n = 2;
    else if (b == 0xED) n = 2, hi = 0x9F;
    else if (b == 0xF0) n = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) n = 3;
    else if (b == 0xF4) n = 3, hi = 0x8F;
    else return false;
    ++i;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= s.size() || uint8_t(s[i]) < lo || uint8_t(s[i]) > hi) return false;
      lo = 0x80;
      hi = 0xBF;
    }
  }
  return true;
}

}  // namespace

TokenVocab::TokenVocab(const std::vector<Token>& tokens, const std::vector<std::pair<std::string, uint8_t>>& symbols) {
  const size_t V = tokens.size();
  text_.resize(V);
  usable_.assign(V, 0);
  plain_.assign(V, 0);
  chars_.assign(V, 0);
  for (size_t id = 0; id < V; ++id) {
    const Token& t = tokens[id];
    if (t.special) {
      for (const auto& [piece, sym] : symbols)
        if (t.text == piece) {
          text_[id] = std::string(1, char(sym));
          usable_[id] = 1;
          symbols_.push_back(sym);
        }
      continue;
    }
    if (t.text.empty()) continue;
    // Raw bytes that are never UTF-8 would read as the grammar's symbols: such byte tokens stay unusable.
    bool symbol_like = false;
    for (char c : t.text) symbol_like |= uint8_t(c) >= 0xF5;
    if (symbol_like) continue;
    text_[id] = t.text;
    usable_[id] = 1;
    if (valid_utf8(t.text)) {
      bool json_plain = true, gemma_plain = true;
      for (char c : t.text) {
        const uint8_t b = uint8_t(c);
        if (b < 0x20 || b == '"' || b == '\\') json_plain = false;
        if (b == '<' || b == '|' || b == '>') gemma_plain = false;
      }
      plain_[id] = uint8_t((json_plain ? 1 : 0) | (gemma_plain ? 2 : 0));
      size_t chars = 0;
      for (char c : t.text) chars += (uint8_t(c) & 0xC0) != 0x80;
      chars_[id] = uint16_t(std::min<size_t>(chars, 65535));
    }
  }
  for (size_t id = 0; id < V; ++id) {
    if (!usable_[id]) continue;
    sorted_.push_back(int32_t(id));
    for (int d = 0; d < 2; ++d)
      if (!(plain_[id] & (1 << d))) not_plain_[d].push_back(int32_t(id));
  }
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
    return text_[size_t(a)] < text_[size_t(b)] || (text_[size_t(a)] == text_[size_t(b)] && a < b);
  });
}

bool TokenVocab::has_symbol(uint8_t sym) const {
  return std::find(symbols_.begin(), symbols_.end(), sym) != symbols_.end();
}

TokenConstraint::TokenConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const TokenVocab> vocab,
                                 std::vector<int32_t> end_ids)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), end_ids_(std::move(end_ids)), state_(*grammar_) {}

bool TokenConstraint::allows(int32_t id) const {
  if (std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end()) return state_.can_end();
  if (id < 0 || id >= vocab_->size() || !vocab_->usable(id)) return false;
  GrammarState s = state_;
  return s.feed(vocab_->bytes(id));
}

void TokenConstraint::accept(int32_t id) {
  if (std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end()) return;
  if (id < 0 || id >= vocab_->size() || !vocab_->usable(id) || !state_.feed(vocab_->bytes(id)))
    throw Error("constrained decoding: token " + std::to_string(id) + " does not continue the output");
}

void TokenConstraint::walk(size_t lo, size_t hi, size_t depth, const GrammarState& st, std::vector<uint8_t>& allowed,
                           size_t& count) const {
  const std::vector<int32_t>& ids = vocab_->sorted_;
  const std::vector<std::string>& text = vocab_->text_;
  size_t i = lo;
  // Tokens that end here were read whole and accepted.
  for (; i < hi && text[size_t(ids[i])].size() == depth; ++i) {
    allowed[size_t(ids[i])] = 1;
    ++count;
  }
  while (i < hi) {
    const uint8_t b = uint8_t(text[size_t(ids[i])][depth]);
    const size_t j = size_t(std::partition_point(ids.begin() + std::ptrdiff_t(i), ids.begin() + std::ptrdiff_t(hi),
                                                 [&](int32_t id) { return uint8_t(text[size_t(id)][depth]) <= b; }) -
                            ids.begin());
    GrammarState next = st;
    if (next.feed(b)) walk(i, j, depth + 1, next, allowed, count);
    i = j;
  }
}

size_t TokenConstraint::mask(std::vector<uint8_t>& allowed) const {
  const size_t V = size_t(vocab_->size());
  allowed.assign(V, 0);
  size_t count = 0;
  int64_t left = -1;
  if (const int fs = state_.in_free_string(&left)) {
    const uint8_t bit = uint8_t(1 << (fs - 1));
    for (size_t id = 0; id < V; ++id)
      if ((vocab_->plain_[id] & bit) && (left < 0 || vocab_->chars_[id] <= left)) {
        allowed[id] = 1;
        ++count;
      }
    for (int32_t id : vocab_->not_plain_[fs - 1]) {
      GrammarState s = state_;
      if (s.feed(vocab_->bytes(id))) {
        allowed[size_t(id)] = 1;
        ++count;
      }
    }
  } else {
    walk(0, vocab_->sorted_.size(), 0, state_, allowed, count);
  }
  const uint8_t end_ok = state_.can_end() ? 1 : 0;
  for (int32_t id : end_ids_)
    if (id >= 0 && size_t(id) < V && allowed[size_t(id)] != end_ok) {
      count = end_ok ? count + 1 : count - 1;
      allowed[size_t(id)] = end_ok;
    }
  return count;
}

}  // namespace g4
