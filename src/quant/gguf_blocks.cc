// GGUF block formats: reference dequantization and conversion to QuantWeight (see gguf_blocks.h).
// This file is compiled with -ffp-contract=off: the reference must round after every multiply, as
// llama.cpp's scalar code does, or it would stop being bit-identical on FMA targets.
#include "quant/gguf_blocks.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

#include "base/dtype.h"
#include "base/error.h"
#include "base/thread_pool.h"

namespace g4 {

namespace {

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }

// Q4_K: the 6-bit (scale, min) pair of sub-block j (0..7) from the 12 packed bytes s.
void q4k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = uint8_t((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    *m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q6_K: the 6-bit code (0..63) of element e (0..255) of a block, and its 16-element sub-block index.
// Layout: two halves of 128; in a half, l in 0..31 and quarter c in 0..3 give element 32c + l, whose low
// 4 bits are ql[l + 32*(c&1)] (low nibble for c < 2, high for c >= 2) and high 2 bits qh[l] >> 2c.
int q6k_code(const uint8_t* blk, int e) {
  const uint8_t* ql = blk + 64 * (e / 128);
  const uint8_t* qh = blk + 128 + 32 * (e / 128);
  const int w = e % 128, c = w / 32, l = w % 32;
  const uint8_t lo = ql[l + 32 * (c & 1)];
  const int low = (c < 2) ? (lo & 15) : (lo >> 4);
  const int high = (qh[l] >> (2 * c)) & 3;
  return low | (high << 4);
}

// Q5_0 / Q5_1: the 5-bit code (0..31) of element i (0..31) of a block. Element j < 16 takes the low
// nibble of qs[j], element 16 + j the high nibble; bit 4 of element i is bit i of the little-endian
// 32-bit qh.
int q5_code(const uint8_t* qh, const uint8_t* qs, int i) {
  const uint32_t h = uint32_t(qh[0]) | (uint32_t(qh[1]) << 8) | (uint32_t(qh[2]) << 16) | (uint32_t(qh[3]) << 24);
  const int low = i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4);
  return low | int(((h >> i) & 1) << 4);
}

// Q4_0 / Q4_1 nibbles of one block (element i < 16 low nibble of qs[i], 16 + i its high nibble) into
// format.h order: byte j holds element 2j low and 2j + 1 high.
void q4_nibbles_to_format(const uint8_t* qs, uint8_t* dst) {
  uint8_t nib[32];
  for (int i = 0; i < 16; ++i) {
    nib[i] = qs[i] & 15;
    nib[16 + i] = qs[i] >> 4;
  }
  for (int j = 0; j < 16; ++j) dst[j] = uint8_t(nib[2 * j] | (nib[2 * j + 1] << 4));
}

// Q4_1 / Q5_1 group: w = q*d + m as format.h's (q - z) * s with s = d, z = -m/d. A zero d makes every
// element m whatever its code; that is kept exact with codes 0, zero point 1 and scale -m: (0 - 1) * -m.
// Returns false for that case so the caller zeroes the codes.
bool affine_scale_zero(float d, float m, float* s, float* z) {
  if (d != 0.0f) {
    *s = d;
    *z = -m / d;
    return true;
  }
  *s = -m;
  *z = 1.0f;
  return false;
}

}  // namespace

GgmlTypeInfo ggml_type_info(uint32_t t) {
  switch (GgmlType(t)) {
    case GgmlType::kF32: return {"F32", 1, 4};
    case GgmlType::kF16: return {"F16", 1, 2};
    case GgmlType::kBF16: return {"BF16", 1, 2};
    case GgmlType::kF64: return {"F64", 1, 8};
    case GgmlType::kI8: return {"I8", 1, 1};
    case GgmlType::kI16: return {"I16", 1, 2};
    case GgmlType::kI32: return {"I32", 1, 4};
    case GgmlType::kI64: return {"I64", 1, 8};
    case GgmlType::kQ4_0: return {"Q4_0", 32, 18};
    case GgmlType::kQ4_1: return {"Q4_1", 32, 20};
    case GgmlType::kQ5_0: return {"Q5_0", 32, 22};
    case GgmlType::kQ5_1: return {"Q5_1", 32, 24};
    case GgmlType::kQ8_0: return {"Q8_0", 32, 34};
    case GgmlType::kQ8_1: return {"Q8_1", 32, 36};
    case GgmlType::kQ2_K: return {"Q2_K", 256, 84};
    case GgmlType::kQ3_K: return {"Q3_K", 256, 110};
    case GgmlType::kQ4_K: return {"Q4_K", 256, 144};
    case GgmlType::kQ5_K: return {"Q5_K", 256, 176};
    case GgmlType::kQ6_K: return {"Q6_K", 256, 210};
    case GgmlType::kQ8_K: return {"Q8_K", 256, 292};
    case GgmlType::kIQ2_XXS: return {"IQ2_XXS", 256, 66};
    case GgmlType::kIQ2_XS: return {"IQ2_XS", 256, 74};
    case GgmlType::kIQ3_XXS: return {"IQ3_XXS", 256, 98};
    case GgmlType::kIQ1_S: return {"IQ1_S", 256, 50};
    case GgmlType::kIQ4_NL: return {"IQ4_NL", 32, 18};
    case GgmlType::kIQ3_S: return {"IQ3_S", 256, 110};
    case GgmlType::kIQ2_S: return {"IQ2_S", 256, 82};
    case GgmlType::kIQ4_XS: return {"IQ4_XS", 256, 136};
    case GgmlType::kIQ1_M: return {"IQ1_M", 256, 56};
    case GgmlType::kTQ1_0: return {"TQ1_0", 256, 54};
    case GgmlType::kTQ2_0: return {"TQ2_0", 256, 66};
    case GgmlType::kMXFP4: return {"MXFP4", 32, 17};
  }
  return {nullptr, 0, 0};
}

std::string ggml_type_name(uint32_t t) {
  const GgmlTypeInfo i = ggml_type_info(t);
  return i.name ? i.name : "type " + std::to_string(t);
}

bool gguf_quant_supported(GgmlType t) {
  return t == GgmlType::kQ8_0 || t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ5_0 ||
         t == GgmlType::kQ5_1 || t == GgmlType::kQ4_K || t == GgmlType::kQ6_K;
}

void dequantize_gguf_row(GgmlType type, const uint8_t* row, int64_t cols, float* dst) {
  const GgmlTypeInfo info = ggml_type_info(uint32_t(type));
  G4_CHECK(info.name && cols % info.block_elems == 0, "dequantize_gguf_row: bad type or row length");
  const int64_t nb = cols / info.block_elems;
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, row, size_t(cols) * 4); return;
    case GgmlType::kF16: convert_to_f32(DType::kF16, row, size_t(cols), dst); return;
    case GgmlType::kBF16: convert_to_f32(DType::kBF16, row, size_t(cols), dst); return;
    case GgmlType::kQ8_0:
      for (int64_t b = 0; b < nb; ++b, row += kQ8_0Bytes) {
        const float d = load_f16(row);
        for (int i = 0; i < 32; ++i) *dst++ = float(int8_t(row[2 + i])) * d;
      }
      return;
    case GgmlType::kQ4_0:
      for (int64_t b = 0; b < nb; ++b, row += kQ4_0Bytes) {
        const float d = load_f16(row);
        const uint8_t* qs = row + 2;
        for (int i = 0; i < 16; ++i) dst[i] = float((qs[i] & 15) - 8) * d;
        for (int i = 0; i < 16; ++i) dst[16 + i] = float((qs[i] >> 4) - 8) * d;
        dst += 32;
      }
      return;
    case GgmlType::kQ4_1:
      for (int64_t b = 0; b < nb; ++b, row += kQ4_1Bytes) {
        const float d = load_f16(row), m = load_f16(row + 2);
        const uint8_t* qs = row + 4;
        for (int i = 0; i < 16; ++i) dst[i] = float(qs[i] & 15) * d + m;
        for (int i = 0; i < 16; ++i) dst[16 + i] = float(qs[i] >> 4) * d + m;
        dst += 32;
      }
      return;
    case GgmlType::kQ5_0:
      for (int64_t b = 0; b < nb; ++b, row += kQ5_0Bytes) {
        const float d = load_f16(row);
        for (int i = 0; i < 32; ++i) *dst++ = float(q5_code(row + 2, row + 6, i) - 16) * d;
      }
      return;
    case GgmlType::kQ5_1:
      for (int64_t b = 0; b < nb; ++b, row += kQ5_1Bytes) {
        const float d = load_f16(row), m = load_f16(row + 2);
        for (int i = 0; i < 32; ++i) *dst++ = float(q5_code(row + 4, row + 8, i)) * d + m;
      }
      return;
    case GgmlType::kQ4_K:
      for (int64_t b = 0; b < nb; ++b, row += kQ4_KBytes) {
        const float d = load_f16(row), dmin = load_f16(row + 2);
        const uint8_t* s = row + 4;
        const uint8_t* qs = row + 16;
        for (int c = 0; c < 4; ++c) {
          for (int half = 0; half < 2; ++half) {
            uint8_t sc, m;
            q4k_scale_min(2 * c + half, s, &sc, &m);
            const float d1 = d * float(sc), m1 = dmin * float(m);
            for (int l = 0; l < 32; ++l) {
              const uint8_t byte = qs[32 * c + l];
              *dst++ = d1 * float(half ? (byte >> 4) : (byte & 15)) - m1;
            }
          }
        }
      }
      return;
    case GgmlType::kQ6_K:
      for (int64_t b = 0; b < nb; ++b, row += kQ6_KBytes) {
        const int8_t* sc = reinterpret_cast<const int8_t*>(row + 192);
        const float d = load_f16(row + 208);
        for (int e = 0; e < 256; ++e) {
          // e = 128*h + 32*c + l lives in sub-block 8h + 2c + l/16.
          const int sub = 8 * (e / 128) + 2 * ((e % 128) / 32) + (e % 32) / 16;
          *dst++ = d * float(sc[sub]) * float(q6k_code(row, e) - 32);
        }
      }
      return;
    default:
      throw Error("GGUF type " + ggml_type_name(uint32_t(type)) + " cannot be dequantized (supported: F32, F16, "
                  "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K)");
  }
}

