#include "quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "quant/f16_offsets.h"

namespace g4 {

namespace {

struct CodeRange {
  float lo, hi, implied_zero;
};
CodeRange code_range(QuantKind k) {
  return k == QuantKind::kInt4 ? CodeRange{0.0f, 15.0f, 8.0f} : CodeRange{-128.0f, 127.0f, 0.0f};
}

float round_to(DType t, float x) {
  if (t == DType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  if (t == DType::kF16) return f16_to_f32(f32_to_f16(x));
  return x;
}

// Smallest representable value >= x (x > 0): a rounded-up scale keeps the whole group inside the code range.
float round_up_to(DType t, float x) {
  if (t == DType::kBF16) {
    uint16_t b = f32_to_bf16(x);
    if (bf16_to_f32(b) < x) ++b;  // x > 0: the next bit pattern is the next larger value
    return bf16_to_f32(b);
  }
  if (t == DType::kF16) {
    uint16_t b = f32_to_f16(x);
    if (f16_to_f32(b) < x) ++b;
    return f16_to_f32(b);
  }
  return x;
}

void store(DType t, void* base, int64_t i, float v) {
  if (t == DType::kBF16) static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
  else if (t == DType::kF16) static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
  else static_cast<float*>(base)[i] = v;
}

float code_of(float w, float s, float z, const CodeRange& r) {
  return std::clamp(std::nearbyint(w / s + z), r.lo, r.hi);
}

double sq_error(const float* w, int64_t n, float s, float z, const CodeRange& r) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(w[i]) - double((code_of(w[i], s, z, r) - z) * s);
    e += d * d;
  }
  return e;
}

bool exact_offsets(const QuantScheme& sc) {
  return sc.f16_offsets && !sc.symmetric && (sc.scale_dtype == DType::kBF16 || sc.scale_dtype == DType::kF16);
}

// sq_error for ranking candidate pairs, cheaper: a reciprocal instead of a division, rounding by adding and
// subtracting 1.5 * 2^23 (round to nearest even for |x| < 2^22, as nearbyint; codes are clamped first).
float rank_error(const float* w, int64_t n, float s, float z, const CodeRange& r) {
  const float inv = 1.0f / s, kRound = 12582912.0f;
  float e[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {  // four independent sums: the compiler keeps them in one vector register
      const float c = (std::min(std::max(w[i + j] * inv + z, r.lo), r.hi) + kRound) - kRound;
      const float d = w[i + j] - (c - z) * s;
      e[j] += d * d;
    }
  for (; i < n; ++i) {
    const float c = (std::min(std::max(w[i] * inv + z, r.lo), r.hi) + kRound) - kRound;
    const float d = w[i] - (c - z) * s;
    e[0] += d * d;
  }
  return (e[0] + e[1]) + (e[2] + e[3]);
}

// x > 0 rounded up (or to nearest) to `bits` significant bits. Fewer bits in a scale leave more for the zero
// point: an exact offset s * z has at most 11.
float round_bits(float x, int bits, bool up) {
  int e;
  const double m = std::ldexp(std::frexp(double(x), &e), bits);
  return float(std::ldexp(up ? std::ceil(m) : std::nearbyint(m), e - bits));
}

// Candidate pairs with f16-exact offsets, ranked by squared error (rank_error); keeps the best.
struct ExactSearch {
  ExactSearch(const QuantScheme& sc, const float* w, int64_t n)
      : sc(sc), w(w), n(n), r(code_range(sc.kind)), dtype_bits(sc.scale_dtype == DType::kBF16 ? 8 : 11) {}
  // The exact zero points nearest to t in [lo, t] and in [t, hi] for the scale s2; true if there is one.
  bool try_scale(float s2, double t, double lo, double hi) {
    if (!(s2 > 0) || !f16_exact(s2)) return false;
    for (int i = 0; i < n_tried; ++i)
      if (tried[i] == s2) return false;
    if (n_tried < 16) tried[n_tried++] = s2;
    float zs[2];
    const int found = nearest_exact_zeros(sc.scale_dtype, sc.kind, s2, t, lo, hi, 64, zs);
    for (int side = 0; side < 2; ++side) {
      if (!(found >> side & 1)) continue;
      if (side == 1 && (found & 1) && zs[1] == zs[0]) continue;  // the same pair (z = t): the same error
      const float zc = zs[side];
      const double e = rank_error(w, n, s2, zc, r);
      if (e < best) {
        best = e;
        s = s2;
        z = zc;
      }
    }
    return found != 0;
  }
  bool found() const { return std::isfinite(best); }

  const QuantScheme& sc;
  const float* w;
  int64_t n;
  CodeRange r;
  int dtype_bits;
  double best = std::numeric_limits<double>::infinity();
  float s = 0, z = 0;
  float tried[16];
  int n_tried = 0;
};

// Min-max parameters of one group, already rounded to the scale dtype. The asymmetric range includes 0
// so that the zero point lies in the code range, where scale_dtype represents it to within 1/4 code.
void minmax_params(const QuantScheme& sc, const float* w, int64_t n, float* s, float* z) {
  const CodeRange r = code_range(sc.kind);
  if (sc.symmetric) {
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    // (hi - lo) / 2 steps each side: 7.5 for int4, 127.5 for int8, as torchao's symmetric choose_qparams.
    *s = amax > 0 ? round_up_to(sc.scale_dtype, amax / ((r.hi - r.lo) / 2)) : 1.0f;
    *z = r.implied_zero;
    return;
  }
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  *s = hi > lo ? round_up_to(sc.scale_dtype, (hi - lo) / (r.hi - r.lo)) : 1.0f;
  *z = round_to(sc.scale_dtype, r.lo - lo / *s);
  if (!exact_offsets(sc)) return;
  // Pairs with an f16-exact offset whose zero point keeps [lo, hi] within half a step of the code range:
  // z in [t - 1/2, hi_code + 1/2 - hi/s], t = lo_code - lo/s (a margin of 1/1000 code against rounding).
  // Scales: the min-max one and the next ones up, the first three that have such a zero point, and the min-max
  // one rounded up to 8 (f16 scales), 7, 6 and 5 significant bits; of those pairs the lowest squared error.
  ExactSearch x(sc, w, n);
  float s2 = *s;
  for (int i = 0, found = 0; i < 16 && found < 3; ++i, s2 = dtype_step(sc.scale_dtype, s2, 1)) {
    const double t = r.lo - double(lo) / s2;
    found += x.try_scale(s2, t, t - 0.499, r.hi + 0.499 - double(hi) / s2);
  }
  for (int bits : {8, 7, 6, 5}) {
    if (bits >= x.dtype_bits) continue;
    s2 = round_bits(*s, bits, true);
    const double t = r.lo - double(lo) / s2;
    x.try_scale(s2, t, t - 0.499, r.hi + 0.499 - double(hi) / s2);
  }
  if (!x.found()) {  // a range too small for f16's subnormal scales: the smallest f16 scale above s
    s2 = round_up_to(DType::kF16, *s);
    const double t = r.lo - double(lo) / s2;
    if (round_to(sc.scale_dtype, s2) == s2) x.try_scale(s2, t, t - 0.499, r.hi + 0.499 - double(hi) / s2);
  }
  if (x.found()) {
    *s = x.s;
    *z = x.z;
  }
}

// HQQ's (s, z) moved to nearby f16-exact pairs: scales within two steps of s and s rounded to 8 (f16 scales), 7,
// 6 and 5 significant bits, with the exact zero points nearest to z below and above (within two codes); the
// pair with the lowest squared error. False when there is none.
bool exact_pair_near(const QuantScheme& sc, const float* w, int64_t n, float* s, float* z) {
  ExactSearch x(sc, w, n);
  float s2 = dtype_step(sc.scale_dtype, dtype_step(sc.scale_dtype, round_to(sc.scale_dtype, *s), -1), -1);
  for (int i = 0; i < 5; ++i, s2 = dtype_step(sc.scale_dtype, s2, 1)) x.try_scale(s2, *z, *z - 2, *z + 2);
  for (int bits : {8, 7, 6, 5})
    if (bits < x.dtype_bits) x.try_scale(round_bits(*s, bits, false), *z, *z - 2, *z + 2);
  if (!x.found()) return false;
  *s = x.s;
  *z = x.z;
  return true;
}

}  // namespace

std::string QuantScheme::describe() const {
  return std::string(kind == QuantKind::kInt4 ? "int4" : "int8") +
         (group_size > 0 ? " g" + std::to_string(group_size) : std::string(" per-row")) +
         (symmetric ? " sym" : " asym") + (method == QuantMethod::kHqq && !symmetric ? " hqq" : " minmax");
}

QuantMethod parse_quant_method(const std::string& s, const std::string& flag) {
  if (s == "minmax") return QuantMethod::kMinMax;
  if (s == "hqq") return QuantMethod::kHqq;
  throw Error(flag + ": unknown quantization method '" + s + "' (expected minmax or hqq)");
}

size_t quant_code_bytes(QuantKind kind, int64_t rows, int64_t cols) {
  return size_t(rows) * size_t(kind == QuantKind::kInt4 ? cols / 2 : cols);
}

size_t quant_scale_bytes(const QuantScheme& s, int64_t rows, int64_t cols) {
  return size_t(rows) * size_t(cols / s.group_for(cols)) * dtype_size(s.scale_dtype);
}

void hqq_optimize_group(const float* w, int64_t n, QuantKind kind, float* scale, float* zero) {
  // Half-quadratic splitting (Badri & Shaji, "HQQ", 2023): minimise ||W - (Q - z)s||_p^p, p = 0.7, by
  // alternating W_e = shrink_p(W - W_r) (the proximal step of the l_p term) with the closed-form zero
  // z = mean(Q - (W - W_e)/s); beta grows by kappa each step. Defaults as the paper's reference code.
  const CodeRange r = code_range(kind);
  const double p = 0.7, kappa = 1.01;
  double beta = 10.0;
  const float s = *scale;
  float z = *zero, best_z = z;
  double best_l1 = std::numeric_limits<double>::infinity();
  std::vector<float> q(static_cast<size_t>(n));
  for (int it = 0; it < 20; ++it) {
    double l1 = 0, acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      q[size_t(i)] = code_of(w[i], s, z, r);
      const double wr = (double(q[size_t(i)]) - z) * s;
      const double e = double(w[i]) - wr;
      l1 += std::fabs(e);
      const double ae = std::fabs(e);
      const double shrunk = ae > 0 ? std::max(0.0, ae - std::pow(ae, p - 1) / beta) : 0.0;
      const double we = std::copysign(shrunk, e);
      acc += double(q[size_t(i)]) - (double(w[i]) - we) / s;
    }
    if (l1 < best_l1) {
      best_l1 = l1;
      best_z = z;
    } else {
      break;  // the reference stops once the l1 error no longer falls
    }
    z = float(acc / double(n));
    beta *= kappa;
  }
  // Least-squares refit of both scale and zero for the codes the zero search settled on:
  // W ~ s*Q + b with b = -z*s. Kept only when it lowers the squared error.
  double mq = 0, mw = 0;
  for (int64_t i = 0; i < n; ++i) {
    q[size_t(i)] = code_of(w[i], s, best_z, r);
    mq += q[size_t(i)];
    mw += w[i];
  }
  mq /= double(n);
  mw /= double(n);
  double cov = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) {
    cov += (q[size_t(i)] - mq) * (w[i] - mw);
    var += (q[size_t(i)] - mq) * (q[size_t(i)] - mq);
  }
  *scale = s;
  *zero = best_z;
  if (var > 0 && cov > 0) {
    const float s2 = float(cov / var);
    const float z2 = float(mq - mw / (cov / var));
    if (sq_error(w, n, s2, z2, r) < sq_error(w, n, s, best_z, r)) {
      *scale = s2;
      *zero = z2;
    }
  }
}

