#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace g4 {

std::vector<KvLayerSpec> kv_layer_specs(const ModelSpec& spec, const KvCacheOptions& o) {
  if (o.ctx_size <= 0) throw Error("context size must be positive, got " + std::to_string(o.ctx_size));
  if (o.n_seq <= 0) throw Error("the number of sequences must be positive, got " + std::to_string(o.n_seq));
  if (o.slack < 0) throw Error("KV ring slack must be >= 0, got " + std::to_string(o.slack));
  std::vector<KvLayerSpec> out;
  for (const LayerSpec& L : spec.layers) {
    KvLayerSpec k;
    const int64_t ring_cap = int64_t(L.window) + o.slack;
    k.ring = L.window > 0 && ring_cap < o.ctx_size;
    k.capacity = k.ring ? ring_cap : o.ctx_size;
    k.n_kv_heads = L.n_kv_heads;
    k.head_dim = L.head_dim;
    k.k_type = o.k_type;
    k.v_type = o.v_type;
    k.k_from_v = o.derive_k && L.k_eq_v && !k.ring;
    k.rope = RopeSpec{L.rope_theta, L.rope_pairs};
    out.push_back(k);
  }
  return out;
}

int64_t kv_cache_bytes(const ModelSpec& spec, const KvCacheOptions& o) {
  uint64_t per_seq = 0;
  for (const KvLayerSpec& k : kv_layer_specs(spec, o))
    per_seq = checked_add(per_seq, checked_mul(uint64_t(k.capacity), uint64_t(kv_bytes_per_position(k)), "KV cache size"),
                          "KV cache size");
  return int64_t(checked_mul(per_seq, uint64_t(o.n_seq), "KV cache size"));
}

KvCache::KvCache(const Model& model, const KvCacheOptions& o) : specs_(kv_layer_specs(model.spec(), o)), opt_(o) {
  for (const LayerSpec& L : model.spec().layers) windows_.push_back(L.window);
  for (size_t l = 0; l < specs_.size(); ++l)
    if (specs_[l].k_from_v) specs_[l].k_norm = model.layer(int(l)).k_norm.get();
  Backend& be = model.backend();
  seqs_.resize(size_t(o.n_seq));
  for (Seq& s : seqs_)
    for (const KvLayerSpec& k : specs_) s.layers.push_back(be.new_kv_layer(k));
}

KvCache::Seq& KvCache::seq(int id) {
  return const_cast<Seq&>(static_cast<const KvCache&>(*this).seq(id));
}

const KvCache::Seq& KvCache::seq(int id) const {
  if (id < 0 || id >= n_seq())
    throw Error("sequence id " + std::to_string(id) + " is out of range (the cache holds " + std::to_string(n_seq()) +
                " sequences)");
  return seqs_[size_t(id)];
}

int64_t KvCache::common_prefix(int id, const std::vector<int32_t>& tokens) const {
  const std::vector<int32_t>& held = seq(id).tokens;
  const size_t n = std::min(held.size(), tokens.size());
  size_t i = 0;
  while (i < n && held[i] == tokens[i]) ++i;
  return int64_t(i);
}

bool KvCache::can_truncate_in_place(int id, int64_t n) const {
  const Seq& s = seq(id);
  if (n < 0 || n > int64_t(s.tokens.size())) return false;
  for (size_t l = 0; l < specs_.size(); ++l) {
    if (!specs_[l].ring) continue;
    const int64_t needed_lo = std::max<int64_t>(0, n - windows_[l] + 1);
    const int64_t held_lo = std::max<int64_t>(0, s.high_water - specs_[l].capacity);
    if (needed_lo < held_lo) return false;
  }
  return true;
}

void KvCache::truncate_in_place(int id, int64_t n) {
  Seq& s = seq(id);
  if (n < 0 || n > int64_t(s.tokens.size()))
    throw Error("cannot roll sequence " + std::to_string(id) + " back to " + std::to_string(n) + " positions: it holds " +
                std::to_string(s.tokens.size()));
  G4_CHECK(can_truncate_in_place(id, n), "truncate_in_place beyond the ring's slack");
  s.tokens.resize(size_t(n));
}

void KvCache::clear(int id) {
  Seq& s = seq(id);
  s.tokens.clear();
  s.high_water = 0;
}

KvCache::Recorded& KvCache::batch_step(const std::vector<int>& ids) {
  for (int id : ids) seq(id);  // (throws for an id out of range)
  ++batch_clock_;
  for (BatchStep& b : batch_steps_)
    if (b.ids == ids) {
      b.used = batch_clock_;
      return b.step;
    }
  if (batch_steps_.size() == kMaxBatchSteps) {  // the least recently used set makes room
    auto lru = std::min_element(batch_steps_.begin(), batch_steps_.end(),
                                [](const BatchStep& a, const BatchStep& b) { return a.used < b.used; });
    batch_steps_.erase(lru);
  }
  batch_steps_.push_back(BatchStep{ids, batch_clock_, {}});
  return batch_steps_.back().step;
}

void KvCache::note_written(int id, const std::vector<int32_t>& tokens) {
  Seq& s = seq(id);
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  s.high_water = std::max(s.high_water, int64_t(s.tokens.size()));
}

}  // namespace g4
