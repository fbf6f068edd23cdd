// GGUF block formats: converting to QuantWeight and dequantizing with format.h gives the values the
// plain GGUF dequantizer gives: bit for bit for Q8_0, Q4_0, Q5_0 and Q6_K (the arithmetic is the same
// products), and within f32 rounding for Q4_K, Q4_1 and Q5_1 (their zero points dmin*m/(d*sc) and
// -m/d are rounded quotients).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/dtype.h"
#include "base/error.h"
#include "quant/gguf_blocks.h"

namespace g4 {
namespace {

// Random block bytes with a sane f16 scale (and min) so no block decodes to inf/NaN.
std::vector<uint8_t> random_blocks(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  const GgmlTypeInfo info = ggml_type_info(uint32_t(t));
  const size_t nblocks = size_t(rows * cols / info.block_elems);
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(nblocks * size_t(info.block_bytes));
  for (auto& x : b) x = uint8_t(rng());
  std::uniform_real_distribution<float> mag(1e-4f, 0.05f);
  auto put_f16 = [&](uint8_t* p, float v) {
    const uint16_t h = f32_to_f16(v);
    p[0] = uint8_t(h & 255);
    p[1] = uint8_t(h >> 8);
  };
  for (size_t k = 0; k < nblocks; ++k) {
    uint8_t* blk = b.data() + k * size_t(info.block_bytes);
    const float sign = (rng() & 1) ? 1.0f : -1.0f;
    switch (t) {
      case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ5_0: put_f16(blk, sign * mag(rng)); break;
      case GgmlType::kQ4_1: case GgmlType::kQ5_1:
        // d >= 0 as ggml's quantizer writes it, min of either sign; every third block has d = 0 (all
        // elements equal m: the special case).
        put_f16(blk, k % 3 == 1 ? 0.0f : mag(rng));
        put_f16(blk + 2, sign * mag(rng));
        break;
      case GgmlType::kQ4_K:
        put_f16(blk, mag(rng));
        put_f16(blk + 2, mag(rng));
        if (k % 3 == 1) {  // some sub-blocks with scale 0 (and some with min 0): the special case
          blk[4 + 1] &= 0xc0;          // sc of sub-block 1 = 0
          blk[4 + 8 + 1] &= 0xf0;      // sc of sub-block 5: low bits 0 ...
          blk[4 + 1] &= 0x3f;          // ... and high bits (from s[1] >> 6) 0
          blk[4 + 4 + 2] &= 0xc0;      // m of sub-block 2 = 0
        }
        break;
      case GgmlType::kQ6_K: put_f16(blk + 208, sign * mag(rng)); break;
      default: break;
    }
  }
  return b;
}

struct Case {
  GgmlType type;
  int64_t rows, cols;
};

class GgufBlocks : public ::testing::TestWithParam<Case> {};

TEST_P(GgufBlocks, ConvertedDequantizationEqualsDirect) {
  const Case c = GetParam();
  const GgmlTypeInfo info = ggml_type_info(uint32_t(c.type));
  const std::vector<uint8_t> data = random_blocks(c.type, c.rows, c.cols, uint32_t(c.rows * 1000 + c.cols));
  auto q = convert_gguf_quant(c.type, data.data(), c.rows, c.cols, "t");
  ASSERT_EQ(q->q.rows, c.rows);
  ASSERT_EQ(q->q.cols, c.cols);
  const size_t row_bytes = size_t(c.cols / info.block_elems * info.block_bytes);
  std::vector<float> want(size_t(c.cols)), got(size_t(c.cols));
  const bool exact = c.type != GgmlType::kQ4_K && c.type != GgmlType::kQ4_1 && c.type != GgmlType::kQ5_1;
  const double code_max = c.type == GgmlType::kQ5_1 ? 31.0 : 15.0;
  double worst = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    dequantize_gguf_row(c.type, data.data() + size_t(r) * row_bytes, c.cols, want.data());
    dequantize_row(q->q, r, got.data());
    for (int64_t k = 0; k < c.cols; ++k) {
      const float w = want[size_t(k)], g = got[size_t(k)];
      ASSERT_TRUE(std::isfinite(w)) << "reference not finite at row " << r << " col " << k;
      if (exact) {
        ASSERT_EQ(w, g) << info.name << " row " << r << " col " << k;
      } else {
        // Q4_K: w = s*q - mn (Q4_1 / Q5_1: q*d + m). Both paths round a few times on values of size up to
        // code_max*|s| + |z*s|.
        const int64_t G = q->q.groups_per_row(), gi = r * G + k / q->q.group_size;
        const float s = reinterpret_cast<const float*>(q->q.scales)[gi];
        const float z = reinterpret_cast<const float*>(q->q.zeros)[gi];
        const double bound = 8.0 * std::ldexp(1.0, -24) * (code_max * std::fabs(s) + std::fabs(double(z) * s));
        const double err = std::fabs(double(w) - double(g));
        worst = std::max(worst, err);
        ASSERT_LE(err, bound) << info.name << " row " << r << " col " << k << ": direct " << w << " converted " << g;
      }
    }
  }
  if (!exact) std::printf("[ %s %lldx%lld ] worst |converted - direct| = %.3g\n", info.name,
                          (long long)c.rows, (long long)c.cols, worst);
}

INSTANTIATE_TEST_SUITE_P(Types, GgufBlocks,
                         ::testing::Values(Case{GgmlType::kQ8_0, 1, 32}, Case{GgmlType::kQ8_0, 3, 96},
                                           Case{GgmlType::kQ4_0, 1, 32}, Case{GgmlType::kQ4_0, 5, 160},
                                           Case{GgmlType::kQ6_K, 1, 256}, Case{GgmlType::kQ6_K, 3, 768},
                                           Case{GgmlType::kQ4_K, 1, 256}, Case{GgmlType::kQ4_K, 7, 512},
                                           Case{GgmlType::kQ4_1, 1, 32}, Case{GgmlType::kQ4_1, 5, 160},
                                           Case{GgmlType::kQ5_0, 1, 32}, Case{GgmlType::kQ5_0, 4, 192},
                                           Case{GgmlType::kQ5_1, 1, 32}, Case{GgmlType::kQ5_1, 3, 224}));

TEST(GgufBlocks, Q4_0NibbleOrderAndLayout) {
  // One block: d = 1, qs[i] low nibble = i, high nibble = 15 - i. GGUF element i < 16 is i - 8,
  // element 16 + i is 7 - i.
  std::vector<uint8_t> blk(18);
  const uint16_t one = f32_to_f16(1.0f);
  blk[0] = uint8_t(one & 255);
  blk[1] = uint8_t(one >> 8);
  for (int i = 0; i < 16; ++i) blk[2 + size_t(i)] = uint8_t(i | ((15 - i) << 4));
  auto q = convert_gguf_quant(GgmlType::kQ4_0, blk.data(), 1, 32, "t");
  EXPECT_EQ(q->q.kind, QuantKind::kInt4);
  EXPECT_EQ(q->q.zeros, nullptr);
  // format.h byte 0 holds elements 0 (low) and 1 (high): codes 0 and 1.
  EXPECT_EQ(q->codes[0], 0x10);
  // byte 8 holds elements 16 and 17: codes 15 and 14.
  EXPECT_EQ(q->codes[8], 0xef);
  std::vector<float> v(32);
  dequantize_row(q->q, 0, v.data());
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(v[size_t(i)], float(i - 8));
    EXPECT_EQ(v[16 + size_t(i)], float(7 - i));
  }
}

