// Load-time packing into the CPU layouts of cpu_weight.h. The source (usually an mmap of the checkpoint)
// is read once; only the packed copy stays resident, so peak memory is the packed size plus page cache.
#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/cpu/cpu_weight.h"
#include "base/bulk_memory.h"
#include "base/error.h"

namespace g4::cpu {

void AlignedBytes::allocate(size_t n) {
  // bulk_alloc: large buffers (packed weights) on 2 MiB boundaries in transparent huge pages. Zero-filled here:
  // the padding rows and columns of a tile must read as zeros.
  void* p = nullptr;
  try {
    p = bulk_alloc(n);
  } catch (const std::bad_alloc&) {
    throw Error("out of memory packing a weight of " + std::to_string(n) + " bytes");
  }
  std::memset(p, 0, n);
  ptr = std::unique_ptr<uint8_t, void (*)(uint8_t*)>(static_cast<uint8_t*>(p), [](uint8_t* q) { bulk_free(q); });
  size = n;
}

void QAct::resize(int64_t t, int64_t cp) {
  if (t * cp > int64_t(qa.size)) qa.allocate(size_t(t * cp));
  T = t;
  cols_p = cp;
  groups = cp / 32;
  sa.resize(size_t(t * groups));
  asum.resize(size_t(t * groups));
}

namespace {

ScaleType scale_type_of(DType t) {
  return t == DType::kF32 ? ScaleType::kF32 : t == DType::kF16 ? ScaleType::kF16 : ScaleType::kBF16;
}

}  // namespace

namespace {
float stored_at(const QPacked& q, const uint8_t* p) {
  uint16_t h;
  switch (q.scale_type) {
    case ScaleType::kF32: { float f; std::memcpy(&f, p, 4); return f; }
    case ScaleType::kF16: std::memcpy(&h, p, 2); return f16_to_f32(h);
    case ScaleType::kBF16: std::memcpy(&h, p, 2); return bf16_to_f32(h);
  }
  return 0;
}
}  // namespace

float scale_at(const QPacked& q, int64_t r, int64_t g) { return stored_at(q, q.group_scale(r, g)); }

float zero_at(const QPacked& q, int64_t r, int64_t g) { return q.asym ? stored_at(q, q.group_zero(r, g)) + q.zoff : q.zu; }

void QPacked::set_geometry() {
  blocks = (cols_p + 511) / 512;
  const int64_t per_group = (kind == QuantKind::kInt4 ? 16 : 32) + int64_t(scale_size()) * (asym ? 2 : 1);
  chunk_bytes = kTileRows * 16 * per_group;  // a full block: 16 groups of each tile row
  tile_bytes = (blocks - 1) * chunk_bytes + kTileRows * block_groups(blocks - 1) * per_group;
  // 16 groups x (16 or 32 code bytes + 2 or 4 scale bytes, twice when asym) x 4 rows: a multiple of 64,
  // as is the half block's 8 groups x 4 rows; codes therefore stay 64-byte aligned.
  G4_CHECK(chunk_bytes % 64 == 0 && tile_bytes % 64 == 0, "packed chunk not a multiple of 64 bytes");
}

bool can_pack_quant(const QuantWeight& w) { return w.group_size % 32 == 0; }

void pack_quant(const QuantWeight& w, const std::string& name, QPacked& q, const RowRanges& row_ranges) {
  validate(w, name);
  G4_CHECK(can_pack_quant(w), "pack_quant needs a group size that is a multiple of 32");
  q.kind = w.kind;
  q.rows = w.rows;
  q.cols = w.cols;
  q.cols_p = pad_cols(w.cols);
  q.groups = q.cols_p / 32;
  q.scale_type = scale_type_of(w.scale_dtype);
  q.asym = w.zeros != nullptr;
  q.zoff = w.kind == QuantKind::kInt4 ? 0.0f : 128.0f;
  q.zu = w.kind == QuantKind::kInt4 ? 8.0f : 128.0f;
  q.set_geometry();
  // Padding rows (up to a whole tile) and padding groups stay zero: scale 0, so they add nothing.
  q.data.allocate(checked_mul(uint64_t(q.tiles()), uint64_t(q.tile_bytes), name + ": packed size"));
  uint8_t* out = q.data.data();
  const int64_t gpr = w.groups_per_row(), sub = w.group_size / 32;  // 32-groups per source group
  const size_t ss = q.scale_size(), src_ss = dtype_size(w.scale_dtype);
  // Codes one 32-element group at a time (cols is a multiple of the group size, itself a multiple of 32).
  // In the lane-major walk, group gl of block b holds its elements 4s..4s+3 at step s, 4 bytes at
  // gl * 4 of that step (code_off); int4 puts steps 4..7 in the high nibbles of steps 0..3's bytes.
  // Element by element through code_off (two divisions per element) packing took 24 s of CPU for the
  // 6-layer 31B model; a group at a time with the rows split over the backend's threads, see docs/PERF.md.
  const int64_t g32_per_row = w.cols / 32;
  const auto pack_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t g32 = 0; g32 < g32_per_row; ++g32) {
        const int64_t b = g32 / 16;
        uint8_t* dst = out + q.codes_off(r, b) + size_t(g32 % 16) * 4;
        const size_t cs = size_t(q.code_stride(b));
        if (w.kind == QuantKind::kInt4) {
          const uint8_t* src = w.codes + (size_t(r) * size_t(w.cols) + size_t(g32) * 32) / 2;
          uint8_t e[32];
          for (int i = 0; i < 16; ++i) {
            e[2 * i] = uint8_t(src[i] & 15);
            e[2 * i + 1] = uint8_t(src[i] >> 4);
          }
          for (int st = 0; st < 4; ++st)
            for (int j = 0; j < 4; ++j) dst[size_t(st) * cs + size_t(j)] = uint8_t(e[4 * st + j] | (e[16 + 4 * st + j] << 4));
        } else {
          const int8_t* src = reinterpret_cast<const int8_t*>(w.codes) + size_t(r) * size_t(w.cols) + size_t(g32) * 32;
          for (int st = 0; st < 8; ++st)
            for (int j = 0; j < 4; ++j) dst[size_t(st) * cs + size_t(j)] = uint8_t(int(src[4 * st + j]) + 128);
        }
      }
      for (int64_t g = 0; g < gpr; ++g) {
        const size_t src = size_t(r * gpr + g) * src_ss;
        for (int64_t j = 0; j < sub; ++j) {  // same dtype as the source: exact copies
          const int64_t g32 = g * sub + j;
          std::memcpy(out + q.scales_off(r, g32 / 16) + size_t(g32 % 16) * ss, static_cast<const uint8_t*>(w.scales) + src, ss);
          if (q.asym)
            std::memcpy(out + q.zeros_off(r, g32 / 16) + size_t(g32 % 16) * ss, static_cast<const uint8_t*>(w.zeros) + src, ss);
        }
      }
    }
  };
  // Rows of one tile share cache lines, so ranges start on tile boundaries (RowRanges' contract).
  if (row_ranges) row_ranges(w.rows, pack_rows);
  else pack_rows(0, w.rows);
}