void quantize_rows(const QuantScheme& sc, const float* w, int64_t rows, int64_t cols, uint8_t* codes, void* scales,
                   void* zeros, const std::string& name) {
  const int64_t gs = sc.group_for(cols);
  if (gs <= 0 || cols % gs != 0)
    throw Error(name + ": group size " + std::to_string(gs) + " does not divide the row length " + std::to_string(cols));
  if (sc.kind == QuantKind::kInt4 && cols % 2 != 0) throw Error(name + ": int4 needs an even row length");
  G4_CHECK(sc.symmetric || zeros, "asymmetric quantization needs a zeros buffer");
  const CodeRange r = code_range(sc.kind);
  const int64_t G = cols / gs;
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t g = 0; g < G; ++g) {
      const float* x = w + row * cols + g * gs;
      float s, z;
      for (int64_t k = 0; k < gs; ++k)
        if (!std::isfinite(x[k]))
          throw Error(name + ": element (" + std::to_string(row) + ", " + std::to_string(g * gs + k) + ") is not finite");
      minmax_params(sc, x, gs, &s, &z);
      if (!std::isfinite(s) || !std::isfinite(z))
        throw Error(name + ": row " + std::to_string(row) + " holds values that are not finite or overflow " +
                    dtype_name(sc.scale_dtype) + " scales");
      if (sc.method == QuantMethod::kHqq && !sc.symmetric) {
        float hs = s, hz = z;
        hqq_optimize_group(x, gs, sc.kind, &hs, &hz);
        bool ok = true;
        if (exact_offsets(sc)) {
          ok = std::isfinite(hs) && std::isfinite(hz) && exact_pair_near(sc, x, gs, &hs, &hz);
        } else {
          hs = round_to(sc.scale_dtype, hs);
          hz = round_to(sc.scale_dtype, hz);
        }
        if (ok && hs > 0 && std::isfinite(hs) && std::isfinite(hz) && sq_error(x, gs, hs, hz, r) < sq_error(x, gs, s, z, r)) {
          s = hs;
          z = hz;
        }
      }
      store(sc.scale_dtype, scales, row * G + g, s);
      if (!sc.symmetric) store(sc.scale_dtype, zeros, row * G + g, z);
      for (int64_t k = 0; k < gs; ++k) {
        const float c = code_of(x[k], s, z, r);
        const int64_t col = g * gs + k;
        if (sc.kind == QuantKind::kInt4) {
          uint8_t& b = codes[size_t(row) * size_t(cols / 2) + size_t(col / 2)];
          const uint8_t v = uint8_t(c);
          b = (col & 1) ? uint8_t((b & 0x0f) | (v << 4)) : uint8_t((b & 0xf0) | v);
        } else {
          reinterpret_cast<int8_t*>(codes)[size_t(row) * size_t(cols) + size_t(col)] = int8_t(c);
        }
      }
    }
  }
}

