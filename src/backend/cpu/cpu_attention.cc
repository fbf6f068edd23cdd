// Attention on the CPU: one task per (query token, query head), heads of one KV group adjacent so their
// shared keys stay in cache. Semantics are RefBackend::attention's: keys before p0 come from the cache
// (ring slot p % capacity for sliding layers), the chunk's own keys from k/v; softmax in f32 with the max
// subtracted; scale 1.0 (Gemma 4 folds the query scale into q_norm).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "base/error.h"

namespace g4 {

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0,
                           int window, Tensor& out) {
  const int64_t T = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k.dim(1);
  G4_CHECK(k.dim(0) == T && v.dim(0) == T && k.dim(2) == D && v.dim(2) == D && v.dim(1) == Hkv, "attention shapes");
  G4_CHECK(Hq % Hkv == 0, "attention GQA");
  G4_CHECK(out.numel() == q.numel(), "attention output shape");
  if (!cache.ring) G4_CHECK(p0 <= cache.capacity, "flat cache overflow");
  if (cache.ring && p0 > 0 && window > 0) G4_CHECK(std::min<int64_t>(p0, window - 1) <= cache.capacity, "ring cache smaller than the window");
  if (cache.ring && window <= 0) G4_CHECK(p0 <= cache.capacity, "ring cache without a window");
  const int64_t group = Hq / Hkv;
  const float* qd = static_cast<const float*>(q.data);
  const float* kd = static_cast<const float*>(k.data);
  const float* vd = static_cast<const float*>(v.data);
  const float* ck = static_cast<const float*>(cache.k.data);
  const float* cv = static_cast<const float*>(cache.v.data);
  float* od = static_cast<float*>(out.data);
  const cpu::KernelTable& K = *k_;
  pool_.run(T * Hq, [&](int64_t task) {
    const int64_t t = task / Hq, h = task % Hq, g = h / group;
    const int64_t pq = p0 + t;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pq - window + 1) : 0;
    auto row = [&](const float* fresh, const float* cached, int64_t pk) -> const float* {
      if (pk >= p0) return fresh + ((pk - p0) * Hkv + g) * D;
      const int64_t slot = cache.ring ? pk % cache.capacity : pk;
      return cached + (slot * Hkv + g) * D;
    };
    thread_local std::vector<float> scores;
    scores.resize(size_t(pq - lo + 1));
    const float* qv = qd + (t * Hq + h) * D;
    float mx = -INFINITY;
    for (int64_t pk = lo; pk <= pq; ++pk) {
      const float s = K.dot_f32(qv, row(kd, ck, pk), D);
      scores[size_t(pk - lo)] = s;
      mx = std::max(mx, s);
    }
    float sum = 0;
    for (float& s : scores) sum += (s = std::exp(s - mx));
    float* o = od + (t * Hq + h) * D;
    std::fill(o, o + D, 0.0f);
    const float inv = 1.0f / sum;
    for (int64_t pk = lo; pk <= pq; ++pk) K.axpy_f32(scores[size_t(pk - lo)] * inv, row(vd, cv, pk), o, D);
  });
}

}  // namespace g4
