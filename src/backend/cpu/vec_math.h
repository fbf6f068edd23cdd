// Elementwise transcendental ops on the CPU tables' f32 vectors: gelu-tanh times up (the MLP) and the logit
// softcap, both through one vector exp. V is a table's vector struct (Avx2Vec, NeonVec) with set, add, sub,
// mul, div, fma, min, max, round (to nearest integer), exp2i (2^n for an integral n in [-126, 127]), load,
// store and kWidth. Every element goes through the vector path, the tail through a padded copy, so that an
// element's value never depends on where a thread's range starts or ends.
#pragma once

#include <cstdint>

namespace g4::cpu {

// e^x = 2^n e^r with x = n ln2 + r, |r| <= ln2 / 2 (ln2 split in two so that n ln2 is exact): sets s = 2^n
// and q = e^r - 1 by its Taylor series to r^8 (truncation below 6e-10 relative). x within [-87, 87].
template <class V>
void exp_parts(typename V::Vec x, typename V::Vec& s, typename V::Vec& q) {
  using Vec = typename V::Vec;
  const Vec n = V::round(V::mul(x, V::set(1.44269504089f)));
  Vec r = V::fma(n, V::set(-0.693145751953125f), x);
  r = V::fma(n, V::set(-1.428606765330187e-6f), r);
  Vec p = V::set(1.0f / 40320);
  p = V::fma(p, r, V::set(1.0f / 5040));
  p = V::fma(p, r, V::set(1.0f / 720));
  p = V::fma(p, r, V::set(1.0f / 120));
  p = V::fma(p, r, V::set(1.0f / 24));
  p = V::fma(p, r, V::set(1.0f / 6));
  p = V::fma(p, r, V::set(0.5f));
  p = V::fma(p, r, V::set(1.0f));
  q = V::mul(p, r);
  s = V::exp2i(n);
}

// e^x, x within [-87, 87].
template <class V>
typename V::Vec exp_vec(typename V::Vec x) {
  typename V::Vec s, q;
  exp_parts<V>(x, s, q);
  return V::fma(s, q, s);
}

// e^x - 1, accurate relative to the result near 0 too (n = 0 there, and the result is q), x within [-87, 87].
template <class V>
typename V::Vec expm1_vec(typename V::Vec x) {
  typename V::Vec s, q;
  exp_parts<V>(x, s, q);
  return V::fma(s, q, V::sub(s, V::set(1.0f)));
}

// x limited to [-lim, lim], a NaN kept (x86 min/max return their second operand when one is NaN).
template <class V>
typename V::Vec clamp_vec(typename V::Vec x, float lim) {
  return V::min(V::set(lim), V::max(V::set(-lim), x));
}

// gelu_tanh(g) * u = 0.5 g (1 + tanh(z)) u with z = sqrt(2/pi) (g + 0.044715 g^3), written as
// g u e / (e + 1) with e = e^(2z): 1 + tanh(z) = 2e / (e + 1) has no cancellation for negative z.
// z is clamped to [-40, 40], where e / (e + 1) is 1 or below 2e-35 in f32 either way.
template <class V>
typename V::Vec gelu_mul_vec(typename V::Vec g, typename V::Vec u) {
  using Vec = typename V::Vec;
  const Vec g3 = V::mul(V::mul(g, g), g);
  Vec z = V::mul(V::set(0.7978845608f), V::fma(V::set(0.044715f), g3, g));
  z = clamp_vec<V>(z, 40.0f);
  const Vec e = exp_vec<V>(V::add(z, z));
  return V::mul(V::mul(g, u), V::div(e, V::add(e, V::set(1.0f))));
}

// cap * tanh(x / cap) = cap m / (m + 2) with m = e^(2x / cap) - 1, the argument clamped to [-40, 40].
template <class V>
typename V::Vec softcap_vec(typename V::Vec x, float cap) {
  using Vec = typename V::Vec;
  const Vec m = expm1_vec<V>(clamp_vec<V>(V::mul(x, V::set(2.0f / cap)), 80.0f));
  return V::mul(V::set(cap), V::div(m, V::add(m, V::set(2.0f))));
}

// out[i] = f(in[0][i], ..., in[N - 1][i]) for i < n, a vector at a time; the tail through a zero-padded
// vector. out may be one of the inputs.
template <class V, int N, class F>
void map_span(const float* const (&in)[N], float* out, int64_t n, F f) {
  constexpr int64_t W = V::kWidth;
  typename V::Vec v[N];
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    for (int k = 0; k < N; ++k) v[k] = V::load_x(in[k] + i);
    V::store(out + i, f(v));
  }
  if (i == n) return;
  float pad[N][W] = {}, res[W];
  for (int k = 0; k < N; ++k) {
    for (int64_t j = 0; j < n - i; ++j) pad[k][j] = in[k][i + j];
    v[k] = V::load_x(pad[k]);
  }
  V::store(res, f(v));
  for (int64_t j = 0; j < n - i; ++j) out[i + j] = res[j];
}

// out[i] = gelu_tanh(g[i]) * u[i] for i < n.
template <class V>
void gelu_mul_span(const float* g, const float* u, float* out, int64_t n) {
  map_span<V, 2>({g, u}, out, n, [](const typename V::Vec (&v)[2]) { return gelu_mul_vec<V>(v[0], v[1]); });
}

// x[i] = cap * tanh(x[i] / cap) for i < n.
template <class V>
void softcap_span(float* x, int64_t n, float cap) {
  map_span<V, 1>({x}, x, n, [cap](const typename V::Vec (&v)[1]) { return softcap_vec<V>(v[0], cap); });
}

}  // namespace g4::cpu
