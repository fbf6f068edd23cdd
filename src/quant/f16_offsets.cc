#include "quant/f16_offsets.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>

namespace g4 {

namespace {

uint16_t bits_of(DType t, float v) { return t == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v); }
float value_of(DType t, uint16_t b) { return t == DType::kBF16 ? bf16_to_f32(b) : f16_to_f32(b); }

// bf16 and f16 are sign-magnitude: their bit patterns ordered as integers (-0 and +0 both 0).
int key_of(uint16_t b) { return (b & 0x8000) ? -int(b & 0x7fff) : int(b & 0x7fff); }
uint16_t bits_of_key(int key) { return key < 0 ? uint16_t(0x8000 | -key) : uint16_t(key); }

}  // namespace

bool f16_exact(double v) {
  const double a = std::fabs(v);
  if (a == 0) return true;
  if (!(a <= 65504.0)) return false;  // also NaN
  if (a >= 0x1p-14) {                 // normal f16: 11 significant bits, so the low 42 of double's 52 are zero
    uint64_t u;
    std::memcpy(&u, &a, 8);
    return (u & ((uint64_t(1) << 42) - 1)) == 0;
  }
  const double q = a * 0x1p24;  // subnormal f16: a multiple of 2^-24
  return q == std::floor(q);
}

bool offset_f16_exact(QuantKind k, float s, float z) {
  const double c = k == QuantKind::kInt4 ? 0.0 : 128.0;
  return f16_exact(s) && f16_exact(double(s) * (double(z) + c));
}

float dtype_step(DType t, float v, int dir) { return value_of(t, bits_of_key(key_of(bits_of(t, v)) + dir)); }

bool nearest_exact_zero(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, float* z) {
  if (!f16_exact(s) || s == 0) return false;
  const double c = k == QuantKind::kInt4 ? 0.0 : 128.0, sd = s;
  double best = std::numeric_limits<double>::infinity();
  auto consider = [&](double v) {
    const float f = float(v);
    if (double(f) != v || !(v >= lo && v <= hi) || value_of(t, bits_of(t, f)) != f || !f16_exact(sd * (v + c))) return;
    const double d = std::fabs(v - target);
    if (d < best) {
      best = d;
      *z = f;
    }
  };
  if (lo <= 0 && hi >= 0) consider(0.0);
  // s = S * 2^e with S odd: s * y is an f16 number when y = n * 2^g with S * n < 2^11 (and in f16's range), so the
  // offsets y = z + c to try are the multiples n * 2^g, n <= M, nearest to target + c on the finest grids that
  // reach it. (A bf16 zero point also needs n within 8 bits, an f16 one within 11.)
  uint64_t bits;  // s > 0 is an f16 number: its odd part is that of the double's significand
  std::memcpy(&bits, &sd, 8);
  const uint64_t mant = (bits & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
  const uint64_t odd = mant >> __builtin_ctzll(mant);
  const double m = double(std::min<uint64_t>(2047 / odd, t == DType::kBF16 ? 255 : 2047));
  const double y = std::fabs(target + c), sign = target + c < 0 ? -1.0 : 1.0;
  if (y > 0 && std::isfinite(y)) {
    int k;  // the finest grid 2^g0 whose n <= m reach y: g0 = ceil(log2(y / m))
    const double f = std::frexp(y / m, &k);
    const int g0 = f == 0.5 ? k - 1 : k;
    for (int g = g0 - 1; g <= g0 + 1; ++g) {
      const double q = std::ldexp(1.0, g), n = std::floor(y / q);
      consider(sign * std::min(n, m) * q - c);
      consider(sign * std::min(n + 1, m) * q - c);
    }
    // Offsets below f16's normal range are the multiples of 2^-24: y on the grid 2^-24 * odd / s (a power of two).
    const double q = 0x1p-24 * double(odd) / sd, n = std::floor(y / q);
    consider(sign * n * q - c);
    consider(sign * (n + 1) * q - c);
  }
  // Those grids hold every candidate for int4 with offsets in f16's normal range. Otherwise (int8's shifted codes,
  // subnormal offsets) also the values of t nearest to target, one by one.
  if (std::isfinite(best) || (c == 0 && sd * std::max(std::fabs(lo), std::fabs(hi)) >= 0x1p-14)) return std::isfinite(best);
  const int start = key_of(bits_of(t, float(target)));
  for (int i = 0; i <= max_steps; ++i) {
    const int ku = start + i, kd = start - 1 - i;  // beyond the largest magnitude: closed (NaN)
    const float up = ku <= 0x7fff ? value_of(t, bits_of_key(ku)) : NAN;
    const float down = kd >= -0x7fff ? value_of(t, bits_of_key(kd)) : NAN;
    const bool up_open = up <= hi && std::fabs(double(up) - target) < best;  // false for NaN
    const bool down_open = down >= lo && std::fabs(double(down) - target) < best;
    if (!up_open && !down_open) break;
    if (up_open) consider(up);
    if (down_open) consider(down);
  }
  return std::isfinite(best);
}

}  // namespace g4
