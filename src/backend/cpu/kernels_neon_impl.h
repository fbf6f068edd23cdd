// ARM NEON kernels, included by exactly two files: kernels_neon.cc (baseline armv8-a, dot products by
// smull + pairwise adds) and kernels_neon_dot.cc (G4_NEON_DOT=1, compiled with +dotprod: sdot). The
// dotprod table is handed out only after a HWCAP_ASIMDDP check (kernels_generic.cc).
// Integer path over the lane-major layout of cpu_weight.h: a 16-byte register covers 4 groups x 4
// elements, so one int32 lane accumulates one 32-element group over the block's 8 steps. Weight codes
// enter as signed bytes: int4 codes u in 0..15 as they are, int8 codes as c = u - 128 (xor 0x80), so
// the zero term uses zu' = zu - 128 for int8 (zero for symmetric int8: no zero term at all).
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/attn_blocks.h"
#include "backend/cpu/kernel_loops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"

#ifndef G4_NEON_DOT
#error "define G4_NEON_DOT (0 or 1) before including kernels_neon_impl.h"
#endif

namespace g4::cpu {

namespace {

// acc[i] += sum_{b<4} w[4i + b] * x[4i + b]
inline int32x4_t dot4(int32x4_t acc, int8x16_t w, int8x16_t x) {
#if G4_NEON_DOT
  return vdotq_s32(acc, w, x);
#else
  // |w x| <= 128 * 127, so a pair sum fits int16; vpaddq pairs bytes (2i, 2i+1), vpadalq then (4i .. 4i+3).
  const int16x8_t p0 = vmull_s8(vget_low_s8(w), vget_low_s8(x));
  const int16x8_t p1 = vmull_high_s8(w, x);
  return vpadalq_s16(acc, vpaddq_s16(p0, p1));
#endif
}

template <ScaleType ST>
inline float32x4_t load_scales(const uint8_t* p) {
  if constexpr (ST == ScaleType::kF32) {
    return vld1q_f32(reinterpret_cast<const float*>(p));
  } else if constexpr (ST == ScaleType::kF16) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
  } else {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
}

void quantize_row_neon(const float* x, int64_t cols, QAct& a, int64_t t) {
  int8_t* q = reinterpret_cast<int8_t*>(a.qa.data()) + t * a.cols_p;
  float* sa = a.sa.data() + t * a.groups;
  float* asum = a.asum.data() + t * a.groups;
  alignas(16) float tail[32];
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t k0 = g * 32;
    const float* p = x + k0;
    if (k0 + 32 > cols) {
      std::memset(tail, 0, sizeof(tail));
      if (k0 < cols) std::memcpy(tail, x + k0, size_t(cols - k0) * 4);
      p = tail;
    }
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < 8; ++i) {
      v[i] = vld1q_f32(p + 4 * i);
      m = vmaxq_f32(m, vabsq_f32(v[i]));
    }
    const float amax = vmaxvq_f32(m);
    const float32x4_t vi = vdupq_n_f32(amax > 0 ? 127.0f / amax : 0.0f);
    int32x4_t iv[8];
    int32x4_t sum = vdupq_n_s32(0);
    for (int i = 0; i < 8; ++i) {
      iv[i] = vcvtnq_s32_f32(vmulq_f32(v[i], vi));  // round to nearest even, as nearbyint
      sum = vaddq_s32(sum, iv[i]);
    }
    alignas(16) int8_t b[32];
    for (int h = 0; h < 2; ++h) {
      const int16x8_t lo = vcombine_s16(vqmovn_s32(iv[4 * h]), vqmovn_s32(iv[4 * h + 1]));
      const int16x8_t hi = vcombine_s16(vqmovn_s32(iv[4 * h + 2]), vqmovn_s32(iv[4 * h + 3]));
      vst1q_s8(b + 16 * h, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    }
    sa[g] = amax / 127.0f;
    asum[g] = sa[g] * float(vaddvq_s32(sum));
    const int64_t base = k0 / 512 * 512, lanes = base + 512 <= a.cols_p ? 16 : 8, gl = (k0 - base) / 32;
    for (int s = 0; s < 8; ++s) std::memcpy(q + base + s * lanes * 4 + gl * 4, b + 4 * s, 4);
  }
}

// One to kTokGroup tokens, as the x86 files' qblock: one 512-element block (FULL: four 4-group
// quarters of one register each) or half block of an R-row tile for TT tokens, every weight load a
// compile-time offset from the tile's chunk (cpu_weight.h) and done (for int4 also unpacked) once for all
// TT, closed per quarter by accf += s_w * (dot * s_a - zu' * asum) for 4 groups. sub: the first row's place
// in its tile.
template <QuantKind K, ScaleType ST, bool ASYM, int R, int TT, bool FULL>
__attribute__((always_inline)) inline void qblock(const uint8_t* chunk, int64_t sub, const ActBlock& x,
                                                  float32x4_t (&accf)[R][TT]) {
  constexpr bool kInt4 = K == QuantKind::kInt4;
  constexpr bool kZeroTerm = ASYM || kInt4;  // symmetric int8 has zu' = 0
  constexpr int64_t kStep = QPacked::step_bytes_of(FULL), kStride = kTileRows * kStep;
  constexpr int64_t kSS = ST == ScaleType::kF32 ? 4 : 2, kGroupBytes = QPacked::groups_of(FULL) * kSS;
  const uint8_t* const scales = chunk + kTileRows * QPacked::code_bytes_of(K, FULL);
  const uint8_t* const zeros = scales + kTileRows * kGroupBytes;
  const uint8_t* const w0 = chunk + sub * kStep;  // row i's step s, quarter q: w0 + i * kStep + s * kStride + q * 16
  const uint8x16_t m4 = vdupq_n_u8(0x0F), flip = vdupq_n_u8(0x80);
  const float32x4_t zsym = vdupq_n_f32(kInt4 ? 8.0f : 0.0f);
#pragma GCC unroll 4
  for (int q = 0; q < (FULL ? 4 : 2); ++q) {
    const int8_t* const xa = x.ac + q * 16;  // token j's step s: xa + j * x.ac_ld + s * kStep
    int32x4_t acc[R][TT];
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < TT; ++j) acc[i][j] = vdupq_n_s32(0);
    if constexpr (kInt4) {
#pragma GCC unroll 4
      for (int s = 0; s < 4; ++s) {
        int8x16_t lo[R], hi[R];
        for (int i = 0; i < R; ++i) {
          const uint8x16_t c = vld1q_u8(w0 + i * kStep + s * kStride + q * 16);
          lo[i] = vreinterpretq_s8_u8(vandq_u8(c, m4));
          hi[i] = vreinterpretq_s8_u8(vshrq_n_u8(c, 4));
        }
        for (int j = 0; j < TT; ++j) {
          const int8x16_t xl = vld1q_s8(xa + j * x.ac_ld + s * kStep), xh = vld1q_s8(xa + j * x.ac_ld + (s + 4) * kStep);
          for (int i = 0; i < R; ++i) acc[i][j] = dot4(dot4(acc[i][j], lo[i], xl), hi[i], xh);
        }
      }
    } else {
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        int8x16_t c[R];
        for (int i = 0; i < R; ++i) c[i] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w0 + i * kStep + s * kStride + q * 16), flip));
        for (int j = 0; j < TT; ++j) {
          const int8x16_t xv = vld1q_s8(xa + j * x.ac_ld + s * kStep);
          for (int i = 0; i < R; ++i) acc[i][j] = dot4(acc[i][j], c[i], xv);
        }
      }
    }
    float32x4_t sw[R], zw[R];
    for (int i = 0; i < R; ++i) {
      sw[i] = load_scales<ST>(scales + (sub + i) * kGroupBytes + q * 4 * kSS);
      // Asymmetric zero points are stored in source units (zoff excluded): exactly zu' for both kinds.
      zw[i] = ASYM ? load_scales<ST>(zeros + (sub + i) * kGroupBytes + q * 4 * kSS) : zsym;
    }
    for (int j = 0; j < TT; ++j) {
      const float32x4_t vsa = vld1q_f32(x.sa + j * x.g_ld + q * 4), vas = vld1q_f32(x.as + j * x.g_ld + q * 4);
      for (int i = 0; i < R; ++i) {
        float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc[i][j]), vsa);
        if constexpr (kZeroTerm) v = vfmsq_f32(v, zw[i], vas);
        accf[i][j] = vfmaq_f32(accf[i][j], v, sw[i]);
      }
    }
  }
}

