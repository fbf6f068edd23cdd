#include "base/dtype.h"

#include <cmath>

#include "base/error.h"

namespace g4 {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF64: case DType::kI64: return 8;
    case DType::kF32: case DType::kI32: case DType::kU32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: return 2;
    case DType::kI8: case DType::kU8: case DType::kBool: return 1;
  }
  return 0;
}

std::string dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
    case DType::kU32: return "U32";
  }
  return "?";
}

bool parse_safetensors_dtype(std::string_view s, DType* out) {
  static const struct { const char* name; DType t; } kNames[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
      {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16},   {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}, {"U32", DType::kU32}};
  for (const auto& n : kNames)
    if (s == n.name) { *out = n.t; return true; }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  float mag;
  if (exp == 0) mag = std::ldexp(float(man), -24);                       // zero or subnormal
  else if (exp == 31) mag = man ? NAN : INFINITY;
  else mag = std::ldexp(float(man | 0x400), int(exp) - 25);
  uint32_t u;
  std::memcpy(&u, &mag, 4);
  u |= sign;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
  if (a < 6.103515625e-05f) {                // subnormal range: quantum 2^-24
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  int e;
  float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  uint32_t mant = uint32_t(std::nearbyint(m * 2048.0f));  // 11 significant bits
  if (mant == 2048) { mant = 1024; ++e; }
  const uint32_t exp = uint32_t(e - 1 + 15);
  if (exp >= 31) return sign | 0x7c00;
  return sign | uint16_t((exp << 10) | (mant & 0x3ff));
}

void convert_to_f32(DType t, const void* src, size_t n, float* dst) {
  switch (t) {
    case DType::kF32: std::memcpy(dst, src, n * 4); return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) { uint16_t v; std::memcpy(&v, s + i, 2); dst[i] = bf16_to_f32(v); }
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) { uint16_t v; std::memcpy(&v, s + i, 2); dst[i] = f16_to_f32(v); }
      return;
    }
    case DType::kF64: {
      const char* s = static_cast<const char*>(src);
      for (size_t i = 0; i < n; ++i) { double v; std::memcpy(&v, s + 8 * i, 8); dst[i] = float(v); }
      return;
    }
    case DType::kI32: {
      const char* s = static_cast<const char*>(src);
      for (size_t i = 0; i < n; ++i) { int32_t v; std::memcpy(&v, s + 4 * i, 4); dst[i] = float(v); }
      return;
    }
    case DType::kI8: {
      const int8_t* s = static_cast<const int8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
      return;
    }
    case DType::kU8: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
      return;
    }
    default: throw Error("cannot convert dtype " + dtype_name(t) + " to f32");
  }
}

}  // namespace g4