void quantize_tensor(const QuantScheme& s, const float* w, int64_t rows, int64_t cols, OwnedQuantWeight* out,
                     const std::string& name) {
  const int64_t gs = s.group_for(cols);
  if (gs <= 0 || cols % gs != 0)
    throw Error(name + ": group size " + std::to_string(gs) + " does not divide the row length " + std::to_string(cols));
  out->codes.assign(quant_code_bytes(s.kind, rows, cols), 0);
  out->scales.assign(quant_scale_bytes(s, rows, cols), 0);
  out->zeros.assign(s.symmetric ? 0 : out->scales.size(), 0);
  quantize_rows(s, w, rows, cols, out->codes.data(), out->scales.data(), s.symmetric ? nullptr : out->zeros.data(),
                name);
  bind_quant_weight(s, rows, cols, out);
}

void bind_quant_weight(const QuantScheme& s, int64_t rows, int64_t cols, OwnedQuantWeight* out) {
  QuantWeight& q = out->q;
  q.kind = s.kind;
  q.rows = rows;
  q.cols = cols;
  q.group_size = s.group_for(cols);
  q.codes = out->codes.data();
  q.scale_dtype = s.scale_dtype;
  q.scales = out->scales.data();
  q.zeros = s.symmetric ? nullptr : out->zeros.data();
}

}  // namespace g4
