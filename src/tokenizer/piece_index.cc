// See piece_index.h. The hash is a 64-bit multiply-mix over 8-byte words (pieces are short, most under 16 bytes).
#include "tokenizer/piece_index.h"

#include <algorithm>
#include <cstring>

namespace g4 {

uint64_t PieceIndex::hash(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xFF51AFD7ED558CCDULL);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 32;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 29;
  return h;
}

void PieceIndex::build(const std::vector<std::string>* pieces) {
  pieces_ = pieces;
  size_t cap = 16;
  while (cap < pieces->size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  size_ = 0;
}

bool PieceIndex::insert(int32_t id) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const std::string& p = (*pieces_)[size_t(id)];
  const uint64_t h = hash(p);
  const uint32_t tag = tag_of(h);
  for (size_t i = size_t(h) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.tag == 0) {
      s = Slot{tag, id};
      ++size_;
      return true;
    }
    if (s.tag == tag && (*pieces_)[size_t(s.id)] == p) return false;
  }
}

void PieceIndex::erase(std::string_view piece) {
  const uint64_t h = hash(piece);
  const uint32_t tag = tag_of(h);
  size_t i = size_t(h) & mask_;
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].tag == 0) return;
    if (slots_[i].tag == tag && (*pieces_)[size_t(slots_[i].id)] == piece) break;
  }
  // Backward-shift deletion keeps probe chains intact without tombstones.
  slots_[i] = Slot{0, -1};
  --size_;
  for (size_t j = (i + 1) & mask_; slots_[j].tag != 0; j = (j + 1) & mask_) {
    const Slot s = slots_[j];
    slots_[j] = Slot{0, -1};
    --size_;
    insert(s.id);
  }
}

int32_t PieceIndex::find_hashed(std::string_view piece, uint64_t h) const {
  if (slots_.empty()) return -1;
  const uint32_t tag = tag_of(h);
  for (size_t i = size_t(h) & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.tag == 0) return -1;
    if (s.tag == tag && (*pieces_)[size_t(s.id)] == piece) return s.id;
  }
}

void PieceIndex::find_batch(const std::string_view* pieces, size_t n, int32_t* ids) const {
  constexpr size_t kBlock = 16;
  uint64_t h[kBlock];
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t m = std::min(kBlock, n - b);
    for (size_t k = 0; k < m; ++k) {
      h[k] = hash(pieces[b + k]);
      __builtin_prefetch(&slots_[size_t(h[k]) & mask_]);
    }
    for (size_t k = 0; k < m; ++k) ids[b + k] = find_hashed(pieces[b + k], h[k]);
  }
}

void PieceIndex::grow() {
  std::vector<Slot> old = std::move(slots_);
  size_t cap = old.size() * 2;
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.tag != 0) insert(s.id);
}

}  // namespace g4
