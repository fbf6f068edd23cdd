// CpuBackend: packing entry, memory, matmul dispatch and the elementwise ops. Attention is in
// cpu_attention.cc. Elementwise ops are written as plain loops the compiler vectorises; they are a small
// share of the time next to the matmuls, so they stay portable.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "backend/host_kv.h"
#include "base/error.h"

namespace g4 {

namespace {

const cpu::CpuWeight& as_cpu(const PackedWeight& w) { return static_cast<const cpu::CpuWeight&>(w); }
float* f32(Tensor& t) { return static_cast<float*>(t.data); }
const float* f32(const Tensor& t) { return static_cast<const float*>(t.data); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int threads_from_env() {
  const char* e = std::getenv("G4_THREADS");
  if (!e || !*e) return 0;
  char* end = nullptr;
  const long n = std::strtol(e, &end, 10);
  if (*end != '\0' || n < 1 || n > 1024) throw Error(std::string("G4_THREADS=") + e + " is not a thread count in 1..1024");
  return int(n);
}

}  // namespace

CpuBackend::CpuBackend(int n_threads, const cpu::KernelTable* kernels)
    : k_(kernels ? kernels : &cpu::select_kernels()), pool_(n_threads > 0 ? n_threads : threads_from_env()) {
  cpu::prefetch_ahead_override();  // a malformed G4_CPU_PREFETCH is an error here, not in a worker thread
}

void CpuBackend::parallel_rows(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t want = int64_t(pool_.size()) * 4;
  int64_t chunk = (n + want - 1) / want;
  chunk = std::max<int64_t>(align, (chunk + align - 1) / align * align);
  const int64_t tasks = (n + chunk - 1) / chunk;
  pool_.run(tasks, [&](int64_t i) { fn(i * chunk, std::min(n, (i + 1) * chunk)); });
}

std::unique_ptr<PackedWeight> CpuBackend::pack(const WeightView& w, WeightRole role) {
  auto p = std::make_unique<cpu::CpuWeight>();
  p->shape = w.shape;
  if (role == WeightRole::kNorm || w.shape.size() == 1) {
    G4_CHECK(!w.quant, "quantized norm weights are not supported");
    size_t n = 1;
    for (int64_t d : w.shape) n *= size_t(d);
    p->vec.resize(n);
    convert_to_f32(w.dtype, w.data, n, p->vec.data());
    return p;
  }
  G4_CHECK(w.shape.size() == 2, "cpu pack: weights are [out, in]");
  if (w.quant) {
    validate(*w.quant, w.name);
    if (w.shape[0] != w.quant->rows || w.shape[1] != w.quant->cols)
      throw Error(w.name + ": quantized shape does not match the logical shape " + shape_str(w.shape));
    if (cpu::can_pack_quant(*w.quant)) {
      p->quantized = true;
      cpu::pack_quant(*w.quant, w.name, p->q, [this](int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
        parallel_rows(rows, cpu::kTileRows, fn);
      });
    } else {  // group sizes below 32: dequantize once and run the dense f32 path
      std::vector<float> rows(size_t(w.quant->rows * w.quant->cols));
      for (int64_t r = 0; r < w.quant->rows; ++r) dequantize_row(*w.quant, r, rows.data() + r * w.quant->cols);
      cpu::pack_dense(DType::kF32, rows.data(), w.quant->rows, w.quant->cols, p->d);
    }
    return p;
  }
  cpu::pack_dense(w.dtype, w.data, w.shape[0], w.shape[1], p->d);
  return p;
}

Tensor CpuBackend::empty(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  const size_t bytes = std::max<size_t>(64, (size_t(t.numel()) * 4 + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw Error("out of memory allocating an activation of " + std::to_string(bytes) + " bytes");
  t.storage = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data = p;
  return t;
}

KvLayer CpuBackend::new_kv_layer(const KvLayerSpec& spec) {
  return host_kv::make(spec, spec.k_from_v ? as_cpu(*spec.k_norm).vec.data() : nullptr);
}

void CpuBackend::embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) {
  const cpu::CpuWeight& e = as_cpu(table);
  const int64_t H = e.shape[1];
  G4_CHECK(out.numel() == int64_t(tokens.size()) * H, "embed output shape");
  pool_.run(int64_t(tokens.size()), [&](int64_t i) {
    float* row = f32(out) + i * H;
    if (e.quantized) cpu::dequantize_packed_row(e.q, tokens[size_t(i)], row);
    else cpu::dense_row_f32(e.d, tokens[size_t(i)], row);
    for (int64_t j = 0; j < H; ++j) row[j] *= scale;
  });
}

void CpuBackend::matmul(const Tensor& x, const PackedWeight& w, Tensor& y) {
  const cpu::CpuWeight& W = as_cpu(w);
  const int64_t out = W.shape[0], in = W.shape[1];
  G4_CHECK(x.cols() == in && y.cols() == out, "matmul shapes");
  const int64_t T = x.numel() / in;
  G4_CHECK(y.numel() == T * out, "matmul output rows");
  if (T == 0) return;
  if (W.quantized) {
    act_.resize(T, W.q.cols_p);
    pool_.run(T, [&](int64_t t) { k_->quantize_row(f32(x) + t * in, in, act_, t); });
    parallel_rows(out, cpu::kTileRows, [&](int64_t r0, int64_t r1) { k_->qgemm(W.q, act_, f32(y), out, r0, r1); });
  } else {
    parallel_rows(out, 4, [&](int64_t r0, int64_t r1) { k_->dgemm(W.d, f32(x), T, f32(y), out, r0, r1); });
  }
}

void CpuBackend::rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) {
  const int64_t n = x.cols(), rows = x.numel() / n;
  G4_CHECK(y.numel() == x.numel(), "rms_norm shapes");
  const float* wv = w ? as_cpu(*w).vec.data() : nullptr;
  if (w) G4_CHECK(int64_t(as_cpu(*w).vec.size()) == n, "rms_norm weight size");
  parallel_rows(rows, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = f32(x) + r * n;
      float* yr = f32(y) + r * n;
      const float inv = 1.0f / std::sqrt(k_->dot_f32(xr, xr, n) / float(n) + eps);
      if (wv) for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * wv[i];
      else for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv;
    }
  });
}

