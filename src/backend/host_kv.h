// KV cache storage in host memory, shared by the ref and cpu backends: allocation, writing f32 rows in
// the cache's element type (f32, bf16, or int8 with one f32 scale per position and KV head), and reading
// one cached key or value row back as f32.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "base/error.h"

namespace g4::host_kv {

// A zero-filled cache layer in host memory. k_norm: the layer's k_norm weight as head_dim floats, needed
// (and kept pointed to) when spec.k_from_v.
KvLayer make(const KvLayerSpec& spec, const float* k_norm = nullptr);

// Writes k, v [T, Hkv, D] (f32) of positions p0 .. p0+T-1; a ring keeps only the last `capacity`.
void append(KvLayer& c, const Tensor& k, const Tensor& v, int64_t p0);
// Backend::kv_append for the host backends: each sequence's rows of k, v into its cache.
void append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v);

// Backend::attention for the host backends, one sequence at a time: checks the batch, then calls
// attend(q, k, v, cache, p0, out) with each sequence's rows (views, no copy) of q, k, v and out.
template <class Attend>
void each_sequence(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs, Tensor& out,
                   Attend attend) {
  G4_CHECK(out.numel() == q.numel(), "attention output shape");
  check_seq_rows(seqs, q.dim(0), true);
  for (const SeqRows& s : seqs) {
    Tensor o = out.rows(s.row0, s.n);
    attend(q.rows(s.row0, s.n), k.rows(s.row0, s.n), v.rows(s.row0, s.n), *s.cache, s.p0, o);
  }
}

// The cached key (value) of position pk, KV head g, as D floats: a pointer into the cache for f32,
// else the row decoded (for a derived key: the value times k_norm, rotated to position pk) into buf.
const float* key(const KvLayer& c, int64_t pk, int64_t g, float* buf);
const float* value(const KvLayer& c, int64_t pk, int64_t g, float* buf);
// Asks the CPU's caches for what key() (value()) of position pk, head g will read: a hint, never a change to
// a result. Rows of one head lie H x D elements apart, so each is a new page to the hardware prefetchers.
void prefetch_key(const KvLayer& c, int64_t pk, int64_t g);
void prefetch_value(const KvLayer& c, int64_t pk, int64_t g);

// The key (value) of a position of the current chunk, whose f32 row is `fresh` ([D] floats of its KV head),
// as attention must see it: rounded through the cache's storage exactly as the cache would hold it (and, for
// a derived key, derived from the rounded value of `fresh_v`), so that a result never depends on how a
// prompt was cut into chunks. A pointer to `fresh` for an f32 cache with stored keys; else written to buf.
const float* fresh_key(const KvLayer& c, const float* fresh_k, const float* fresh_v, int64_t pk, float* buf);
const float* fresh_value(const KvLayer& c, const float* fresh_v, float* buf);

inline int64_t slot_of(const KvLayer& c, int64_t pk) { return c.ring ? pk % c.capacity : pk; }

}  // namespace g4::host_kv
