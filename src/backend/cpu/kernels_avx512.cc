// AVX-512 kernels (F, BW, VL, VNNI; Zen 4, Ice Lake and later). This file alone is compiled with those
// flags and is only entered after a cpuid check, so nothing here may be called on other CPUs.
// Integer path: vpdpbusd(u8 weight codes, s8 activations) accumulates one 32-element group per 32-bit
// lane over a 512-element block, then cvt + fma apply s_w * (s_a dot - zu asum) for 16 groups at once.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/attn_blocks.h"
#include "backend/cpu/kernel_loops.h"
#include "backend/cpu/kernels.h"

namespace g4::cpu {

namespace {

template <ScaleType ST>
inline __m512 load_scales(const uint8_t* p, __mmask16 m) {
  if constexpr (ST == ScaleType::kF32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (ST == ScaleType::kF16) return _mm512_cvtph_ps(h);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

inline __mmask16 mask16(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

void quantize_row_avx512(const float* x, int64_t cols, QAct& a, int64_t t) {
  int8_t* q = reinterpret_cast<int8_t*>(a.qa.data()) + t * a.cols_p;
  float* sa = a.sa.data() + t * a.groups;
  float* asum = a.asum.data() + t * a.groups;
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t k0 = g * 32;
    const __mmask16 m0 = k0 < cols ? mask16(cols - k0) : 0, m1 = k0 + 16 < cols ? mask16(cols - k0 - 16) : 0;
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + k0), v1 = _mm512_maskz_loadu_ps(m1, x + k0 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    const __m512 vi = _mm512_set1_ps(inv);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vi)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vi));
    sa[g] = amax / 127.0f;
    asum[g] = sa[g] * float(_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1)));
    alignas(16) int8_t b[32];
    _mm_store_si128(reinterpret_cast<__m128i*>(b), _mm512_cvtepi32_epi8(i0));
    _mm_store_si128(reinterpret_cast<__m128i*>(b + 16), _mm512_cvtepi32_epi8(i1));
    const int64_t base = k0 / 512 * 512, lanes = base + 512 <= a.cols_p ? 16 : 8, gl = (k0 - base) / 32;
    for (int s = 0; s < 8; ++s) std::memcpy(q + base + s * lanes * 4 + gl * 4, b + 4 * s, 4);
  }
}

// 16-wide f32 vectors: the tile walk's accumulators and the dense GEMM (kernel_loops.h).
struct Avx512Vec {
  using Vec = __m512;
  static constexpr int64_t kWidth = 16;
  // kernel_loops.h walk_tiles: 2 KB ahead on AMD, none on Intel. Decode, 2 threads, alternating: Zen 5
  // (EPYC, family 26) +25-42% on Q4_0 and g4's int4 with it; Sapphire Rapids 30-35% slower (docs/PERF.md).
  static int64_t prefetch_ahead() { return cpu_is_amd() ? 2048 : 0; }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load_x(const float* p) { return _mm512_loadu_ps(p); }
  template <DenseType DT>
  static Vec load_w(const uint8_t* row, int64_t k) {
    if constexpr (DT == DenseType::kF32) return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
    else return load_scales<DT == DenseType::kF16 ? ScaleType::kF16 : ScaleType::kBF16>(row + k * 2, 0xFFFF);
  }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  static float hsum(Vec v) { return _mm512_reduce_add_ps(v); }
  // For attn_blocks.h.
  static Vec set(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
};

// One to kTokGroup tokens: one 512-element block (FULL) or half block of an R-row tile for TT
// tokens, each weight vector loaded (and for int4 unpacked) once for all TT, closed by
// accf += s_w * (dot * s_a - zu * asum) for 16 (8) groups at once (zu = z + zoff, or the symmetric constant).
// chunk: the tile's chunk for this block (cpu_weight.h); sub: the first row's place in its tile. With the
// geometry known at compile time every weight load is a constant offset from chunk: int4 4x1 measured 65 ->
// 95 G MAC/s in cache and 29 -> 35 GB/s from memory against per-row pointers (cpu_gemm_bench).
template <QuantKind K, ScaleType ST, bool ASYM, int R, int TT, bool FULL>
__attribute__((always_inline)) inline void qblock(const uint8_t* chunk, int64_t sub, const ActBlock& x, __m512 zoff,
                                                  __m512 zsym, __m512 (&accf)[R][TT]) {
  constexpr int64_t kStep = QPacked::step_bytes_of(FULL), kStride = kTileRows * kStep;
  constexpr int64_t kGroupBytes = QPacked::groups_of(FULL) * (ST == ScaleType::kF32 ? 4 : 2);
  const uint8_t* const scales = chunk + kTileRows * QPacked::code_bytes_of(K, FULL);
  const uint8_t* const zeros = scales + kTileRows * kGroupBytes;
  constexpr __mmask64 bm = FULL ? ~0ULL : 0xFFFFFFFFULL;
  constexpr __mmask16 sm = FULL ? 0xFFFF : 0xFF;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512i acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < TT; ++j) acc[i][j] = _mm512_setzero_si512();
  const uint8_t* const w0 = chunk + sub * kStep;  // row i's step s: w0 + i * kStep + s * kStride
  if constexpr (K == QuantKind::kInt4) {
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      __m512i lo[R], hi[R];
      for (int i = 0; i < R; ++i) {
        const __m512i c = _mm512_maskz_loadu_epi8(bm, w0 + i * kStep + s * kStride);
        lo[i] = _mm512_and_si512(c, m4);
        hi[i] = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
      }
      for (int j = 0; j < TT; ++j) {
        const __m512i xl = _mm512_maskz_loadu_epi8(bm, x.ac + j * x.ac_ld + s * kStep);
        const __m512i xh = _mm512_maskz_loadu_epi8(bm, x.ac + j * x.ac_ld + (s + 4) * kStep);
        for (int i = 0; i < R; ++i) acc[i][j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[i][j], lo[i], xl), hi[i], xh);
      }
    }
  } else {
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      __m512i c[R];
      for (int i = 0; i < R; ++i) c[i] = _mm512_maskz_loadu_epi8(bm, w0 + i * kStep + s * kStride);
      for (int j = 0; j < TT; ++j) {
        const __m512i xv = _mm512_maskz_loadu_epi8(bm, x.ac + j * x.ac_ld + s * kStep);
        for (int i = 0; i < R; ++i) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], c[i], xv);
      }
    }
  }
  __m512 sw[R], zu[R];
  for (int i = 0; i < R; ++i) {
    sw[i] = load_scales<ST>(scales + (sub + i) * kGroupBytes, sm);
    zu[i] = ASYM ? _mm512_add_ps(load_scales<ST>(zeros + (sub + i) * kGroupBytes, sm), zoff) : zsym;
  }
  for (int j = 0; j < TT; ++j) {
    const __m512 vsa = _mm512_maskz_loadu_ps(sm, x.sa + j * x.g_ld), vas = _mm512_maskz_loadu_ps(sm, x.as + j * x.g_ld);
    for (int i = 0; i < R; ++i) {
      const __m512 v = _mm512_fnmadd_ps(zu[i], vas, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][j]), vsa));
      accf[i][j] = _mm512_fmadd_ps(v, sw[i], accf[i][j]);
    }
  }
}

