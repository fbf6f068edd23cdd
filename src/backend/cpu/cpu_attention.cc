// Attention on the CPU: one task per (block of query tokens, KV head). The block's tokens and the query
// heads of one GQA group share the task, so each cached key and value row is read (and, for a bf16 or int8
// cache, decoded) once for all of them. Semantics are RefBackend::attention's: keys before p0 come from the cache (ring slot
// p % capacity for sliding layers), the chunk's own keys from k/v; softmax in f32 with the max
// subtracted; scale 1.0 (Gemma 4 folds the query scale into q_norm).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/host_kv.h"
#include "base/error.h"

namespace g4 {

void CpuBackend::attend(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0,
                        int window, Tensor& out) {
  const int64_t T = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k.dim(1);
  G4_CHECK(k.dim(0) == T && v.dim(0) == T && k.dim(2) == D && v.dim(2) == D && v.dim(1) == Hkv, "attention shapes");
  G4_CHECK(Hq % Hkv == 0, "attention GQA");
  G4_CHECK(out.numel() == q.numel(), "attention output shape");
  G4_CHECK(cache.k.dim(1) == Hkv && cache.k.dim(2) == D, "attention cache shape");
  if (!cache.ring) G4_CHECK(p0 <= cache.capacity, "flat cache overflow");
  if (cache.ring && p0 > 0 && window > 0) G4_CHECK(std::min<int64_t>(p0, window - 1) <= cache.capacity, "ring cache smaller than the window");
  if (cache.ring && window <= 0) G4_CHECK(p0 <= cache.capacity, "ring cache without a window");
  const int64_t group = Hq / Hkv;
  const float* qd = static_cast<const float*>(q.data);
  const float* kd = static_cast<const float*>(k.data);
  const float* vd = static_cast<const float*>(v.data);
  float* od = static_cast<float*>(out.data);
  const cpu::KernelTable& K = *k_;
  // The chunk's own keys and values as the cache will hold them (host_kv::fresh_key: rounded to the cache
  // type, keys derived from values where the cache does that), once per row: every later query of the chunk
  // reads them (a prefill of 512 tokens spent a quarter of its time re-rounding them per query).
  // (The buffers are this thread's; the pool's workers write through the pointers.)
  thread_local std::vector<float> fresh_k, fresh_v;
  fresh_k.resize(size_t(T * Hkv * D));
  fresh_v.resize(size_t(T * Hkv * D));
  float* const fk = fresh_k.data();
  float* const fv = fresh_v.data();
  const auto round_fresh = [&](int64_t row) {
    const int64_t at = row * D;
    const float* kr = host_kv::fresh_key(cache, kd + at, vd + at, p0 + row / Hkv, fk + at);
    if (kr != fk + at) std::copy(kr, kr + D, fk + at);
    const float* vr = host_kv::fresh_value(cache, vd + at, fv + at);
    if (vr != fv + at) std::copy(vr, vr + D, fv + at);
  };
  if (T == 1) {  // a decode step: a few rows, not worth waking the pool for
    for (int64_t row = 0; row < Hkv; ++row) round_fresh(row);
  } else {
    pool_.run(T * Hkv, round_fresh);
  }
  // One task per (block of up to kQueryBlock query tokens, KV head): its queries (tokens x the group's heads)
  // meet the block's keys kKeyChunk at a time (decoded once for all of them) in the table's block kernels,
  // each (query, key) score and each output sum over keys computed as for a query alone (KernelTable), so a
  // position's result does not depend on the other tokens of its chunk. A query's scores outside its own
  // keys (the block's later tokens' keys, or before its window) are set to 0 after its softmax: they add
  // exact zeros to its output.
  constexpr int64_t kQueryBlock = 4, kKeyChunk = 64;
  const int64_t n_blocks = (T + kQueryBlock - 1) / kQueryBlock;
  pool_.run(n_blocks * Hkv, [&](int64_t task) {
    const int64_t t0 = task / Hkv * kQueryBlock, t1 = std::min(T, t0 + kQueryBlock), g = task % Hkv;
    // Query t sees keys [lo(t), p0 + t]; the block's keys are [klo, khi).
    auto lo_of = [&](int64_t t) { return window > 0 ? std::max<int64_t>(0, p0 + t - window + 1) : int64_t(0); };
    const int64_t klo = lo_of(t0), khi = p0 + t1, nk = khi - klo, nq = (t1 - t0) * group;
    thread_local std::vector<float> scores, kbuf;
    thread_local std::vector<const float*> qp, kp;
    thread_local std::vector<float*> op;
    scores.resize(size_t(nq * nk));
    kbuf.resize(size_t(kKeyChunk * D));
    qp.resize(size_t(nq));
    op.resize(size_t(nq));
    kp.resize(size_t(kKeyChunk));
    for (int64_t i = 0; i < nq; ++i) {  // row i: token t0 + i / group, head i % group of the group
      const int64_t at = ((t0 + i / group) * Hq + g * group + i % group) * D;
      qp[size_t(i)] = qd + at;
      op[size_t(i)] = od + at;
    }
    // Rows pk in [k0, k1) of the chunk's own keys or values (rounded above), or of the cache (decoded into
    // kbuf). The next chunk's cached rows are asked for first (host_kv::prefetch_key), to arrive while this
    // one is computed.
    auto gather = [&](bool values, int64_t k0, int64_t k1) {
      for (int64_t pk = k1; pk < std::min({p0, khi, k1 + kKeyChunk}); ++pk) {
        if (values) host_kv::prefetch_value(cache, pk, g);
        else host_kv::prefetch_key(cache, pk, g);
      }
      for (int64_t pk = k0; pk < k1; ++pk) {
        float* tmp = kbuf.data() + (pk - k0) * D;
        if (pk >= p0) kp[size_t(pk - k0)] = (values ? fv : fk) + ((pk - p0) * Hkv + g) * D;
        else kp[size_t(pk - k0)] = values ? host_kv::value(cache, pk, g, tmp) : host_kv::key(cache, pk, g, tmp);
      }
    };
    for (int64_t k0 = klo; k0 < khi; k0 += kKeyChunk) {
      const int64_t k1 = std::min(khi, k0 + kKeyChunk);
      gather(false, k0, k1);
      float* out = scores.data() + (k0 - klo);
      K.attn_scores(qp.data(), nq, kp.data(), k1 - k0, D, out, nk);
    }
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t t = t0 + i / group, a = lo_of(t) - klo, b = p0 + t + 1 - klo;  // its keys [a, b)
      float* s = scores.data() + i * nk;
      const float mx = *std::max_element(s + a, s + b);
      float sum = 0;
      for (int64_t j = a; j < b; ++j) sum += (s[j] = std::exp(s[j] - mx));
      const float inv = 1.0f / sum;
      for (int64_t j = a; j < b; ++j) s[j] *= inv;
      std::fill(s, s + a, 0.0f);
      std::fill(s + b, s + nk, 0.0f);
      std::fill(op[size_t(i)], op[size_t(i)] + D, 0.0f);
    }
    for (int64_t k0 = klo; k0 < khi; k0 += kKeyChunk) {
      const int64_t k1 = std::min(khi, k0 + kKeyChunk);
      gather(true, k0, k1);
      K.attn_values(scores.data() + (k0 - klo), nk, nq, kp.data(), k1 - k0, D, op.data());
    }
  });
}

}  // namespace g4
