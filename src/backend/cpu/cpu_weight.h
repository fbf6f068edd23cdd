// The CPU backend's packed weight layouts and the quantized-activation buffer they are multiplied with.
// Quantized weights (int4/int8, group size a multiple of 32) are stored as UNSIGNED codes u with a zero
// point zu per 32-element group: w = (u - zu) * s. int8 codes are shifted by +128 so both kinds feed the
// u8 x s8 integer dot products (VNNI vpdpbusd, NEON sdot on signed re-centred codes, or scalar).
// Columns are padded to a multiple of 256 (padded groups have scale 0) and grouped into blocks of 16
// groups (512 elements; the last block may have 8 groups) laid out "lane-major": one 32-bit lane per
// group, 4 consecutive elements per step, so one 64-byte load feeds 16 groups and a lane accumulates a
// whole group before the single float scale multiply (see element_pos()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "quant/format.h"

namespace g4::cpu {

enum class ScaleType : uint8_t { kF32, kF16, kBF16 };
enum class DenseType : uint8_t { kF32, kF16, kBF16 };

// 64-byte aligned heap bytes.
struct AlignedBytes {
  std::unique_ptr<uint8_t, void (*)(uint8_t*)> ptr{nullptr, [](uint8_t*) {}};
  size_t size = 0;
  void allocate(size_t n);
  uint8_t* data() const { return ptr.get(); }
};

inline int64_t pad_cols(int64_t cols) { return (cols + 255) / 256 * 256; }

// Byte position of element k of a row (or activation) in the lane-major int8 layout for padded width cp.
// int4 uses the same walk, halved: steps 0..3 in the low nibble, 4..7 in the high nibble (int4_pos).
inline int64_t element_pos(int64_t k, int64_t cp) {
  const int64_t base = k / 512 * 512;
  const int64_t lanes = base + 512 <= cp ? 16 : 8;
  const int64_t e = k - base, g = e / 32, s = (e % 32) / 4, b = e % 4;
  return base + s * lanes * 4 + g * 4 + b;
}
// Byte index and whether the high nibble holds element k, for int4 codes.
inline int64_t int4_pos(int64_t k, int64_t cp, bool* high) {
  const int64_t base = k / 512 * 512;
  const int64_t lanes = base + 512 <= cp ? 16 : 8;
  const int64_t e = k - base, g = e / 32, s = (e % 32) / 4, b = e % 4;
  *high = s >= 4;
  return base / 2 + (s % 4) * lanes * 4 + g * 4 + b;
}

// Quantized weights are tile-interleaved so that a decode tile reads ONE forward stream: rows are grouped
// in tiles of kTileRows (rows padded with all-zero rows to a multiple of it), and for each 512-element
// block (or the last half block) of a tile, contiguously: the tile rows' codes for that block, then their
// scales, then (asym) their zeros. The codes are interleaved by step (one 64-byte register load of the
// lane-major walk, 32 bytes in a half block): step 0 of rows 0..3, step 1 of rows 0..3, ..., so a tile
// kernel's loads run strictly forward. Tiles are the unit of work, so a thread's row range is one linear
// walk. Every chunk is a multiple of 64 bytes and only the last block of a row can be a half block, so
// chunk and tile offsets are plain products.
inline constexpr int64_t kTileRows = 4;

struct QPacked {
  QuantKind kind = QuantKind::kInt4;
  int64_t rows = 0, cols = 0, cols_p = 0, groups = 0;  // groups = cols_p / 32
  int64_t blocks = 0;                                  // ceil(cols_p / 512)
  int64_t chunk_bytes = 0, tile_bytes = 0;             // one full (tile, block) chunk; one whole tile
  ScaleType scale_type = ScaleType::kBF16;
  bool asym = false;
  // Zero point in code units: zu = z_src + zoff, where zoff is 128 for int8 (the code shift) and 0 for
  // int4; symmetric weights have z_src = 8 (int4) or 0 (int8) for every group.
  float zoff = 0.0f, zu = 8.0f;
  // [tiles][blocks][codes kTileRows x block_code_bytes | scales kTileRows x block_groups | zeros (asym)];
  // scales and zeros in scale_type, zeros the source zero points unchanged.
  AlignedBytes data;

