// Load-time packing into the CPU layouts of cpu_weight.h. The source (usually an mmap of the checkpoint)
// is read once; only the packed copy stays resident, so peak memory is the packed size plus page cache.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/cpu_weight.h"

#include <sys/mman.h>
#include "base/error.h"

namespace g4::cpu {

void AlignedBytes::allocate(size_t n) {
  // Large buffers (packed weights) sit on 2 MiB boundaries and ask for transparent huge pages: a decode
  // GEMV walks many rows' codes, scales and zeros at once, and 4 KiB pages make each of those streams
  // miss the TLB every few rows.
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t align = n >= kHuge ? kHuge : 64;
  const size_t rounded = (n + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded > 0 ? rounded : 64);
  if (!p) throw Error("out of memory packing a weight of " + std::to_string(n) + " bytes");
#if defined(MADV_HUGEPAGE)
  if (align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#endif
  std::memset(p, 0, rounded > 0 ? rounded : 64);
  ptr = std::unique_ptr<uint8_t, void (*)(uint8_t*)>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
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

float scale_at(const QPacked& q, int64_t r, int64_t g) { return stored_at(q, q.row_scales(r) + size_t(g) * q.scale_size()); }

float zero_at(const QPacked& q, int64_t r, int64_t g) {
  return q.asym ? stored_at(q, q.row_zeros(r) + size_t(g) * q.scale_size()) + q.zoff : q.zu;
}

bool can_pack_quant(const QuantWeight& w) { return w.group_size % 32 == 0; }

void pack_quant(const QuantWeight& w, const std::string& name, QPacked& q) {
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
  q.codes.allocate(checked_mul(uint64_t(q.rows), uint64_t(q.row_bytes()), name + ": packed size"));
  q.scales.allocate(size_t(q.rows * q.groups) * q.scale_size());
  if (q.asym) q.zeros.allocate(size_t(q.rows * q.groups) * q.scale_size());
  const int64_t gpr = w.groups_per_row(), sub = w.group_size / 32;  // 32-groups per source group
  const size_t ss = q.scale_size(), src_ss = dtype_size(w.scale_dtype);
  for (int64_t r = 0; r < w.rows; ++r) {
    uint8_t* dst = q.codes.data() + size_t(r) * size_t(q.row_bytes());
    for (int64_t k = 0; k < w.cols; ++k) {
      if (w.kind == QuantKind::kInt4) {
        const uint8_t byte = w.codes[size_t(r) * size_t(w.cols / 2) + size_t(k / 2)];
        const uint8_t c = (k & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 15);
        bool high;
        const int64_t pos = int4_pos(k, q.cols_p, &high);
        dst[pos] = uint8_t(dst[pos] | (high ? uint8_t(c << 4) : c));
      } else {
        const int8_t c = reinterpret_cast<const int8_t*>(w.codes)[size_t(r) * size_t(w.cols) + size_t(k)];
        dst[element_pos(k, q.cols_p)] = uint8_t(int(c) + 128);
      }
    }
    for (int64_t g = 0; g < gpr; ++g) {
      const size_t src = size_t(r * gpr + g) * src_ss;
      for (int64_t j = 0; j < sub; ++j) {  // same dtype as the source: exact copies
        const size_t dst = size_t(r * q.groups + g * sub + j) * ss;
        std::memcpy(q.scales.data() + dst, static_cast<const uint8_t*>(w.scales) + src, ss);
        if (q.asym) std::memcpy(q.zeros.data() + dst, static_cast<const uint8_t*>(w.zeros) + src, ss);
      }
    }
  }
}

void dequantize_packed_row(const QPacked& q, int64_t r, float* dst) {
  const uint8_t* codes = q.row_codes(r);
  for (int64_t k = 0; k < q.cols; ++k) {
    float u;
    if (q.kind == QuantKind::kInt4) {
      bool high;
      const uint8_t b = codes[int4_pos(k, q.cols_p, &high)];
      u = float(high ? (b >> 4) : (b & 15));
    } else {
      u = float(codes[element_pos(k, q.cols_p)]);
    }
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
