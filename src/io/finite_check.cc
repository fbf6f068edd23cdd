#include "io/finite_check.h"

#include <cstring>

#include "base/error.h"

namespace g4 {

namespace {

// Index of the first value whose exponent bits are all ones (NaN or +-Inf), or -1. `exp_mask` selects the
// exponent field of an element of `bytes` size, read as a little-endian unsigned integer.
template <typename U>
int64_t first_nonfinite(const void* data, int64_t n, U exp_mask) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (int64_t i = 0; i < n; ++i) {
    U u;
    std::memcpy(&u, p + size_t(i) * sizeof(U), sizeof(U));
    if ((u & exp_mask) == exp_mask) return i;
  }
  return -1;
}

int64_t first_nonfinite(DType t, const void* data, int64_t n) {
  switch (t) {
    case DType::kF32: return first_nonfinite<uint32_t>(data, n, 0x7f800000u);
    case DType::kBF16: return first_nonfinite<uint16_t>(data, n, uint16_t(0x7f80));
    case DType::kF16: return first_nonfinite<uint16_t>(data, n, uint16_t(0x7c00));
    case DType::kF64: return first_nonfinite<uint64_t>(data, n, 0x7ff0000000000000ull);
    default: return -1;  // integer tensors cannot hold a non-finite value
  }
}

double value_at(DType t, const void* data, int64_t i) {
  const uint8_t* p = static_cast<const uint8_t*>(data) + size_t(i) * dtype_size(t);
  if (t == DType::kF64) {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  float f = 0;
  convert_to_f32(t, p, 1, &f);
  return f;
}

[[noreturn]] void fail(const StoredWeight& w, const char* part, DType t, const void* data, int64_t i, int64_t n) {
  const double v = value_at(t, data, i);
  const char* what = v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  throw Error(w.file + ": tensor '" + w.name + "'" + part + " holds " + what + " at element " + std::to_string(i) +
              " of " + std::to_string(n) + "; a checkpoint with non-finite weights is refused");
}

}  // namespace

void check_finite(const StoredWeight& w) {
  if (w.plain) {
    const TensorInfo& t = *w.plain;
    const int64_t n = int64_t(t.nbytes / dtype_size(t.dtype));
    if (const int64_t i = first_nonfinite(t.dtype, t.data, n); i >= 0) fail(w, "", t.dtype, t.data, i, n);
    return;
  }
  if (w.quant) check_finite(w, *w.quant);
}

void check_finite(const StoredWeight& w, const QuantWeight& q) {
  const int64_t n = q.rows * q.groups_per_row();
  if (const int64_t i = first_nonfinite(q.scale_dtype, q.scales, n); i >= 0)
    fail(w, " (scales)", q.scale_dtype, q.scales, i, n);
  if (q.zeros)
    if (const int64_t i = first_nonfinite(q.scale_dtype, q.zeros, n); i >= 0)
      fail(w, " (zeros)", q.scale_dtype, q.zeros, i, n);
}

}  // namespace g4
