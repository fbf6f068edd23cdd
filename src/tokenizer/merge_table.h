// Open-addressing hash table (left id, right id) -> (rank, merged id) for BPE merges. Gemma has ~515k merges
// and every BPE step probes it, so it is a flat power-of-two array with linear probing instead of
// std::unordered_map's node-per-entry layout. Filled once at load time, then read-only.
#pragma once

#include <cstdint>
#include <vector>

namespace g4 {

class MergeTable {
 public:
  struct Entry {
    uint64_t key;  // (left << 32) | right; kEmpty when free
    uint32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{kEmpty, 0, 0});
    mask_ = cap - 1;
    size_ = 0;
  }

  // Returns false when the pair is already present (the first, lowest rank, wins as in HF).
  bool insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t key = make_key(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = Entry{key, rank, merged};
        ++size_;
        return true;
      }
      if (slots_[i].key == key) return false;
    }
  }

  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = make_key(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  static uint64_t make_key(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  void grow() {
    std::vector<Entry> old = std::move(slots_);
    reserve(old.empty() ? 8 : old.size());
    for (const Entry& e : old)
      if (e.key != kEmpty) insert(int32_t(e.key >> 32), int32_t(uint32_t(e.key)), e.rank, e.merged);
  }

  std::vector<Entry> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace g4