void dequantize_packed_row(const QPacked& q, int64_t r, float* dst) {
  for (int64_t k = 0; k < q.cols; ++k) {
    bool high;
    const uint8_t b = *q.code_at(r, k, &high);
    const float u = float(q.kind == QuantKind::kInt4 ? (high ? (b >> 4) : (b & 15)) : b);
    const int64_t g = k / 32;
    dst[k] = (u - zero_at(q, r, g)) * scale_at(q, r, g);
  }
}

void pack_dense(DType t, const void* src, int64_t rows, int64_t cols, DensePacked& d) {
  d.type = t == DType::kF32 ? DenseType::kF32 : t == DType::kF16 ? DenseType::kF16 : DenseType::kBF16;
  if (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16)
    throw Error("cpu backend: unsupported weight dtype " + dtype_name(t));
  d.rows = rows;
  d.cols = cols;
  d.ld = cols;
  const size_t bytes = checked_mul(uint64_t(rows), checked_mul(uint64_t(cols), d.elem_size(), "dense weight"), "dense weight");
  d.data.allocate(bytes);
  std::memcpy(d.data.data(), src, bytes);
}

void dense_row_f32(const DensePacked& d, int64_t r, float* dst) {
  const uint8_t* p = d.data.data() + size_t(r * d.ld) * d.elem_size();
  convert_to_f32(d.type == DenseType::kF32 ? DType::kF32 : d.type == DenseType::kF16 ? DType::kF16 : DType::kBF16, p,
                 size_t(d.cols), dst);
}

}  // namespace g4::cpu