namespace {

// Runs fn(b0, b1) over [0, n) cut into ranges, one per thread (up to 16, at least 4,096 blocks each; blocks
// are independent, so the result does not depend on the cut): a 17 GB GGUF converts in seconds.
void for_blocks(size_t n, const std::function<void(size_t, size_t)>& fn) {
  const int64_t hw = std::max(1u, std::thread::hardware_concurrency());
  const int64_t nt = std::min<int64_t>({hw, 16, std::max<int64_t>(1, int64_t(n / 4096))});
  split_run(int64_t(n), nt, [&](int64_t b0, int64_t b1) { fn(size_t(b0), size_t(b1)); });
}

}  // namespace

std::unique_ptr<OwnedQuantWeight> convert_gguf_quant(GgmlType type, const uint8_t* data, int64_t rows,
                                                     int64_t cols, const std::string& name) {
  if (!gguf_quant_supported(type))
    throw Error(name + ": GGUF type " + ggml_type_name(uint32_t(type)) +
                " is not supported (quantized types read: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K)");
  const GgmlTypeInfo info = ggml_type_info(uint32_t(type));
  if (rows <= 0 || cols <= 0 || cols % info.block_elems != 0)
    throw Error(name + ": " + info.name + " tensor of [" + std::to_string(rows) + ", " + std::to_string(cols) +
                "] does not hold whole blocks of " + std::to_string(info.block_elems));
  auto out = std::make_unique<OwnedQuantWeight>();
  QuantWeight& q = out->q;
  q.rows = rows;
  q.cols = cols;
  const size_t n = checked_mul(uint64_t(rows), uint64_t(cols), name + ": element count");
  const int64_t nb = cols / info.block_elems;  // blocks per row
  const size_t nblocks = size_t(rows) * size_t(nb);

  switch (type) {
    case GgmlType::kQ8_0: {
      q.kind = QuantKind::kInt8;
      q.group_size = 32;
      q.scale_dtype = DType::kF16;
      out->codes.resize(n);
      out->scales.resize(nblocks * 2);
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * kQ8_0Bytes;
          std::memcpy(&out->scales[2 * b], blk, 2);
          std::memcpy(&out->codes[32 * b], blk + 2, 32);
        }
      });
      break;
    }
    case GgmlType::kQ4_0: {
      q.kind = QuantKind::kInt4;
      q.group_size = 32;
      q.scale_dtype = DType::kF16;
      out->codes.resize(n / 2);
      out->scales.resize(nblocks * 2);
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * kQ4_0Bytes;
          std::memcpy(&out->scales[2 * b], blk, 2);
          q4_nibbles_to_format(blk + 2, &out->codes[16 * b]);
        }
      });
      break;
    }
    case GgmlType::kQ5_0: {
      q.kind = QuantKind::kInt8;
      q.group_size = 32;
      q.scale_dtype = DType::kF16;
      out->codes.resize(n);
      out->scales.resize(nblocks * 2);
      auto* codes = reinterpret_cast<int8_t*>(out->codes.data());
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * kQ5_0Bytes;
          std::memcpy(&out->scales[2 * b], blk, 2);
          for (int i = 0; i < 32; ++i) codes[32 * b + size_t(i)] = int8_t(q5_code(blk + 2, blk + 6, i) - 16);
        }
      });
      break;
    }
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1: {
      const bool q4 = type == GgmlType::kQ4_1;
      q.kind = q4 ? QuantKind::kInt4 : QuantKind::kInt8;
      q.group_size = 32;
      q.scale_dtype = DType::kF32;
      out->codes.resize(q4 ? n / 2 : n);
      out->scales.resize(nblocks * 4);
      out->zeros.resize(nblocks * 4);
      auto* scales = reinterpret_cast<float*>(out->scales.data());
      auto* zeros = reinterpret_cast<float*>(out->zeros.data());
      const size_t bb = size_t(q4 ? kQ4_1Bytes : kQ5_1Bytes), cb = q4 ? 16 : 32;
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * bb;
          uint8_t* dst = &out->codes[cb * b];
          if (!affine_scale_zero(load_f16(blk), load_f16(blk + 2), &scales[b], &zeros[b])) {
            std::memset(dst, 0, cb);
          } else if (q4) {
            q4_nibbles_to_format(blk + 4, dst);
          } else {
            for (int i = 0; i < 32; ++i) dst[i] = uint8_t(q5_code(blk + 4, blk + 8, i));  // 0..31: same as int8
          }
        }
      });
      break;
    }
    case GgmlType::kQ6_K: {
      q.kind = QuantKind::kInt8;
      q.group_size = 16;
      q.scale_dtype = DType::kF32;
      out->codes.resize(n);
      out->scales.resize(nblocks * 16 * 4);
      auto* scales = reinterpret_cast<float*>(out->scales.data());
      auto* codes = reinterpret_cast<int8_t*>(out->codes.data());
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * kQ6_KBytes;
          const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
          const float d = load_f16(blk + 208);
          for (int s = 0; s < 16; ++s) scales[16 * b + size_t(s)] = d * float(sc[s]);  // f16 x int8: exact in f32
          for (int e = 0; e < 256; ++e) codes[256 * b + size_t(e)] = int8_t(q6k_code(blk, e) - 32);
        }
      });
      break;
    }
    case GgmlType::kQ4_K: {
      q.kind = QuantKind::kInt4;
      q.group_size = 32;
      q.scale_dtype = DType::kF32;
      out->codes.resize(n / 2);
      out->scales.resize(nblocks * 8 * 4);
      out->zeros.resize(nblocks * 8 * 4);
      auto* scales = reinterpret_cast<float*>(out->scales.data());
      auto* zeros = reinterpret_cast<float*>(out->zeros.data());
      for_blocks(nblocks, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
          const uint8_t* blk = data + b * kQ4_KBytes;
          const float d = load_f16(blk), dmin = load_f16(blk + 2);
          for (int g = 0; g < 8; ++g) {
            uint8_t sc, m;
            q4k_scale_min(g, blk + 4, &sc, &m);
            const float s = d * float(sc), mn = dmin * float(m);  // both exact in f32
            const uint8_t* qs = blk + 16 + 32 * (g / 2);
            uint8_t* dst = &out->codes[128 * b + 16 * size_t(g)];
            const size_t gi = 8 * b + size_t(g);
            if (s != 0.0f) {
              // w = s*q - mn = (q - mn/s) * s: the zero point in code units.
              scales[gi] = s;
              zeros[gi] = mn / s;
              for (int j = 0; j < 16; ++j) {
                const int sh = (g & 1) ? 4 : 0;
                dst[j] = uint8_t(((qs[2 * j] >> sh) & 15) | (((qs[2 * j + 1] >> sh) & 15) << 4));
              }
            } else {
              // Scale 0: every element of the group is -mn whatever its code. Keep that exact by rewriting
              // the codes to 0 with zero point 1 and scale mn: (0 - 1) * mn.
              scales[gi] = mn;
              zeros[gi] = 1.0f;
              std::memset(dst, 0, 16);
            }
          }
        }
      });
      break;
    }
    default:
      G4_CHECK(false, "unreachable");
  }
  q.codes = out->codes.data();
  q.scales = out->scales.data();
  q.zeros = out->zeros.empty() ? nullptr : out->zeros.data();
  validate(q, name);
  return out;
}

}  // namespace g4
