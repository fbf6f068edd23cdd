// Flat open-addressing index piece string -> token id over a vocabulary the caller owns (the pieces vector must
// outlive the index and not move its strings). Loading a Gemma tokenizer does ~1.5M lookups (three per merge),
// so slots are 8 bytes (hash tag + id) in one array, and find_batch() prefetches slots to overlap cache misses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace g4 {

class PieceIndex {
 public:
  void build(const std::vector<std::string>* pieces);  // skips empty pieces
  // Returns false if the piece is already present (the existing id is kept).
  bool insert(int32_t id);
  void erase(std::string_view piece);
  int32_t find(std::string_view piece) const { return find_hashed(piece, hash(piece)); }
  // Looks up n pieces at once (ids[i] = -1 when absent); faster than n find() calls on a cold table.
  void find_batch(const std::string_view* pieces, size_t n, int32_t* ids) const;

  static uint64_t hash(std::string_view s);

 private:
  struct Slot {
    uint32_t tag;  // high hash bits; 0 marks an empty slot
    int32_t id;
  };
  static uint32_t tag_of(uint64_t h) { return uint32_t(h >> 32) | 1u; }
  int32_t find_hashed(std::string_view piece, uint64_t h) const;
  void grow();

  const std::vector<std::string>* pieces_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace g4
