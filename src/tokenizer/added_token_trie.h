// Byte trie over the added/special token strings. find_longest() gives, at one text position, the longest
// token that starts there; scanning positions left to right gives HF's leftmost-longest split
// (AddedVocabulary uses Aho-Corasick with LeftmostLongest, which yields exactly that).
#pragma once

#include <bitset>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace g4 {

class AddedTokenTrie {
 public:
  void clear();
  void add(std::string_view piece, int32_t id);
  // Returns the id of the longest token that is a prefix of s (and its length in *len), or -1.
  int32_t find_longest(std::string_view s, size_t* len) const;
  bool may_start(uint8_t byte) const { return first_bytes_[byte]; }
  bool empty() const { return terminal_.size() <= 1; }

 private:
  // Node 0 is the root; children_ maps (node << 8 | byte) -> child node.
  std::unordered_map<uint64_t, int32_t> children_;
  std::vector<int32_t> terminal_{-1};  // [nodes]: token id ending at this node, or -1
  std::bitset<256> first_bytes_;
};

}  // namespace g4