// The tile walk (kernel_loops.h) takes the tokens 2 at a time, as on AVX2 (unmeasured on ARM).
constexpr int kTokGroup = 2;

// 4-wide f32 vectors: the tile walk's accumulators and the dense GEMM (kernel_loops.h).
struct NeonVec {
  using Vec = float32x4_t;
  static constexpr int64_t kWidth = 4;
  static int64_t prefetch_ahead() { return 0; }  // kernel_loops.h walk_tiles
  static Vec zero() { return vdupq_n_f32(0.0f); }
  static Vec load_x(const float* p) { return vld1q_f32(p); }
  template <DenseType DT>
  static Vec load_w(const uint8_t* row, int64_t k) {
    if constexpr (DT == DenseType::kF32) return vld1q_f32(reinterpret_cast<const float*>(row) + k);
    else return load_scales<DT == DenseType::kF16 ? ScaleType::kF16 : ScaleType::kBF16>(row + k * 2);
  }
  static Vec fma(Vec a, Vec b, Vec acc) { return vfmaq_f32(acc, a, b); }
  static float hsum(Vec v) { return vaddvq_f32(v); }
  // For vec_math.h.
  static Vec set(float v) { return vdupq_n_f32(v); }
  static Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
  static Vec sub(Vec a, Vec b) { return vsubq_f32(a, b); }
  static Vec mul(Vec a, Vec b) { return vmulq_f32(a, b); }
  static Vec div(Vec a, Vec b) { return vdivq_f32(a, b); }
  static Vec min(Vec a, Vec b) { return vminq_f32(a, b); }
  static Vec max(Vec a, Vec b) { return vmaxq_f32(a, b); }
  static Vec round(Vec a) { return vrndnq_f32(a); }
  static Vec exp2i(Vec n) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23)); }
  static void store(float* p, Vec v) { vst1q_f32(p, v); }
};