  void set_geometry();  // blocks, chunk_bytes, tile_bytes from kind, cols_p, scale_type, asym
  int64_t row_bytes() const { return kind == QuantKind::kInt4 ? cols_p / 2 : cols_p; }  // codes of one row
  size_t scale_size() const { return scale_type == ScaleType::kF32 ? 4 : 2; }
  int64_t tiles() const { return (rows + kTileRows - 1) / kTileRows; }
  bool full_block(int64_t b) const { return b * 512 + 512 <= cols_p; }
  // Chunk geometry by block kind, as constants for kernels that specialise on full / half blocks.
  static constexpr int64_t groups_of(bool full) { return full ? 16 : 8; }
  static constexpr int64_t step_bytes_of(bool full) { return full ? 64 : 32; }  // one row's step: 4 B a group
  static constexpr int64_t code_bytes_of(QuantKind k, bool full) { return groups_of(full) * (k == QuantKind::kInt4 ? 16 : 32); }
  int64_t block_groups(int64_t b) const { return groups_of(full_block(b)); }
  int64_t block_code_bytes(int64_t b) const { return code_bytes_of(kind, full_block(b)); }
  int64_t step_bytes(int64_t b) const { return step_bytes_of(full_block(b)); }
  int64_t code_stride(int64_t b) const { return kTileRows * step_bytes(b); }  // a row's step s to step s + 1
  // Byte offsets into data of row r's codes (step 0; step s is s * code_stride(b) further) / scales / zeros
  // for block b (group b * 16 onwards).
  size_t chunk_off(int64_t r, int64_t b) const {
    return size_t(r / kTileRows) * size_t(tile_bytes) + size_t(b) * size_t(chunk_bytes);
  }
  size_t codes_off(int64_t r, int64_t b) const {
    return chunk_off(r, b) + size_t(r % kTileRows) * size_t(step_bytes(b));
  }
  size_t scales_off(int64_t r, int64_t b) const {
    return chunk_off(r, b) + size_t(kTileRows * block_code_bytes(b)) +
           size_t(r % kTileRows * block_groups(b)) * scale_size();
  }
  size_t zeros_off(int64_t r, int64_t b) const {
    return scales_off(r, b) + size_t(kTileRows * block_groups(b)) * scale_size();
  }
  const uint8_t* block_codes(int64_t r, int64_t b) const { return data.data() + codes_off(r, b); }
  const uint8_t* block_scales(int64_t r, int64_t b) const { return data.data() + scales_off(r, b); }
  const uint8_t* block_zeros(int64_t r, int64_t b) const { return data.data() + zeros_off(r, b); }
  // Scale / zero point of row r's 32-element group g (raw scale_type bytes).
  const uint8_t* group_scale(int64_t r, int64_t g) const { return block_scales(r, g / 16) + size_t(g % 16) * scale_size(); }
  const uint8_t* group_zero(int64_t r, int64_t g) const { return block_zeros(r, g / 16) + size_t(g % 16) * scale_size(); }
  // Offset of element k of row r (int4: *high tells whether it is the high nibble).
  size_t code_off(int64_t r, int64_t k, bool* high) const {
    const int64_t b = k / 512, base = b * 512;
    int64_t p;  // position in the row's own lane-major block
    if (kind == QuantKind::kInt4) {
      p = int4_pos(k, cols_p, high) - base / 2;
    } else {
      p = element_pos(k, cols_p) - base;
      *high = false;
    }
    const int64_t sb = step_bytes(b);
    return codes_off(r, b) + size_t(p / sb * code_stride(b) + p % sb);
  }
  const uint8_t* code_at(int64_t r, int64_t k, bool* high) const { return data.data() + code_off(r, k, high); }
};

struct DensePacked {
  DenseType type = DenseType::kF32;
  int64_t rows = 0, cols = 0;
  AlignedBytes data;  // [rows, cols] of type, rows 64-byte aligned when possible
  int64_t ld = 0;     // elements between rows
  size_t elem_size() const { return type == DenseType::kF32 ? 4 : 2; }
};

struct CpuWeight : PackedWeight {
  bool quantized = false;
  QPacked q;
  DensePacked d;
  std::vector<float> vec;  // norms: f32 values
};

// Activations quantized per 32-element group for the integer kernels: [T, cols_p] codes in the lane-major
// layout, scales sa [T, groups] (x ~= sa * qa) and asum [T, groups] = sa * sum(qa) for the zero term.
struct QAct {
  int64_t T = 0, cols_p = 0, groups = 0;
  AlignedBytes qa;
  std::vector<float> sa, asum;
  void resize(int64_t t, int64_t cp);
  const int8_t* row(int64_t t) const { return reinterpret_cast<const int8_t*>(qa.data()) + t * cols_p; }
};

float scale_at(const QPacked& q, int64_t r, int64_t g);
float zero_at(const QPacked& q, int64_t r, int64_t g);  // zu of group g (code units, zoff included)
// Dequantizes row r of a packed weight into dst[cols] (f32): used by embedding lookups and tests.
void dequantize_packed_row(const QPacked& q, int64_t r, float* dst);
void dense_row_f32(const DensePacked& d, int64_t r, float* dst);

// Packing from the backend-neutral forms. Throws g4::Error naming `name` on bad geometry.
bool can_pack_quant(const QuantWeight& w);
// Runs fn(r0, r1) over [0, rows) in ranges that start on packed-tile boundaries, possibly in parallel.
using RowRanges = std::function<void(int64_t rows, const std::function<void(int64_t r0, int64_t r1)>& fn)>;
// row_ranges: how the row loop is split (default: one range, this thread).
void pack_quant(const QuantWeight& w, const std::string& name, QPacked& out, const RowRanges& row_ranges = nullptr);
void pack_dense(DType t, const void* src, int64_t rows, int64_t cols, DensePacked& out);

}  // namespace g4::cpu
