// Attention on the CPU: one task per (query token, KV head). The query heads of one GQA group share the
// task, so each cached key and value row is read (and, for a bf16 or int8 cache, decoded) once for the
// whole group. Semantics are RefBackend::attention's: keys before p0 come from the cache (ring slot
// p % capacity for sliding layers), the chunk's own keys from k/v; softmax in f32 with the max
// subtracted; scale 1.0 (Gemma 4 folds the query scale into q_norm).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/host_kv.h"
#include "base/error.h"

namespace g4 {

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                           int window, Tensor& out) {
  host_kv::each_sequence(q, k, v, seqs, out,
                         [&](const Tensor& qs, const Tensor& ks, const Tensor& vs, const KvLayer& cache, int64_t p0,
                             Tensor& os) { attend(qs, ks, vs, cache, p0, window, os); });
}

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
  pool_.run(T * Hkv, [&](int64_t task) {
    const int64_t t = task / Hkv, g = task % Hkv;
    const int64_t pq = p0 + t;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pq - window + 1) : 0, n = pq - lo + 1;
    thread_local std::vector<float> scores, buf;
    scores.resize(size_t(group * n));
    buf.resize(size_t(D));
    // The chunk's own keys and values (rounded above), earlier ones from the cache.
    auto key = [&](int64_t pk) -> const float* {
      return pk >= p0 ? fk + ((pk - p0) * Hkv + g) * D : host_kv::key(cache, pk, g, buf.data());
    };
    auto val = [&](int64_t pk) -> const float* {
      return pk >= p0 ? fv + ((pk - p0) * Hkv + g) * D : host_kv::value(cache, pk, g, buf.data());
    };
    const float* q0 = qd + (t * Hq + g * group) * D;
    for (int64_t pk = lo; pk <= pq; ++pk) {
      const float* kr = key(pk);
      for (int64_t j = 0; j < group; ++j) scores[size_t(j * n + pk - lo)] = K.dot_f32(q0 + j * D, kr, D);
    }
    float* o0 = od + (t * Hq + g * group) * D;
    std::fill(o0, o0 + group * D, 0.0f);
    for (int64_t j = 0; j < group; ++j) {
      float* s = scores.data() + j * n;
      const float mx = *std::max_element(s, s + n);
      float sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += (s[i] = std::exp(s[i] - mx));
      const float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) s[i] *= inv;
    }
    for (int64_t pk = lo; pk <= pq; ++pk) {
      const float* vr = val(pk);
      for (int64_t j = 0; j < group; ++j) K.axpy_f32(scores[size_t(j * n + pk - lo)], vr, o0 + j * D, D);
    }
  });
}

}  // namespace g4
