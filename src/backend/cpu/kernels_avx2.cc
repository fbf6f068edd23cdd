// AVX2 kernels (Haswell and later, Zen 1-3: x86 without AVX-512 VNNI). This file alone is compiled with
// -mavx2 -mfma -mf16c and is only entered after a cpuid check (kernels_generic.cc).
// Integer path: vpmaddubsw (u8 x s8 -> pairs in s16) then vpmaddwd by ones (-> 4-byte sums in s32), so a
// 32-bit lane accumulates one 32-element group of the lane-major layout; 8 groups per register.
// maddubs saturates past 32767, so int8 codes go in as |c| against sign(c) * x with c = u - 128
// (2 * 128 * 127 fits), and the zero term then uses zu' = zu - 128 (none for symmetric int8).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/attn_blocks.h"
#include "backend/cpu/kernel_loops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"

namespace g4::cpu {

namespace {

template <ScaleType ST>
inline __m256 load_scales(const uint8_t* p) {
  if constexpr (ST == ScaleType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (ST == ScaleType::kF16) return _mm256_cvtph_ps(h);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

void quantize_row_avx2(const float* x, int64_t cols, QAct& a, int64_t t) {
  int8_t* q = reinterpret_cast<int8_t*>(a.qa.data()) + t * a.cols_p;
  float* sa = a.sa.data() + t * a.groups;
  float* asum = a.asum.data() + t * a.groups;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  // packs_epi32 / packs_epi16 interleave 128-bit lanes: 4-byte units come out as 0,2,4,6,1,3,5,7.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  alignas(32) float tail[32];
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t k0 = g * 32;
    const float* p = x + k0;
    if (k0 + 32 > cols) {
      std::memset(tail, 0, sizeof(tail));
      if (k0 < cols) std::memcpy(tail, x + k0, size_t(cols - k0) * 4);
      p = tail;
    }
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(p + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const __m256 vi = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    __m256i iv[4];
    for (int i = 0; i < 4; ++i) iv[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vi));  // nearest even
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3]));
    const __m256i b = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3])), order);
    alignas(32) int8_t bytes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), b);
    sa[g] = amax / 127.0f;
    asum[g] = sa[g] * float(hsum_i32(s));
    const int64_t base = k0 / 512 * 512, lanes = base + 512 <= a.cols_p ? 16 : 8, gl = (k0 - base) / 32;
    for (int st = 0; st < 8; ++st) std::memcpy(q + base + st * lanes * 4 + gl * 4, bytes + 4 * st, 4);
  }
}

// Keeps v in a register at this point of the sum. Integer adds are associative, so GCC regroups the tile's
// per-step sums (p += m1 + m2 over 4 steps) into trees whose partial sums do not fit the 16 ymm registers and
// spills them: cpu_gemm_bench, one thread, Zen 3, 4-256 tokens: int4 58-66 G MAC/s, pinned 79-85; int8 45-47,
// pinned 53-55 (docs/PERF.md). One token is left free (pinned it measured slower).
inline void pin(__m256i& v) { asm("" : "+x"(v)); }

// One to kTokGroup tokens, as kernels_avx512.cc's qblock: one 512-element block (FULL: two 8-group
// halves of one ymm each) or half block of an R-row tile for TT tokens, every weight load a compile-time
// offset from the tile's chunk (cpu_weight.h) and done (for int4 also unpacked) once for all TT, closed per
// half by accf += s_w * (dot * s_a - zu' * asum) for 8 groups. int4: the 4 steps of a half add in s16 before
// the one widening vpmaddwd (16 products of at most 15 * 127 per lane: 30,480 < 32,767). sub: the first row's place in its tile.
template <QuantKind K, ScaleType ST, bool ASYM, int R, int TT, bool FULL>
__attribute__((always_inline)) inline void qblock(const uint8_t* chunk, int64_t sub, const ActBlock& x, __m256 zsym,
                                                  __m256 (&accf)[R][TT]) {
  constexpr bool kInt4 = K == QuantKind::kInt4;
  constexpr bool kZeroTerm = ASYM || kInt4;
  constexpr int64_t kStep = QPacked::step_bytes_of(FULL), kStride = kTileRows * kStep;
  constexpr int64_t kSS = ST == ScaleType::kF32 ? 4 : 2, kGroupBytes = QPacked::groups_of(FULL) * kSS;
  const uint8_t* const scales = chunk + kTileRows * QPacked::code_bytes_of(K, FULL);
  const uint8_t* const zeros = scales + kTileRows * kGroupBytes;
  const uint8_t* const w0 = chunk + sub * kStep;  // row i's step s, half h: w0 + i * kStep + s * kStride + h * 32
  const __m256i m4 = _mm256_set1_epi8(0x0F), flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  const auto ld = [](const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); };
