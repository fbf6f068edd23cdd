// Loop skeletons shared by the SIMD kernel files (kernels_avx2.cc, kernels_avx512.cc,
// kernels_neon_impl.h): the dispatch from a weight's run-time formats to compile-time template arguments,
// the row-block x token-tile walk of the prefill GEMM, and the dense (f32/f16/bf16) GEMM, whose tile is
// written once over a small per-ISA vector traits struct.
//
// Every kernel file is compiled with its own ISA flags, so everything here has internal linkage (an
// anonymous namespace): each file gets its own copy, and the linker can never hand one file's AVX-512
// instantiation to another. Its only includes are <cstdint>, <cstring> and kernels.h, which
// kernels_neon_dot.cc includes before it raises the ISA with a pragma, so no library code is compiled
// with the raised ISA there.
#pragma once

#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels.h"

namespace g4::cpu {
namespace {

// Calls f.template operator()<K, ST, ASYM>() for the weight's kind, scale type and symmetry.
template <class F>
inline void dispatch_quant(const QPacked& w, F&& f) {
  const auto by_sym = [&]<QuantKind K, ScaleType ST>() {
    if (w.asym) f.template operator()<K, ST, true>();
    else f.template operator()<K, ST, false>();
  };
  const auto by_kind = [&]<ScaleType ST>() {
    if (w.kind == QuantKind::kInt4) by_sym.template operator()<QuantKind::kInt4, ST>();
    else by_sym.template operator()<QuantKind::kInt8, ST>();
  };
  switch (w.scale_type) {
    case ScaleType::kBF16: return by_kind.template operator()<ScaleType::kBF16>();
    case ScaleType::kF16: return by_kind.template operator()<ScaleType::kF16>();
    case ScaleType::kF32: return by_kind.template operator()<ScaleType::kF32>();
  }
}

// Calls f.template operator()<DT>() for the dense weight's element type.
template <class F>
inline void dispatch_dense(DenseType t, F&& f) {
  switch (t) {
    case DenseType::kF32: return f.template operator()<DenseType::kF32>();
    case DenseType::kF16: return f.template operator()<DenseType::kF16>();
    case DenseType::kBF16: return f.template operator()<DenseType::kBF16>();
  }
}

// The prefill walk of the AVX2 and NEON integer GEMMs: a block of kRowBlock weight rows (43 KB of int4 at
// 5,376 columns) stays in L2 while every token tile passes over it, so weights come from memory once
// rather than once per token tile. tile.template operator()<R, TT>(r, t) computes y[t..t+TT, r..r+R):
// 2 x 4 tiles over groups of 4 tokens, then single tokens with 4-row tiles on packed-tile boundaries.
template <class Tile>
inline void prefill_row_blocks(int64_t r0, int64_t r1, int64_t T, Tile&& tile) {
  constexpr int64_t kRowBlock = 16;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = rb + kRowBlock < r1 ? rb + kRowBlock : r1;
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) {
      int64_t r = rb;
      for (; r + 2 <= re; r += 2) tile.template operator()<2, 4>(r, t);
      for (; r < re; ++r) tile.template operator()<1, 4>(r, t);
    }
    for (; t < T; ++t) {
      int64_t r = rb;
      for (; r < re && r % kTileRows != 0; ++r) tile.template operator()<1, 1>(r, t);
      for (; r + kTileRows <= re; r += kTileRows) tile.template operator()<int(kTileRows), 1>(r, t);
      for (; r < re; ++r) tile.template operator()<1, 1>(r, t);
    }
  }
}

// One dense element in f32 (the scalar tail of a row).
template <DenseType DT>
inline float dense_elem(const uint8_t* row, int64_t k) {
  if constexpr (DT == DenseType::kF32) {
    float f;
    std::memcpy(&f, row + k * 4, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, row + k * 2, 2);
    return DT == DenseType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

// Dense weights [rows, cols] (row stride w.ld) against f32 activations x [T, cols]: y[t, r] for r in
// [r0, r1), in R x TT tiles of V::kWidth-wide f32 vectors, TT = kTokTile tokens at a time, then one.
// V supplies: type Vec, kWidth, zero(), load_x(const float*), load_w<DT>(const uint8_t* row, int64_t k),
// fma(a, b, acc) = acc + a * b, and hsum(Vec).
template <class V, DenseType DT, int R, int TT>
inline void dense_tile(const DensePacked& w, const float* x, int64_t r, int64_t t, float* y, int64_t ldy) {
  typename V::Vec acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < TT; ++j) acc[i][j] = V::zero();
  const int64_t es = int64_t(w.elem_size()), n = w.cols, nv = n / V::kWidth * V::kWidth;
  const uint8_t* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = w.data.data() + (r + i) * w.ld * es;
  for (int64_t k = 0; k < nv; k += V::kWidth) {
    typename V::Vec wv[R];
    for (int i = 0; i < R; ++i) wv[i] = V::template load_w<DT>(wr[i], k);
    for (int j = 0; j < TT; ++j) {
      const typename V::Vec xv = V::load_x(x + (t + j) * n + k);
      for (int i = 0; i < R; ++i) acc[i][j] = V::fma(wv[i], xv, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < TT; ++j) {
      float s = V::hsum(acc[i][j]);
      for (int64_t k = nv; k < n; ++k) s += dense_elem<DT>(wr[i], k) * x[(t + j) * n + k];
      y[(t + j) * ldy + r + i] = s;
    }
}

template <class V, int kTokTile>
inline void dense_gemm(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dispatch_dense(w.type, [&]<DenseType DT>() {
    int64_t t = 0;
    for (; t + kTokTile <= T; t += kTokTile) {
      int64_t r = r0;
      for (; r + 4 <= r1; r += 4) dense_tile<V, DT, 4, kTokTile>(w, x, r, t, y, ldy);
      for (; r < r1; ++r) dense_tile<V, DT, 1, kTokTile>(w, x, r, t, y, ldy);
    }
    for (; t < T; ++t) {
      int64_t r = r0;
      for (; r + 4 <= r1; r += 4) dense_tile<V, DT, 4, 1>(w, x, r, t, y, ldy);
      for (; r < r1; ++r) dense_tile<V, DT, 1, 1>(w, x, r, t, y, ldy);
    }
  });
}

}  // namespace
}  // namespace g4::cpu