void CpuBackend::add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) {
  const int64_t n = o.cols(), rows = o.numel() / n;
  G4_CHECK(x.numel() == o.numel() && int64_t(as_cpu(w).vec.size()) == n, "add_rms_norm shapes");
  const float* wv = as_cpu(w).vec.data();
  parallel_rows(rows, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* orow = f32(o) + r * n;
      float* xr = f32(x) + r * n;
      const float inv = 1.0f / std::sqrt(k_->dot_f32(orow, orow, n) / float(n) + eps);
      for (int64_t i = 0; i < n; ++i) xr[i] += orow[i] * inv * wv[i];
    }
  });
}

void CpuBackend::scale(Tensor& x, float s) {
  float* p = f32(x);
  parallel_rows(x.numel(), 1024, [&](int64_t a, int64_t b) { for (int64_t i = a; i < b; ++i) p[i] *= s; });
}

void CpuBackend::rope(Tensor& x, int64_t p0, const RopeSpec& rope) {
  const int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2), half = D / 2;
  G4_CHECK(rope.pairs <= half, "rope pairs exceed head_dim / 2");
  // Angles exactly as the reference computes them (f32 inverse frequency and angle, cos/sin in double).
  std::vector<float> inv_freq(size_t(rope.pairs));
  for (int d = 0; d < rope.pairs; ++d) inv_freq[size_t(d)] = 1.0f / std::pow(rope.theta, float(2 * d) / float(D));
  pool_.run(T, [&](int64_t t) {
    std::vector<float> c(size_t(rope.pairs)), s(size_t(rope.pairs));
    const float pos = float(p0 + t);
    for (int d = 0; d < rope.pairs; ++d) {
      const float ang = pos * inv_freq[size_t(d)];
      c[size_t(d)] = float(std::cos(double(ang)));
      s[size_t(d)] = float(std::sin(double(ang)));
    }
    for (int64_t h = 0; h < H; ++h) {
      float* v = f32(x) + (t * H + h) * D;
      for (int d = 0; d < rope.pairs; ++d) {
        const float a = v[d], b = v[d + half];
        v[d] = a * c[size_t(d)] - b * s[size_t(d)];
        v[d + half] = b * c[size_t(d)] + a * s[size_t(d)];
      }
    }
  });
}

void CpuBackend::gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  G4_CHECK(gate.numel() == up.numel() && out.numel() == up.numel(), "gelu_mul shapes");
  const float* g = f32(gate);
  const float* u = f32(up);
  float* o = f32(out);
  parallel_rows(gate.numel(), 1024, [&](int64_t a, int64_t b) { k_->gelu_mul(g + a, u + a, o + a, b - a); });
}

void CpuBackend::softcap(Tensor& x, float cap) {
  float* p = f32(x);
  parallel_rows(x.numel(), 1024, [&](int64_t a, int64_t b) { k_->softcap(p + a, b - a, cap); });
}

}  // namespace g4
