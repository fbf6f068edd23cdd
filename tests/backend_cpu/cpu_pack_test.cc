// The tile-interleaved packed layout (cpu_weight.h): every byte of a packed weight belongs to exactly one
// (row, block, step) part and a tile's chunks follow each other, code steps stay aligned, padding rows are
// zero, unpacking gives back the source weights exactly, and each kernel table gives bit-identical rows
// whatever row range it is handed (tiles cut anywhere, the way a thread pool might cut them).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/kernels.h"

namespace g4::test {
namespace {

struct Source {
  QuantWeight q;
  std::vector<uint8_t> codes, scales, zeros;
};

void store(DType t, float v, uint8_t* dst) {
  if (t == DType::kF32) std::memcpy(dst, &v, 4);
  else { const uint16_t h = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v); std::memcpy(dst, &h, 2); }
}

// Zero points on a 1/16 grid so that z + 128 (the int8 code shift) is exact and unpacking can be compared
// for equality.
void make_source(QuantKind kind, DType sd, bool asym, int64_t rows, int64_t cols, int64_t gs, std::mt19937& rng,
                 Source& s) {
  const int64_t G = cols / gs;
  const size_t ss = dtype_size(sd);
  s.codes.resize(size_t(kind == QuantKind::kInt4 ? rows * cols / 2 : rows * cols));
  for (uint8_t& b : s.codes) b = uint8_t(rng());
  s.scales.resize(size_t(rows * G) * ss);
  s.zeros.resize(s.scales.size());
  std::uniform_real_distribution<float> sdist(0.001f, 0.05f);
  std::uniform_int_distribution<int> zdist(-48, 48);
  for (int64_t i = 0; i < rows * G; ++i) {
    store(sd, sdist(rng), s.scales.data() + size_t(i) * ss);
    store(sd, (kind == QuantKind::kInt4 ? 7.5f : 0.0f) + float(zdist(rng)) / 16.0f, s.zeros.data() + size_t(i) * ss);
  }
  s.q.kind = kind;
  s.q.rows = rows;
  s.q.cols = cols;
  s.q.group_size = gs;
  s.q.codes = s.codes.data();
  s.q.scale_dtype = sd;
  s.q.scales = s.scales.data();
  s.q.zeros = asym ? s.zeros.data() : nullptr;
}

TEST(CpuPack, TileLayoutCoversEveryByteOnceAndRoundTrips) {
  std::mt19937 rng(7);
  int n = 0;
  for (QuantKind kind : {QuantKind::kInt4, QuantKind::kInt8})
    for (DType sd : {DType::kBF16, DType::kF16, DType::kF32})
      for (bool asym : {false, true})
        for (int64_t rows : {1, 6, 8})
          for (int64_t cols : {32, 288, 512, 800, 1312}) {
            const int64_t gs = cols % 64 == 0 ? 64 : 32;
            Source src;
            make_source(kind, sd, asym, rows, cols, gs, rng, src);
            cpu::QPacked p;
            cpu::pack_quant(src.q, "test.weight", p);
            const std::string what = std::string(kind == QuantKind::kInt4 ? "int4 " : "int8 ") + dtype_name(sd) +
                                     (asym ? " asym" : " sym") + " rows=" + std::to_string(rows) +
                                     " cols=" + std::to_string(cols);
            ++n;
            ASSERT_EQ(p.data.size, size_t(p.tiles() * p.tile_bytes)) << what;
            ASSERT_EQ(p.tile_bytes % 64, 0) << what;
            // Each (row, block) part, padding rows included, claims its bytes; together they tile the buffer.
            std::vector<int> owner(p.data.size, 0);
            const auto claim = [&](size_t off, size_t len) {
              ASSERT_LE(off + len, owner.size()) << what;
              for (size_t i = off; i < off + len; ++i) ++owner[i];
            };
            const size_t ss = p.scale_size();
            for (int64_t r = 0; r < p.tiles() * cpu::kTileRows; ++r)
              for (int64_t b = 0; b < p.blocks; ++b) {
                const int64_t sb = p.step_bytes(b);
                EXPECT_EQ(p.codes_off(r, b) % size_t(sb), 0u) << what << " row " << r << " block " << b;
                for (int64_t st = 0; st < p.block_code_bytes(b) / sb; ++st)
                  claim(p.codes_off(r, b) + size_t(st * p.code_stride(b)), size_t(sb));
                claim(p.scales_off(r, b), size_t(p.block_groups(b)) * ss);
                if (asym) claim(p.zeros_off(r, b), size_t(p.block_groups(b)) * ss);
              }
            for (size_t i = 0; i < owner.size(); ++i) ASSERT_EQ(owner[i], 1) << what << " byte " << i;
            // A tile's blocks are consecutive chunks, so a tile is one forward stream.
            for (int64_t b = 0; b + 1 < p.blocks; ++b)
              EXPECT_EQ(p.codes_off(0, b + 1), p.chunk_off(0, b) + size_t(p.chunk_bytes)) << what;
            // Padding rows of the last tile are all zero (scale 0: they add nothing).
            for (int64_t r = rows; r < p.tiles() * cpu::kTileRows; ++r)
              for (int64_t b = 0; b < p.blocks; ++b)
                for (int64_t st = 0; st < p.block_code_bytes(b) / p.step_bytes(b); ++st)
                  for (int64_t i = 0; i < p.step_bytes(b); ++i)
                    ASSERT_EQ(p.block_codes(r, b)[st * p.code_stride(b) + i], 0) << what;
            std::vector<float> got(static_cast<size_t>(cols)), want(got.size());
            for (int64_t r = 0; r < rows; ++r) {
              cpu::dequantize_packed_row(p, r, got.data());
              dequantize_row(src.q, r, want.data());
              ASSERT_EQ(got, want) << what << " row " << r;
            }
          }
  EXPECT_EQ(n, 180);
}

TEST(CpuPack, KernelsGiveTheSameRowsForAnyRowRange) {
  std::mt19937 rng(8);
  struct Case { QuantKind kind; DType sd; bool asym; int64_t rows, cols; };
  for (const Case c : {Case{QuantKind::kInt4, DType::kBF16, true, 23, 1312}, Case{QuantKind::kInt8, DType::kF16, false, 21, 800},
                       Case{QuantKind::kInt4, DType::kF32, false, 18, 512}, Case{QuantKind::kInt8, DType::kBF16, true, 9, 288}}) {
    Source src;
    make_source(c.kind, c.sd, c.asym, c.rows, c.cols, 32, rng, src);
    cpu::QPacked p;
    cpu::pack_quant(src.q, "test.weight", p);
    for (int64_t T : {1, 5}) {
      std::normal_distribution<float> nd;
      std::vector<float> x(size_t(T * c.cols));
      for (float& v : x) v = nd(rng);
      for (const cpu::KernelTable* k : cpu::available_kernels()) {
        cpu::QAct a;
        a.resize(T, p.cols_p);
        for (int64_t t = 0; t < T; ++t) k->quantize_row(x.data() + t * c.cols, c.cols, a, t);
        std::vector<float> whole(size_t(T * c.rows), -1.0f), pieces(whole.size(), -2.0f);
        k->qgemm(p, a, whole.data(), c.rows, 0, c.rows);
        // Cuts inside tiles, a one-row piece and an empty one.
        const int64_t cuts[] = {0, 3, 9, 9, 10, 17, c.rows};
        for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
          const int64_t r0 = std::min(cuts[i], c.rows), r1 = std::min(cuts[i + 1], c.rows);
          if (r0 < r1) k->qgemm(p, a, pieces.data(), c.rows, r0, r1);
        }
        EXPECT_EQ(pieces, whole) << k->name << " rows=" << c.rows << " cols=" << c.cols << " T=" << T;
      }
    }
  }
}

}  // namespace
}  // namespace g4::test
