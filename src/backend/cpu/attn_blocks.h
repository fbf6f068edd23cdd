// Attention in blocks for the SIMD kernel tables (KernelTable::attn_scores, attn_values), written once over an
// ISA's f32 vector traits V (Vec, kWidth, zero, load_x, fma, hsum, set, store) so that every table has the
// same structure. Every result is computed as for a block of one: a (query, key) score is its pair's own
// accumulator over the whole vectors in order, summed across lanes, then the scalar tail; an output element
// gets one fma per key, in key order (as axpy_f32 does key by key). So a block's shape (QB x KB pairs, RB rows
// x CB vectors of columns: what fits the registers) changes the speed, never a value, and a verify's positions
// equal one-token steps. Rows and keys past a block's end repeat its last one (computed, not stored).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace g4::cpu {

// out[i * ldo + j] = q[i] . k[j], i < nq, j < nk, rows of n values.
template <class V, int QB, int KB>
inline void attn_scores_blocks(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n,
                               float* out, int64_t ldo) {
  for (int64_t i0 = 0; i0 < nq; i0 += QB)
    for (int64_t j0 = 0; j0 < nk; j0 += KB) {
      const float* qi[QB];
      const float* kj[KB];
      for (int i = 0; i < QB; ++i) qi[i] = q[std::min<int64_t>(i0 + i, nq - 1)];
      for (int j = 0; j < KB; ++j) kj[j] = k[std::min<int64_t>(j0 + j, nk - 1)];
      typename V::Vec acc[QB][KB];
      for (int i = 0; i < QB; ++i)
        for (int j = 0; j < KB; ++j) acc[i][j] = V::zero();
      int64_t d = 0;
      for (; d + V::kWidth <= n; d += V::kWidth) {
        typename V::Vec kv[KB];
        for (int j = 0; j < KB; ++j) kv[j] = V::load_x(kj[j] + d);
        for (int i = 0; i < QB; ++i) {
          const typename V::Vec qv = V::load_x(qi[i] + d);
          for (int j = 0; j < KB; ++j) acc[i][j] = V::fma(qv, kv[j], acc[i][j]);
        }
      }
      for (int64_t i = 0; i < QB && i0 + i < nq; ++i)
        for (int64_t j = 0; j < KB && j0 + j < nk; ++j) {
          float sum = V::hsum(acc[i][j]);
          for (int64_t e = d; e < n; ++e) sum = std::fma(qi[i][e], kj[j][e], sum);
          out[(i0 + i) * ldo + j0 + j] = sum;
        }
    }
}

// o[i] += sum over j < nk, in order, of s[i * lds + j] * v[j], i < nq, rows of n values.
template <class V, int RB, int CB>
inline void attn_values_blocks(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                               float* const* o) {
  constexpr int64_t W = V::kWidth;
  for (int64_t i0 = 0; i0 < nq; i0 += RB) {
    const int64_t mi = std::min<int64_t>(RB, nq - i0);
    const float* si[RB];
    float* oi[RB];
    for (int i = 0; i < RB; ++i) {
      si[i] = s + std::min<int64_t>(i0 + i, nq - 1) * lds;
      oi[i] = o[i0 + std::min<int64_t>(i, mi - 1)];
    }
    int64_t d = 0;
    for (; d + CB * W <= n; d += CB * W) {
      typename V::Vec acc[RB][CB];
      for (int i = 0; i < RB; ++i)
        for (int c = 0; c < CB; ++c) acc[i][c] = V::load_x(oi[i] + d + c * W);
      for (int64_t j = 0; j < nk; ++j) {
        typename V::Vec vv[CB];
        for (int c = 0; c < CB; ++c) vv[c] = V::load_x(v[j] + d + c * W);
        for (int i = 0; i < RB; ++i) {
          const typename V::Vec sv = V::set(si[i][j]);
          for (int c = 0; c < CB; ++c) acc[i][c] = V::fma(sv, vv[c], acc[i][c]);
        }
      }
      for (int64_t i = 0; i < mi; ++i)
        for (int c = 0; c < CB; ++c) V::store(oi[i] + d + c * W, acc[i][c]);
    }
    for (; d + W <= n; d += W)
      for (int64_t i = 0; i < mi; ++i) {
        typename V::Vec acc = V::load_x(oi[i] + d);
        for (int64_t j = 0; j < nk; ++j) acc = V::fma(V::set(si[i][j]), V::load_x(v[j] + d), acc);
        V::store(oi[i] + d, acc);
      }
    for (; d < n; ++d)
      for (int64_t i = 0; i < mi; ++i)
        for (int64_t j = 0; j < nk; ++j) oi[i][d] = std::fma(si[i][j], v[j][d], oi[i][d]);
  }
}

}  // namespace g4::cpu
