#include "quant/f16_offsets.h"

#include <cmath>
#include <limits>

namespace g4 {

namespace {

uint16_t bits_of(DType t, float v) { return t == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v); }
float value_of(DType t, uint16_t b) { return t == DType::kBF16 ? bf16_to_f32(b) : f16_to_f32(b); }

}  // namespace

bool f16_exact(double v) {
  if (!std::isfinite(v)) return false;
  const float f = float(v);
  if (double(f) != v) return false;
  return f16_to_f32(f32_to_f16(f)) == f;
}

bool offset_f16_exact(QuantKind k, float s, float z) {
  const double c = k == QuantKind::kInt4 ? 0.0 : 128.0;
  return f16_exact(s) && f16_exact(double(s) * (double(z) + c));
}

float dtype_step(DType t, float v, int dir) {
  // bf16 and f16 are sign-magnitude: order the bit patterns as integers, step, convert back.
  const uint16_t b = bits_of(t, v);
  int key = (b & 0x8000) ? -int(b & 0x7fff) : int(b & 0x7fff);
  key += dir;
  return value_of(t, key < 0 ? uint16_t(0x8000 | -key) : uint16_t(key));
}

bool nearest_exact_zero(DType t, QuantKind k, float s, double target, double lo, double hi, int max_steps, float* z) {
  double best = std::numeric_limits<double>::infinity();
  auto consider = [&](float v) {
    if (!(v >= lo && v <= hi) || !offset_f16_exact(k, s, v)) return;
    const double d = std::fabs(double(v) - target);
    if (d < best) {
      best = d;
      *z = v;
    }
  };
  if (lo <= 0 && hi >= 0) consider(0.0f);
  float up = value_of(t, bits_of(t, float(target))), down = dtype_step(t, up, -1);
  for (int i = 0; i <= max_steps; ++i) {
    const bool up_open = std::isfinite(up) && up <= hi && std::fabs(double(up) - target) < best;
    const bool down_open = std::isfinite(down) && down >= lo && std::fabs(double(down) - target) < best;
    if (!up_open && !down_open) break;
    if (up_open) consider(up);
    if (down_open) consider(down);
    up = dtype_step(t, up, 1);
    down = dtype_step(t, down, -1);
  }
  return std::isfinite(best);
}

}  // namespace g4