#pragma GCC unroll 2
  for (int h = 0; h < (FULL ? 2 : 1); ++h) {
    const int8_t* const xa = x.ac + h * 32;  // token j's step s: xa + j * x.ac_ld + s * kStep
    __m256i acc[R][TT];
    if constexpr (kInt4) {
      __m256i p[R][TT];
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < TT; ++j) p[i][j] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int s = 0; s < 4; ++s) {
        for (int i = 0; i < R; ++i) {
          const __m256i c = ld(w0 + i * kStep + s * kStride + h * 32);
          const __m256i lo = _mm256_and_si256(c, m4), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
          for (int j = 0; j < TT; ++j) {
            const __m256i xl = ld(xa + j * x.ac_ld + s * kStep), xh = ld(xa + j * x.ac_ld + (s + 4) * kStep);
            p[i][j] = _mm256_add_epi16(p[i][j], _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh)));
            if constexpr (TT >= 2) pin(p[i][j]);
          }
        }
      }
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < TT; ++j) acc[i][j] = _mm256_madd_epi16(p[i][j], ones);
    } else {
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < TT; ++j) acc[i][j] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        for (int i = 0; i < R; ++i) {
          const __m256i csgn = _mm256_xor_si256(ld(w0 + i * kStep + s * kStride + h * 32), flip);
          const __m256i cabs = _mm256_abs_epi8(csgn);
          for (int j = 0; j < TT; ++j) {
            const __m256i q = _mm256_maddubs_epi16(cabs, _mm256_sign_epi8(ld(xa + j * x.ac_ld + s * kStep), csgn));
            acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(q, ones));
            if constexpr (TT >= 2) pin(acc[i][j]);
          }
        }
      }
    }
    __m256 sw[R], zw[R];
    for (int i = 0; i < R; ++i) {
      sw[i] = load_scales<ST>(scales + (sub + i) * kGroupBytes + h * 8 * kSS);
      zw[i] = ASYM ? load_scales<ST>(zeros + (sub + i) * kGroupBytes + h * 8 * kSS) : zsym;
    }
    for (int j = 0; j < TT; ++j) {
      const __m256 vsa = _mm256_loadu_ps(x.sa + j * x.g_ld + h * 8), vas = _mm256_loadu_ps(x.as + j * x.g_ld + h * 8);
      for (int i = 0; i < R; ++i) {
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][j]), vsa);
        if constexpr (kZeroTerm) v = _mm256_fnmadd_ps(zw[i], vas, v);
        accf[i][j] = _mm256_fmadd_ps(v, sw[i], accf[i][j]);
      }
    }
  }
}

// The tile walk (kernel_loops.h) takes the tokens 2 at a time (4 x 2 accumulators in the 16 ymm registers);
// 4 at a time measured the same.
constexpr int kTokGroup = 2;

// 8-wide f32 vectors: the tile walk's accumulators and the dense GEMM (kernel_loops.h); 4 x 2 accumulators
// + 4 weights + 1 activation fit the 16 ymm registers.
struct Avx2Vec {
  using Vec = __m256;
  static constexpr int64_t kWidth = 8;
  static int64_t prefetch_ahead() { return 2048; }  // kernel_loops.h walk_tiles
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load_x(const float* p) { return _mm256_loadu_ps(p); }
  template <DenseType DT>
  static Vec load_w(const uint8_t* row, int64_t k) {
    if constexpr (DT == DenseType::kF32) return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
    else return load_scales<DT == DenseType::kF16 ? ScaleType::kF16 : ScaleType::kBF16>(row + k * 2);
  }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  static float hsum(Vec v) { return g4::cpu::hsum(v); }
  // For vec_math.h.
  static Vec set(float v) { return _mm256_set1_ps(v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec round(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec exp2i(Vec n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
};

void qgemm_avx2(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dispatch_quant(w, [&]<QuantKind K, ScaleType ST, bool ASYM>() {
    const __m256 zsym = _mm256_set1_ps(K == QuantKind::kInt4 ? 8.0f : 0.0f);  // source zero of symmetric weights
    const auto block = [&]<int R, int TT, bool FULL>(const uint8_t* chunk, int64_t sub, const ActBlock& x,
                                                     __m256 (&accf)[R][TT]) {
      qblock<K, ST, ASYM, R, TT, FULL>(chunk, sub, x, zsym, accf);
    };
    walk_rows<Avx2Vec, kTokGroup>(w, a, y, ldy, r0, r1, block);
  });
}

void dgemm_avx2(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dense_gemm<Avx2Vec, 2>(w, x, T, y, ldy, r0, r1);
}

float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_avx2(float s, const float* x, float* y, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += s * x[i];
}

// Attention in blocks (attn_blocks.h): 4 x 2 pairs and 4 rows x 16 columns a pass (the 16 registers).
void attn_scores_avx2(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n, float* out,
                      int64_t ldo) {
  attn_scores_blocks<Avx2Vec, 4, 2>(q, nq, k, nk, n, out, ldo);
}
void attn_values_avx2(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                      float* const* o) {
  attn_values_blocks<Avx2Vec, 4, 2>(s, lds, nq, v, nk, n, o);
}

}  // namespace

// Also the AVX-512 table's (kernels_avx512.cc): every AVX-512 CPU has AVX2.
void gelu_mul_avx2(const float* g, const float* up, float* out, int64_t n) { gelu_mul_span<Avx2Vec>(g, up, out, n); }
void softcap_avx2(float* x, int64_t n, float cap) { softcap_span<Avx2Vec>(x, n, cap); }

// Called only after kernels_generic.cc checked cpuid.
const KernelTable* avx2_table() {
  static const KernelTable t{"avx2", quantize_row_avx2, qgemm_avx2, dgemm_avx2, dot_avx2, axpy_avx2, gelu_mul_avx2, softcap_avx2,
                             attn_scores_avx2, attn_values_avx2};
  return &t;
}

}  // namespace g4::cpu
