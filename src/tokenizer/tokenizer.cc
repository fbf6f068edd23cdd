// Tokenizer: added-token split, normalization, word pre-split, BPE by merge rank with byte fallback, decode.
// Matches HF tokenizers' BPE model (Word::merge_all: a min-heap of (rank, position), stale entries rejected by
// re-checking the pair's merged id) so ties and overlapping merges resolve identically.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/added_token_trie.h"
#include "tokenizer/merge_table.h"
#include "tokenizer/piece_index.h"
#include "tokenizer/utf8.h"

namespace g4 {

namespace {

constexpr size_t kCacheMaxWordBytes = 96;
constexpr size_t kCacheMaxEntries = 200000;
constexpr uint32_t kMetaspaceCp = 0x2581;

int parse_byte_piece(std::string_view p) {
  // HF ByteFallback's test: exactly "<0xHH>".
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool is_atomic(TokenType t) { return t == TokenType::kControl || t == TokenType::kUserDefined; }

struct Sym {
  int32_t id, prev, next;
  bool alive;
};
struct Cand {
  uint32_t rank;
  int32_t pos, merged;
  bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

struct Tokenizer::Impl {
  TokenizerModel m;
  PieceIndex piece_to_id;
  MergeTable merges;
  std::array<int32_t, 256> byte_ids;
  std::array<int32_t, 128> ascii_ids;
  std::vector<int16_t> byte_value;  // [vocab]
  AddedTokenTrie trie;
  // Word pre-split (a speed device, never a change of result): a boundary before '▁' is safe when no piece
  // contains the preceding character followed by '▁', since then no merge can ever span it.
  bool split_words = true;
  std::vector<uint32_t> unsafe_before_metaspace;  // sorted code points
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  void build();
  void rebuild_trie();
  void encode_span(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const {
    if (id < 0 || size_t(id) >= m.pieces.size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                  std::to_string(m.pieces.size()) + ")");
  }
};

void Tokenizer::Impl::build() {
  const size_t n = m.pieces.size();
  if (n == 0) throw Error("tokenizer: empty vocabulary");
  if (m.types.size() != n) throw Error("tokenizer: token types do not match the vocabulary size");
  piece_to_id.build(&m.pieces);
  byte_value.assign(n, -1);
  byte_ids.fill(-1);
  ascii_ids.fill(-1);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = m.pieces[i];
    if (p.empty()) continue;
    if (!piece_to_id.insert(int32_t(i)))
      throw Error("tokenizer: piece '" + p + "' appears twice (ids " + std::to_string(piece_to_id.find(p)) + " and " +
                  std::to_string(i) + ")");
    const int b = parse_byte_piece(p);
    if (b >= 0) {
      byte_value[i] = int16_t(b);
      if (byte_ids[size_t(b)] < 0) byte_ids[size_t(b)] = int32_t(i);
    }
    if (p.size() == 1 && uint8_t(p[0]) < 128) ascii_ids[uint8_t(p[0])] = int32_t(i);
  }
  merges.reserve(m.merges.size());
  // Resolve merges in blocks so the ~1.5M index probes overlap their cache misses (find_batch prefetches).
  constexpr size_t kBlock = 256;
  std::vector<std::string> joined(kBlock);
  std::vector<std::string_view> keys(3 * kBlock);
  std::vector<int32_t> ids(3 * kBlock);
  for (size_t r0 = 0; r0 < m.merges.size(); r0 += kBlock) {
    const size_t cnt = std::min(kBlock, m.merges.size() - r0);
    for (size_t k = 0; k < cnt; ++k) {
      const auto& [a, b] = m.merges[r0 + k];
      joined[k].assign(a).append(b);
      keys[3 * k] = a;
      keys[3 * k + 1] = b;
      keys[3 * k + 2] = joined[k];
    }
    piece_to_id.find_batch(keys.data(), 3 * cnt, ids.data());
    for (size_t k = 0; k < cnt; ++k) {
      const size_t r = r0 + k;
      const int32_t ia = ids[3 * k], ib = ids[3 * k + 1], im = ids[3 * k + 2];
      const auto& [a, b] = m.merges[r];
      if (ia < 0 || ib < 0)
        throw Error("tokenizer: merge " + std::to_string(r) + " ('" + a + "' '" + b + "') uses a piece not in the vocabulary");
      if (im < 0)
        throw Error("tokenizer: merge " + std::to_string(r) + " produces '" + a + b + "', which is not in the vocabulary");
      if (byte_value[size_t(ia)] >= 0 || byte_value[size_t(ib)] >= 0) split_words = false;
      merges.insert(ia, ib, uint32_t(r), im);
    }
  }
  m.merges.clear();
  m.merges.shrink_to_fit();
  // Characters c with "c▁" inside some piece (c != '▁'): a word boundary between them is not safe.
  for (const std::string& p : m.pieces) {
    for (size_t k = p.find(utf8::kMetaspace, 1); k != std::string::npos; k = p.find(utf8::kMetaspace, k + 1)) {
      size_t s = k - 1;
      while (s > 0 && (uint8_t(p[s]) & 0xC0) == 0x80) --s;
      uint32_t cp;
      int len;
      if (utf8::next(reinterpret_cast<const uint8_t*>(p.data()) + s, k - s, &cp, &len) != utf8::Next::kOk)
        continue;
      if (cp != kMetaspaceCp) unsafe_before_metaspace.push_back(cp);
    }
  }
  std::sort(unsafe_before_metaspace.begin(), unsafe_before_metaspace.end());
  rebuild_trie();
}

void Tokenizer::Impl::rebuild_trie() {
  trie.clear();
  for (size_t i = 0; i < m.pieces.size(); ++i)
    if (is_atomic(m.types[i])) trie.add(m.pieces[i], int32_t(i));
  std::lock_guard<std::mutex> lock(cache_mu);
  cache.clear();
}

void Tokenizer::Impl::bpe(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<Sym> syms;
  thread_local std::vector<Cand> heap_buf;
  syms.clear();
  const auto* p = reinterpret_cast<const uint8_t*>(word.data());
  auto push_sym = [&](int32_t id) {
    const int32_t idx = int32_t(syms.size());
    syms.push_back(Sym{id, idx - 1, -1, true});
    if (idx > 0) syms[size_t(idx) - 1].next = idx;
  };
  for (size_t i = 0; i < word.size();) {
    const int len = utf8::char_len(word, i);
    int32_t id = -1;
    if (p[i] < 128) {
      id = ascii_ids[p[i]];
    } else {
      id = piece_to_id.find(word.substr(i, size_t(len)));
    }
    if (id >= 0) {
      push_sym(id);
    } else {
      bool bytes_ok = m.byte_fallback;
      for (int k = 0; k < len && bytes_ok; ++k) bytes_ok = byte_ids[p[i + size_t(k)]] >= 0;
      if (bytes_ok) {
        for (int k = 0; k < len; ++k) push_sym(byte_ids[p[i + size_t(k)]]);
      } else if (m.unk_id >= 0) {
        // fuse_unk: consecutive unknowns become one <unk>.
        if (syms.empty() || syms.back().id != m.unk_id) push_sym(m.unk_id);
      } else {
        throw Error("tokenizer: a character has no token, no byte fallback and no <unk>");
      }
    }
    i += size_t(len);
  }
  // Min-heap on (rank, position) in a reused buffer.
  std::vector<Cand>& heap = heap_buf;
  heap.clear();
  const auto later = [](const Cand& a, const Cand& b) { return a > b; };
  auto offer = [&](int32_t pos) {
    const Sym& s = syms[size_t(pos)];
    if (s.next < 0) return;
    if (const MergeTable::Entry* e = merges.find(s.id, syms[size_t(s.next)].id)) {
      heap.push_back(Cand{e->rank, pos, e->merged});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < int32_t(syms.size()); ++i) offer(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Cand c = heap.back();
    heap.pop_back();
    Sym& s = syms[size_t(c.pos)];
    if (!s.alive || s.next < 0) continue;
    const MergeTable::Entry* e = merges.find(s.id, syms[size_t(s.next)].id);
    if (!e || e->merged != c.merged) continue;
    Sym& r = syms[size_t(s.next)];
    s.id = c.merged;
    r.alive = false;
    s.next = r.next;
    if (s.next >= 0) syms[size_t(s.next)].prev = c.pos;
    if (s.prev >= 0) offer(s.prev);
    offer(c.pos);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[size_t(i)].next) out.push_back(syms[size_t(i)].id);
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kCacheMaxWordBytes) return bpe(word, out);
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(std::string(word));
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  bpe(word, out);
  std::lock_guard<std::mutex> lock(cache_mu);
  if (cache.size() < kCacheMaxEntries) cache.emplace(std::string(word), std::vector<int32_t>(out.begin() + ptrdiff_t(start), out.end()));
}

void Tokenizer::Impl::encode_span(std::string_view raw, std::vector<int32_t>& out) const {
  if (raw.empty()) return;
  thread_local std::string norm;
  norm.clear();
  if (m.prepend_metaspace) norm += utf8::kMetaspace;
  for (char c : raw) {
    if (c == ' ' && m.space_to_metaspace) norm += utf8::kMetaspace;
    else norm += c;
  }
  if (!split_words) return bpe(norm, out);
  const std::string_view s = norm;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t word_start = 0;
  uint32_t prev_cp = kMetaspaceCp;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int len;
    if (utf8::next(p + i, s.size() - i, &cp, &len) != utf8::Next::kOk) {
      cp = 0xFFFFFFFF;  // an invalid byte: never equal to '▁', never in the unsafe set
      len = 1;
    }
    if (cp == kMetaspaceCp && i > word_start && prev_cp != kMetaspaceCp &&
        !std::binary_search(unsafe_before_metaspace.begin(), unsafe_before_metaspace.end(), prev_cp)) {
      encode_word(s.substr(word_start, i - word_start), out);
      word_start = i;
    }
    prev_cp = cp;
    i += size_t(len);
  }
  encode_word(s.substr(word_start), out);
}

Tokenizer::Tokenizer(TokenizerModel model) : impl_(std::make_unique<Impl>()) {
  impl_->m = std::move(model);
  impl_->build();
}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_bos) {
    if (im.m.bos_id < 0) throw Error("tokenizer has no <bos> token");
    out.push_back(im.m.bos_id);
  }
  size_t seg = 0;
  for (size_t i = 0; i < text.size();) {
    if (im.trie.may_start(uint8_t(text[i]))) {
      size_t len = 0;
      const int32_t id = im.trie.find_longest(text.substr(i), &len);
      if (id >= 0) {
        im.encode_span(text.substr(seg, i - seg), out);
        out.push_back(id);
        i += len;
        seg = i;
        continue;
      }
    }
    ++i;
  }
  im.encode_span(text.substr(seg), out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string out, bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    // HF ByteFallback: a run of byte tokens is kept if it is valid UTF-8 as a whole, else one U+FFFD per byte.
    if (utf8::is_valid(bytes)) out += bytes;
    else for (size_t k = 0; k < bytes.size(); ++k) out += utf8::kReplacement;
    bytes.clear();
  };
  for (int32_t id : ids) {
    im.check_id(id);
    if (skip_special && im.m.types[size_t(id)] == TokenType::kControl) continue;
    const int b = im.byte_value[size_t(id)];
    if (b >= 0) {
      bytes += char(b);
      continue;
    }
    flush();
    out += display_piece(id);
  }
  flush();
  return out;
}

std::string Tokenizer::display_piece(int32_t id) const {
  impl_->check_id(id);
  const std::string& p = impl_->m.pieces[size_t(id)];
  std::string s;
  s.reserve(p.size());
  for (size_t k = 0; k < p.size();) {
    if (p.compare(k, 3, utf8::kMetaspace) == 0) {
      s += ' ';
      k += 3;
    } else {
      s += p[k++];
    }
  }
  return s;
}

void Tokenizer::set_special_tokens(const std::vector<std::pair<int32_t, std::string>>& tokens, bool special) {
  for (const auto& [id, piece] : tokens) set_special_token_impl(id, piece, special, false);
  impl_->rebuild_trie();
}

void Tokenizer::set_special_token(int32_t id, std::string piece, bool special) {
  set_special_token_impl(id, std::move(piece), special, true);
}

void Tokenizer::set_special_token_impl(int32_t id, std::string piece, bool special, bool rebuild) {
  Impl& im = *impl_;
  im.check_id(id);
  if (piece.empty()) throw Error("set_special_token: empty piece for id " + std::to_string(id));
  const int32_t existing = im.piece_to_id.find(piece);
  if (existing >= 0 && existing != id)
    throw Error("set_special_token: '" + piece + "' is already token " + std::to_string(existing));
  if (im.piece_to_id.find(im.m.pieces[size_t(id)]) == id) im.piece_to_id.erase(im.m.pieces[size_t(id)]);
  im.m.pieces[size_t(id)] = std::move(piece);
  im.m.types[size_t(id)] = special ? TokenType::kControl : TokenType::kUserDefined;
  im.byte_value[size_t(id)] = -1;
  im.piece_to_id.insert(id);
  if (rebuild) im.rebuild_trie();
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->m.pieces.size()); }
const std::string& Tokenizer::piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->m.pieces[size_t(id)];
}
TokenType Tokenizer::type(int32_t id) const {
  impl_->check_id(id);
  return impl_->m.types[size_t(id)];
}
std::optional<int32_t> Tokenizer::find(std::string_view piece) const {
  const int32_t id = impl_->piece_to_id.find(piece);
  if (id < 0) return std::nullopt;
  return id;
}
int32_t Tokenizer::bos_id() const { return impl_->m.bos_id; }
int Tokenizer::byte_value(int32_t id) const {
  impl_->check_id(id);
  return impl_->byte_value[size_t(id)];
}

}  // namespace g4
