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

namespace {

// The zero points in [lo, hi] of dtype t with an f16-exact offset for scale s (an f16 number) that lie on the
// grids nearest to target; each goes to `take` (in a fixed order) with its distance to target. Returns false
// when s is not usable.
template <class Take>
bool grid_candidates(DType t, QuantKind k, float s, double target, double lo, double hi, Take&& take) {
  if (!f16_exact(s) || s == 0) return false;
  const double c = k == QuantKind::kInt4 ? 0.0 : 128.0, sd = s;
  auto consider = [&](double v) {
    const float f = float(v);
    if (double(f) != v || !(v >= lo && v <= hi) || value_of(t, bits_of(t, f)) != f || !f16_exact(sd * (v + c))) return;
    take(v, f, std::fabs(v - target));
  };
  consider(0.0);
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
    int e;  // the finest grid 2^g0 whose n <= m reach y: g0 = ceil(log2(y / m))
    const double f = std::frexp(y / m, &e);
    const int g0 = f == 0.5 ? e - 1 : e;
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
  return true;
}

// Whether the grids hold every candidate in [lo, hi]: int4 with offsets in f16's normal range. Otherwise
// (int8's shifted codes, subnormal offsets) the values of t nearest to target are also tried one by one.
bool grids_suffice(QuantKind k, float s, double lo, double hi) {
  return k == QuantKind::kInt4 && double(s) * std::max(std::fabs(lo), std::fabs(hi)) >= 0x1p-14;
}

// After the grids found nothing in [lo, hi] where they do not suffice: the values of t nearest to target, at
// most max_steps on either side, into best / z.
void step_candidates(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, double& best,
                     float* z) {
  const auto take = [&](double v, float f, double d) {
    if (v >= lo && v <= hi && d < best) {
      best = d;
      *z = f;
    }
  };
  const double c = k == QuantKind::kInt4 ? 0.0 : 128.0, sd = s;
  const int start = key_of(bits_of(t, float(target)));
  for (int i = 0; i <= max_steps; ++i) {
    const int ku = start + i, kd = start - 1 - i;  // beyond the largest magnitude: closed (NaN)
    const float up = ku <= 0x7fff ? value_of(t, bits_of_key(ku)) : NAN;
    const float down = kd >= -0x7fff ? value_of(t, bits_of_key(kd)) : NAN;
    const bool up_open = up <= hi && std::fabs(double(up) - target) < best;  // false for NaN
    const bool down_open = down >= lo && std::fabs(double(down) - target) < best;
    if (!up_open && !down_open) break;
    if (up_open && f16_exact(sd * (double(up) + c))) take(double(up), up, std::fabs(double(up) - target));
    if (down_open && f16_exact(sd * (double(down) + c))) take(double(down), down, std::fabs(double(down) - target));
  }
}

}  // namespace

bool nearest_exact_zero(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, float* z) {
  double best = std::numeric_limits<double>::infinity();
  const auto take = [&](double v, float f, double d) {
    if (v >= lo && v <= hi && d < best) {
      best = d;
      *z = f;
    }
  };
  if (!grid_candidates(t, k, s, target, lo, hi, take)) return false;
  if (!std::isfinite(best) && !grids_suffice(k, s, lo, hi)) step_candidates(t, k, s, target, lo, hi, max_steps, best, z);
  return std::isfinite(best);
}

int nearest_exact_zeros(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps,
                        float z[2]) {
  double best[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  const auto take = [&](double v, float f, double d) {
    if (v >= lo && v <= target && d < best[0]) best[0] = d, z[0] = f;
    if (v >= target && v <= hi && d < best[1]) best[1] = d, z[1] = f;
  };
  if (!grid_candidates(t, k, s, target, lo, hi, take)) return 0;
  int found = 0;
  for (int side = 0; side < 2; ++side) {
    const double a = side == 0 ? lo : target, b = side == 0 ? target : hi;
    if (!std::isfinite(best[side]) && !grids_suffice(k, s, a, b))
      step_candidates(t, k, s, target, a, b, max_steps, best[side], &z[side]);
    if (std::isfinite(best[side])) found |= 1 << side;
  }
  return found;
}

}  // namespace g4