TEST(GgufBlocks, Q5LayoutAndZeroScale) {
  // Q5_0, one block: d = 1, qs[i] low nibble = i, high nibble = 15 - i, qh = 0xA5A5F00F (bit i of the
  // little-endian u32 is bit 4 of element i). Element i < 16 = (i | h_i << 4) - 16, 16 + i =
  // ((15 - i) | h_{16+i} << 4) - 16.
  const uint32_t qh = 0xA5A5F00Fu;
  std::vector<uint8_t> blk(kQ5_0Bytes);
  const uint16_t one = f32_to_f16(1.0f);
  blk[0] = uint8_t(one & 255);
  blk[1] = uint8_t(one >> 8);
  for (int i = 0; i < 4; ++i) blk[2 + size_t(i)] = uint8_t(qh >> (8 * i));
  for (int i = 0; i < 16; ++i) blk[6 + size_t(i)] = uint8_t(i | ((15 - i) << 4));
  std::vector<float> direct(32), conv(32);
  dequantize_gguf_row(GgmlType::kQ5_0, blk.data(), 32, direct.data());
  auto q = convert_gguf_quant(GgmlType::kQ5_0, blk.data(), 1, 32, "t");
  EXPECT_EQ(q->q.describe(), "int8 g32 sym (F16 scales)");
  dequantize_row(q->q, 0, conv.data());
  for (int i = 0; i < 32; ++i) {
    const int low = i < 16 ? i : 15 - (i - 16);
    const int want = (low | int(((qh >> i) & 1) << 4)) - 16;
    EXPECT_EQ(direct[size_t(i)], float(want)) << i;
    EXPECT_EQ(conv[size_t(i)], float(want)) << i;
  }
  // Q5_1 with the same codes, d = 0.5, m = -3: w = q*0.5 - 3. Then d = 0: every element is m exactly.
  std::vector<uint8_t> b1(kQ5_1Bytes);
  const uint16_t half = f32_to_f16(0.5f), m = f32_to_f16(-3.0f);
  b1[0] = uint8_t(half & 255);
  b1[1] = uint8_t(half >> 8);
  b1[2] = uint8_t(m & 255);
  b1[3] = uint8_t(m >> 8);
  std::copy(blk.begin() + 2, blk.end(), b1.begin() + 4);
  auto q1 = convert_gguf_quant(GgmlType::kQ5_1, b1.data(), 1, 32, "t");
  EXPECT_EQ(q1->q.describe(), "int8 g32 asym (F32 scales)");
  dequantize_gguf_row(GgmlType::kQ5_1, b1.data(), 32, direct.data());
  dequantize_row(q1->q, 0, conv.data());
  for (int i = 0; i < 32; ++i) {
    const int low = i < 16 ? i : 15 - (i - 16);
    const float want = float(low | int(((qh >> i) & 1) << 4)) * 0.5f - 3.0f;
    EXPECT_EQ(direct[size_t(i)], want) << i;
    EXPECT_EQ(conv[size_t(i)], want) << i;  // -m/d = 6 is exact here
  }
  b1[0] = b1[1] = 0;
  q1 = convert_gguf_quant(GgmlType::kQ5_1, b1.data(), 1, 32, "t");
  dequantize_row(q1->q, 0, conv.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(conv[size_t(i)], -3.0f) << i;
  // Q4_1, d = 0: the same exact path for int4.
  std::vector<uint8_t> b4(kQ4_1Bytes, 0x5a);
  b4[0] = b4[1] = 0;
  b4[2] = uint8_t(m & 255);
  b4[3] = uint8_t(m >> 8);
  auto q4 = convert_gguf_quant(GgmlType::kQ4_1, b4.data(), 1, 32, "t");
  EXPECT_EQ(q4->q.describe(), "int4 g32 asym (F32 scales)");
  dequantize_row(q4->q, 0, conv.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(conv[size_t(i)], -3.0f) << i;
}

TEST(GgufBlocks, FormatsAreDescribed) {
  std::vector<uint8_t> b(kQ6_KBytes, 0);
  EXPECT_EQ(convert_gguf_quant(GgmlType::kQ6_K, b.data(), 1, 256, "t")->q.describe(), "int8 g16 sym (F32 scales)");
  b.assign(kQ4_KBytes, 0);
  EXPECT_EQ(convert_gguf_quant(GgmlType::kQ4_K, b.data(), 1, 256, "t")->q.describe(), "int4 g32 asym (F32 scales)");
  b.assign(kQ8_0Bytes, 0);
  EXPECT_EQ(convert_gguf_quant(GgmlType::kQ8_0, b.data(), 1, 32, "t")->q.describe(), "int8 g32 sym (F16 scales)");
}

TEST(GgufBlocks, UnsupportedTypesAndGeometryAreErrors) {
  std::vector<uint8_t> b(1024, 0);
  try {
    convert_gguf_quant(GgmlType::kQ5_K, b.data(), 1, 256, "blk.0.attn_q.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_K is not supported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos);
  }
  EXPECT_THROW(convert_gguf_quant(GgmlType::kQ4_K, b.data(), 1, 32, "t"), Error);
  EXPECT_THROW(convert_gguf_quant(GgmlType::kQ8_0, b.data(), 0, 32, "t"), Error);
  EXPECT_EQ(ggml_type_name(12), "Q4_K");
  EXPECT_EQ(ggml_type_name(4), "type 4");
}

}  // namespace
}  // namespace g4
