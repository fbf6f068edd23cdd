#include "quant/mlx_affine.h"

#include <cstring>

namespace g4 {

void mlx_pack_row(const QuantWeight& q, int64_t r, uint32_t* words) {
  const int bits = mlx_bits(q.kind), per_word = 32 / bits;
  const int64_t n_words = q.cols / per_word;
  std::memset(words, 0, size_t(n_words) * 4);
  for (int64_t j = 0; j < q.cols; ++j) {
    uint32_t code;
    if (q.kind == QuantKind::kInt4) {
      const uint8_t byte = q.codes[size_t(r) * size_t(q.cols / 2) + size_t(j / 2)];
      code = (j & 1) ? uint32_t(byte >> 4) : uint32_t(byte & 15);
    } else {
      code = uint32_t(int(reinterpret_cast<const int8_t*>(q.codes)[size_t(r) * size_t(q.cols) + size_t(j)]) + 128);
    }
    words[j / per_word] |= code << ((j % per_word) * bits);
  }
}

void mlx_unpack_row(int bits, const uint32_t* words, int64_t cols, uint8_t* out) {
  const int per_word = 32 / bits;
  const uint32_t mask = (uint32_t(1) << bits) - 1;
  for (int64_t j = 0; j < cols; ++j) out[j] = uint8_t((words[j / per_word] >> ((j % per_word) * bits)) & mask);
}

}  // namespace g4