void qgemm_neon(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dispatch_quant(w, [&]<QuantKind K, ScaleType ST, bool ASYM>() {
    const auto block = [&]<int R, int TT, bool FULL>(const uint8_t* chunk, int64_t sub, const ActBlock& x,
                                                     float32x4_t (&accf)[R][TT]) {
      qblock<K, ST, ASYM, R, TT, FULL>(chunk, sub, x, accf);
    };
    walk_rows<NeonVec, kTokGroup>(w, a, y, ldy, r0, r1, block);
  });
}

void dgemm_neon(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  dense_gemm<NeonVec, 4>(w, x, T, y, ldy, r0, r1);
}

float dot_neon(const float* a, const float* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  float s = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void gelu_mul_neon(const float* g, const float* up, float* out, int64_t n) { gelu_mul_span<NeonVec>(g, up, out, n); }
void softcap_neon(float* x, int64_t n, float cap) { softcap_span<NeonVec>(x, n, cap); }

void axpy_neon(float s, const float* x, float* y, int64_t n) {
  const float32x4_t vs = vdupq_n_f32(s);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), vs, vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] += s * x[i];
}

// Attention in blocks (attn_blocks.h): 4 x 4 pairs and 4 rows x 16 columns a pass (32 registers).
void attn_scores_neon(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n, float* out,
                      int64_t ldo) {
  attn_scores_blocks<NeonVec, 4, 4>(q, nq, k, nk, n, out, ldo);
}
void attn_values_neon(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                      float* const* o) {
  attn_values_blocks<NeonVec, 4, 4>(s, lds, nq, v, nk, n, o);
}

}  // namespace

}  // namespace g4::cpu
