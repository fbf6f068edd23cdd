// See added_token_trie.h.
#include "tokenizer/added_token_trie.h"

namespace g4 {

void AddedTokenTrie::clear() {
  children_.clear();
  terminal_.assign(1, -1);
  first_bytes_.reset();
}

void AddedTokenTrie::add(std::string_view piece, int32_t id) {
  if (piece.empty()) return;
  first_bytes_.set(uint8_t(piece[0]));
  int32_t node = 0;
  for (char c : piece) {
    const uint64_t key = (uint64_t(node) << 8) | uint8_t(c);
    auto it = children_.find(key);
    if (it == children_.end()) {
      const int32_t child = int32_t(terminal_.size());
      terminal_.push_back(-1);
      children_.emplace(key, child);
      node = child;
    } else {
      node = it->second;
    }
  }
  terminal_[size_t(node)] = id;
}

int32_t AddedTokenTrie::find_longest(std::string_view s, size_t* len) const {
  int32_t node = 0, best = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    auto it = children_.find((uint64_t(node) << 8) | uint8_t(s[i]));
    if (it == children_.end()) break;
    node = it->second;
    if (terminal_[size_t(node)] >= 0) {
      best = terminal_[size_t(node)];
      *len = i + 1;
    }
  }
  return best;
}

}  // namespace g4
