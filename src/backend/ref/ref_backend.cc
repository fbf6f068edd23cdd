#include "backend/ref/ref_backend.h"

#include <cmath>
#include <vector>

#include "backend/host_kv.h"
#include "base/error.h"

namespace g4 {

namespace {

struct RefWeight : PackedWeight {
  std::vector<float> values;  // row-major in the logical shape
};

const RefWeight& as_ref(const PackedWeight& w) { return static_cast<const RefWeight&>(w); }
float* f32(Tensor& t) { return static_cast<float*>(t.data); }
const float* f32(const Tensor& t) { return static_cast<const float*>(t.data); }

}  // namespace

std::unique_ptr<PackedWeight> RefBackend::pack(const WeightView& w, WeightRole) {
  auto p = std::make_unique<RefWeight>();
  p->shape = w.shape;
  size_t n = 1;
  for (int64_t d : w.shape) n *= size_t(d);
  p->values.resize(n);
  if (w.quant) {  // the ref backend dequantizes: its matmul on a quantized weight is dequantize-then-f32
    validate(*w.quant, w.name);
    G4_CHECK(w.shape.size() == 2 && w.shape[0] == w.quant->rows && w.shape[1] == w.quant->cols, "quant shape");
    for (int64_t r = 0; r < w.quant->rows; ++r) dequantize_row(*w.quant, r, p->values.data() + r * w.quant->cols);
  } else {
    convert_to_f32(w.dtype, w.data, n, p->values.data());
  }
  return p;
}

Tensor RefBackend::empty(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  const size_t n = size_t(t.numel());
  t.storage = std::shared_ptr<void>(new float[n > 0 ? n : 1](), [](void* p) { delete[] static_cast<float*>(p); });
  t.data = t.storage.get();
  return t;
}

KvLayer RefBackend::new_kv_layer(const KvLayerSpec& spec) {
  return host_kv::make(spec, spec.k_from_v ? as_ref(*spec.k_norm).values.data() : nullptr);
}

void RefBackend::embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) {
  const RefWeight& e = as_ref(table);
  const int64_t H = e.shape[1];
  G4_CHECK(out.numel() == int64_t(tokens.size()) * H, "embed output shape");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* row = e.values.data() + size_t(tokens[i]) * size_t(H);
    for (int64_t j = 0; j < H; ++j) f32(out)[i * size_t(H) + size_t(j)] = row[j] * scale;
  }
}

void RefBackend::matmul(const Tensor& x, const PackedWeight& w, Tensor& y) {
  const RefWeight& W = as_ref(w);
  const int64_t out = W.shape[0], in = W.shape[1];
  G4_CHECK(x.cols() == in && y.cols() == out, "matmul shapes");
  const int64_t T = x.numel() / in;
  G4_CHECK(y.numel() == T * out, "matmul output rows");
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = f32(x) + t * in;
    for (int64_t o = 0; o < out; ++o) {
      const float* wr = W.values.data() + o * in;
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += double(xr[i]) * double(wr[i]);
      f32(y)[t * out + o] = float(acc);
    }
  }
}

void RefBackend::rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) {
  const int64_t n = x.cols(), rows = x.numel() / n;
  G4_CHECK(y.numel() == x.numel(), "rms_norm shapes");
  const float* wv = w ? as_ref(*w).values.data() : nullptr;
  if (w) G4_CHECK(int64_t(as_ref(*w).values.size()) == n, "rms_norm weight size");
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = f32(x) + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
    const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
    float* yr = f32(y) + r * n;
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * (wv ? wv[i] : 1.0f);
  }
}

void RefBackend::add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) {
  Tensor tmp = empty(o.shape);
  rms_norm(o, &w, eps, tmp);
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] += f32(tmp)[i];
}

void RefBackend::scale(Tensor& x, float s) {
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] *= s;
}

