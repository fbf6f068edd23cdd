// Element types of stored tensors and the scalar conversions between them. bf16 and f16 are kept as
// raw uint16_t bit patterns; conversion to f32 is exact, conversion from f32 rounds to nearest even.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace g4 {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kU32 };

size_t dtype_size(DType t);
std::string dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...
bool parse_safetensors_dtype(std::string_view s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of type t at src to f32. Supports F32, F16, BF16, F64, I32, I8, U8.
void convert_to_f32(DType t, const void* src, size_t n, float* dst);

}  // namespace g4
