// Loop skeletons shared by the SIMD kernel files (kernels_avx2.cc, kernels_avx512.cc,
// kernels_neon_impl.h): the dispatch from a weight's run-time formats to compile-time template arguments,
// the tile walk of the integer GEMM (decode and prefill alike), and the dense (f32/f16/bf16) GEMM, whose
// tile is written once over a small per-ISA vector traits struct.
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

// The activation of TT consecutive tokens at one 512-element block: token j's int8 codes at ac + j * ac_ld,
// its group scales and sums at sa + j * g_ld and as + j * g_ld.
struct ActBlock {
  const int8_t* ac;
  const float* sa;
  const float* as;
  int64_t ac_ld, g_ld;
};

// The tile walk of the SIMD integer GEMMs: y[t0 + j, r + n * R + i] for TT tokens and NT consecutive R-row
// tiles. R = 1 (any row, NT = 1) or R = kTileRows with r on a tile boundary, whose blocks are then
// consecutive chunks of one forward stream (cpu_weight.h). block.template operator()<R, TT, FULL>(chunk,
// sub, x, accf) adds one 512-element block (FULL) or the last half block of an R-row tile, for the TT
// tokens of x, to accf[R][TT]: chunk is the tile's chunk for the block and sub the first row's place in its
// tile, so every weight load can be a compile-time offset from chunk. V: the ISA's f32 vector traits (Vec,
// zero(), hsum()).
// The leading token group of a chunk (`lead`: the walk that brings each tile from memory; a one-token decode
// is only that) asks for the lines V::prefetch_ahead() bytes ahead of each chunk of its forward stream
// (G4_CPU_PREFETCH overrides; 0: none); later groups find the tile in cache. Per table, as measured: AVX-512
// none on Intel (Sapphire Rapids: 0.5-8 KB ahead measured 30-35% slower, int4 and int8) and 2 KB on AMD
// (Zen 5: decode +25-42%), AVX2 2 KB (Zen 3 on a loaded host: decode +11% on g4's int4, +20% on Q4_0,
// 4 sequences +6%, alternating; docs/PERF.md), NEON none (not measured).
// NT = 2 walks two whole tiles together, block by block, so each activation block serves both while it is
// in L1. For long rows the activation (cols_p x 1.25 bytes a token with its scales and sums: 27 KB for the
// 21,504-wide down projection) does not stay in L1 while a tile's weights stream past, and its lines then
// cost as many L1 misses per block as half the weights'; a pair of tiles halves that ratio.
template <class V, int R, int NT, int TT, class Block>
inline void walk_tiles(const QPacked& w, const QAct& a, int64_t r, int64_t t0, float* y, int64_t ldy, Block& block,
                       bool lead) {
  static_assert(R == 1 || R == kTileRows, "a walked tile is one row or one whole packed tile");
  static_assert(NT == 1 || R == kTileRows, "only whole tiles are walked together");
  typename V::Vec accf[NT][R][TT];
  for (int n = 0; n < NT; ++n)
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < TT; ++j) accf[n][i][j] = V::zero();
  const int64_t sub = R == kTileRows ? 0 : r % kTileRows, full_blocks = w.cols_p / 512;
  const uint8_t* chunk[NT];  // tile n's chunk of the current block
  for (int n = 0; n < NT; ++n) chunk[n] = w.data.data() + w.chunk_off(r, 0) + n * w.tile_bytes;
  ActBlock x{a.row(t0), a.sa.data() + t0 * a.groups, a.asum.data() + t0 * a.groups, a.cols_p, a.groups};
  static const int64_t ahead = [] {
    const int64_t o = prefetch_ahead_override();
    return o >= 0 ? o : V::prefetch_ahead();
  }();
  for (int64_t b = 0; b < full_blocks; ++b, x.ac += 512, x.sa += 16, x.as += 16) {
#pragma GCC unroll 2  // left rolled, the AVX-512 pair walk measured 10-15% slower
    for (int n = 0; n < NT; ++n) {
      if (lead && ahead > 0) {  // addresses as integers: they may lie past the weights' end (a prefetch never faults)
        const uintptr_t at = reinterpret_cast<uintptr_t>(chunk[n]) + uintptr_t(ahead);
        for (int64_t o = 0; o < w.chunk_bytes; o += 64) __builtin_prefetch(reinterpret_cast<const void*>(at + uintptr_t(o)), 0, 0);
      }
      block.template operator()<R, TT, true>(chunk[n], sub, x, accf[n]);
      chunk[n] += w.chunk_bytes;
    }
  }
  if (full_blocks < w.blocks)
    for (int n = 0; n < NT; ++n) block.template operator()<R, TT, false>(chunk[n], sub, x, accf[n]);
  for (int n = 0; n < NT; ++n)
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < TT; ++j) y[(t0 + j) * ldy + r + n * R + i] = V::hsum(accf[n][i][j]);
}