void RefBackend::rope(Tensor& x, int64_t p0, const RopeSpec& rope) {
  const int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), half = D / 2;
  G4_CHECK(rope.pairs <= half, "rope pairs exceed head_dim / 2");
  // Frequencies as transformers computes them: f32 inverse frequencies, f32 angle = position * w.
  std::vector<float> inv_freq(size_t(rope.pairs));
  for (int d = 0; d < rope.pairs; ++d)
    inv_freq[size_t(d)] = 1.0f / std::pow(rope.theta, float(2 * d) / float(D));
  for (int64_t t = 0; t < T; ++t) {
    const float pos = float(p0 + t);
    for (int d = 0; d < rope.pairs; ++d) {
      const float ang = pos * inv_freq[size_t(d)];
      const float c = float(std::cos(double(ang))), s = float(std::sin(double(ang)));
      for (int64_t h = 0; h < H; ++h) {
        float* v = f32(x) + (t * H + h) * D;
        const float a = v[d], b = v[d + half];
        v[d] = a * c - b * s;
        v[d + half] = b * c + a * s;
      }
    }
  }
}

void RefBackend::gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  G4_CHECK(gate.numel() == up.numel() && out.numel() == up.numel(), "gelu_mul shapes");
  const double k = std::sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < gate.numel(); ++i) {
    const double g = f32(gate)[i];
    const double gl = 0.5 * g * (1.0 + std::tanh(k * (g + 0.044715 * g * g * g)));
    f32(out)[i] = float(gl * double(f32(up)[i]));
  }
}

void RefBackend::attend(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0,
                        int window, Tensor& out) {
  const int64_t T = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k.dim(1);
  G4_CHECK(k.dim(0) == T && v.dim(0) == T && k.dim(2) == D && v.dim(2) == D && v.dim(1) == Hkv, "attention shapes");
  G4_CHECK(Hq % Hkv == 0, "attention GQA");
  G4_CHECK(cache.k.dim(1) == Hkv && cache.k.dim(2) == D, "attention cache shape");
  const int64_t group = Hq / Hkv;
  std::vector<double> scores, acc(static_cast<size_t>(D));
  std::vector<float> buf(static_cast<size_t>(D));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pq = p0 + t;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pq - window + 1) : 0;
    if (cache.ring && lo < p0) G4_CHECK(p0 - lo <= cache.capacity, "ring cache smaller than the window");
    if (!cache.ring) G4_CHECK(p0 <= cache.capacity, "flat cache overflow");
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / group;
      const float* qv = f32(q) + (t * Hq + h) * D;
      // Keys and values at or after p0 are the chunk's own (as the cache will hold them); earlier ones come
      // from the cache.
      auto key = [&](int64_t pk) -> const float* {
        const int64_t at = ((pk - p0) * Hkv + g) * D;
        return pk >= p0 ? host_kv::fresh_key(cache, f32(k) + at, f32(v) + at, pk, buf.data())
                        : host_kv::key(cache, pk, g, buf.data());
      };
      auto val = [&](int64_t pk) -> const float* {
        return pk >= p0 ? host_kv::fresh_value(cache, f32(v) + ((pk - p0) * Hkv + g) * D, buf.data())
                        : host_kv::value(cache, pk, g, buf.data());
      };
      scores.assign(size_t(pq - lo + 1), 0.0);
      double mx = -INFINITY;
      for (int64_t pk = lo; pk <= pq; ++pk) {
        const float* kv = key(pk);
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(qv[d]) * double(kv[d]);
        scores[size_t(pk - lo)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - mx));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t pk = lo; pk <= pq; ++pk) {
        const float* vr = val(pk);
        for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += scores[size_t(pk - lo)] * double(vr[d]);
      }
      float* o = f32(out) + (t * Hq + h) * D;
      for (int64_t d = 0; d < D; ++d) o[d] = float(acc[size_t(d)] / sum);
    }
  }
}

void RefBackend::softcap(Tensor& x, float cap) {
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] = cap * std::tanh(f32(x)[i] / cap);
}

}  // namespace g4