// The tile walk (kernel_loops.h) takes the tokens 4 at a time (4 x 4 int32 accumulators); 2 at a time
// measured 10-20% slower at T = 4 and 8 (in cache, int4 and int8).
constexpr int kTokGroup = 4;

void qgemm_avx512(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dispatch_quant(w, [&]<QuantKind K, ScaleType ST, bool ASYM>() {
    const __m512 zoff = _mm512_set1_ps(w.zoff), zsym = _mm512_set1_ps(w.zu);
    const auto block = [&]<int R, int TT, bool FULL>(const uint8_t* chunk, int64_t sub, const ActBlock& x,
                                                     __m512 (&accf)[R][TT]) {
      qblock<K, ST, ASYM, R, TT, FULL>(chunk, sub, x, zoff, zsym, accf);
    };
    walk_rows<Avx512Vec, kTokGroup>(w, a, y, ldy, r0, r1, block);
  });
}

void dgemm_avx512(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dense_gemm<Avx512Vec, 4>(w, x, T, y, ldy, r0, r1);
}

float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void axpy_avx512(float s, const float* x, float* y, int64_t n) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// Attention in blocks (attn_blocks.h): 4 x 4 pairs a pass; 2 x 8 for the one or two query rows of a decode
// step on a 2-head GQA group, where 4 x 4 would compute every pair twice.
void attn_scores_avx512(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n, float* out,
                        int64_t ldo) {
  if (nq <= 2) attn_scores_blocks<Avx512Vec, 2, 8>(q, nq, k, nk, n, out, ldo);
  else attn_scores_blocks<Avx512Vec, 4, 4>(q, nq, k, nk, n, out, ldo);
}

// 4 rows x 64 columns a pass; 2 x 128 for one or two rows.
void attn_values_avx512(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                        float* const* o) {
  if (nq <= 2) attn_values_blocks<Avx512Vec, 2, 8>(s, lds, nq, v, nk, n, o);
  else attn_values_blocks<Avx512Vec, 4, 4>(s, lds, nq, v, nk, n, o);
}

}  // namespace

// The elementwise ops are the AVX2 table's (kernels_avx2.cc, vec_math.h): every AVX-512 CPU has AVX2.
void gelu_mul_avx2(const float* g, const float* up, float* out, int64_t n);
void softcap_avx2(float* x, int64_t n, float cap);

// Called only after kernels_generic.cc checked cpuid.
const KernelTable* avx512_table() {
  static const KernelTable t{"avx512", quantize_row_avx512, qgemm_avx512, dgemm_avx512, dot_avx512, axpy_avx512,
                             gelu_mul_avx2, softcap_avx2, attn_scores_avx512, attn_values_avx512};
  return &t;
}

}  // namespace g4::cpu
