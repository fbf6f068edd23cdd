// Scalar dtype conversions: exact widening, round-to-nearest-even narrowing, specials.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/dtype.h"
#include "base/error.h"

namespace g4 {
namespace {

TEST(DType, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(73.3212f)), 73.5f);  // the 31B embedding scale (spec 2.2)
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(13.856406f)), 13.875f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(11.313708f)), 11.3125f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // tie rounds to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_TRUE(std::isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
  for (uint32_t h = 0; h < 65536; ++h) {  // every finite bf16 survives a round trip
    const float f = bf16_to_f32(uint16_t(h));
    if (std::isfinite(f)) {
      ASSERT_EQ(f32_to_bf16(f), uint16_t(h)) << h;
    }
  }
}

TEST(DType, F16RoundTripEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), uint16_t(h)) << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // overflow to inf
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
}

TEST(DType, ConvertAndCheckedArithmetic) {
  const uint16_t b[2] = {0x3f80, 0xc000};
  float out[2];
  convert_to_f32(DType::kBF16, b, 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_THROW(convert_to_f32(DType::kBool, b, 1, out), Error);
  EXPECT_THROW(checked_mul(uint64_t(1) << 40, uint64_t(1) << 40, "x"), Error);
  EXPECT_EQ(checked_mul(3, 5, "x"), 15u);
  std::string name;
  DType t;
  EXPECT_TRUE(parse_safetensors_dtype("BF16", &t));
  EXPECT_EQ(t, DType::kBF16);
  EXPECT_FALSE(parse_safetensors_dtype("F8_E4M3", &t));
}

}  // namespace
}  // namespace g4