// Calls f.template operator()<N>() for the run-time n in 1..kMax.
template <int kMax, class F>
inline void with_count(int64_t n, F&& f) {
  if constexpr (kMax >= 1) {
    if (n == kMax) return f.template operator()<kMax>();
    with_count<kMax - 1>(n, f);
  }
}

// The integer GEMM of every SIMD table, for one token (a decode step) as for many (several sequences' steps,
// prefill), takes the tokens kChunkT at a time and walks the thread's rows once per chunk: a weight tile
// comes from memory once for the chunk, and the chunk's activation (5.4 KB a token at 5,376 columns) stays
// in L2 while the tiles pass. Against the previous prefill walk (a block of 16 rows in L2 while 4-token tiles
// passed, rows addressed one by one), cpu_gemm_bench int4, one thread, alternating: in cache (512 x 5376)
// T = 2-64 AVX-512 130-166 against 63-110 G MAC/s, AVX2 61-67 against 40-54; from memory (2048 x 5376 and
// 512 x 21504), T = 128, AVX-512 139-155 against 79-98.
inline constexpr int64_t kChunkT = 64;
// int4 rows at least this long, for one token, decode in tile pairs (walk_tiles, NT = 2): AVX-512, one
// thread, 24-26 -> 29 GB/s on the 5376 x 21504 down projection. Shorter rows keep one forward stream; int8
// measured slower in pairs, and so did int4 for more than one token (in cache, 128 x 21504, T = 4: 120-125
// G MAC/s in pairs, above 157 in single tiles: the pair's accumulators no longer fit the registers).
inline constexpr int64_t kPairMinCols = 12288;

// y[t, r] for every token t < a.T and rows [r0, r1), kChunkT tokens at a time: single rows up to the first
// tile boundary, whole tiles (pairs of them for one token of long int4 rows), single rows at the end. Each
// of these takes the chunk's tokens in groups of TG (the last group smaller), one group after the other,
// so one group's accumulators fit the ISA's registers and the later groups find the tile's weights in L1
// (L2 for rows past ~20,000 columns).
template <class V, int TG, class Block>
inline void walk_rows(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1, Block&& block) {
  for (int64_t c0 = 0; c0 < a.T; c0 += kChunkT) {
    const int64_t c1 = c0 + kChunkT < a.T ? c0 + kChunkT : a.T;
    const auto unit = [&]<int R, int NT>(int64_t r) {
      int64_t t = c0;
      for (; t + TG <= c1; t += TG) walk_tiles<V, R, NT, TG>(w, a, r, t, y, ldy, block, t == c0);
      if (t < c1) with_count<TG - 1>(c1 - t, [&]<int N>() { walk_tiles<V, R, NT, N>(w, a, r, t, y, ldy, block, t == c0); });
    };
    constexpr int kT = int(kTileRows);
    int64_t r = r0;
    for (; r < r1 && r % kT != 0; ++r) unit.template operator()<1, 1>(r);
    if (w.kind == QuantKind::kInt4 && w.cols_p >= kPairMinCols && a.T == 1)
      for (; r + 2 * kT <= r1; r += 2 * kT) unit.template operator()<kT, 2>(r);
    for (; r + kT <= r1; r += kT) unit.template operator()<kT, 1>(r);
    for (; r < r1; ++r) unit.template operator()<1, 1>(r);
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
