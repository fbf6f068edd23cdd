#include "backend/backend.h"

#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "base/error.h"

namespace g4 {

Tensor Tensor::view(std::vector<int64_t> new_shape) const {
  Tensor t = *this;
  t.shape = std::move(new_shape);
  G4_CHECK(t.numel() == numel(), "view changes the element count");
  return t;
}

Tensor Tensor::rows(int64_t row0, int64_t n) const {
  G4_CHECK(!shape.empty() && row0 >= 0 && n >= 0 && row0 + n <= shape[0], "row view out of range");
  Tensor t = *this;
  const int64_t row_elems = shape[0] > 0 ? numel() / shape[0] : 0;
  t.shape[0] = n;
  t.data = static_cast<char*>(data) + size_t(row0 * row_elems) * dtype_size(dtype);
  return t;
}

std::shared_ptr<const std::vector<float>> rope_cos_sin(const RopeSpec& r, int64_t D, int64_t n) {
  static std::mutex mu;
  static std::map<std::tuple<float, int, int64_t, int64_t>, std::weak_ptr<const std::vector<float>>> tables;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = tables[{r.theta, r.pairs, D, n}];
  if (auto t = slot.lock()) return t;
  auto t = std::make_shared<std::vector<float>>(size_t(n) * size_t(r.pairs) * 2);
  std::vector<float> inv_freq(size_t(r.pairs));
  for (int d = 0; d < r.pairs; ++d) inv_freq[size_t(d)] = 1.0f / std::pow(r.theta, float(2 * d) / float(D));
  for (int64_t p = 0; p < n; ++p)
    for (int d = 0; d < r.pairs; ++d) {
      const float ang = float(p) * inv_freq[size_t(d)];
      (*t)[size_t((p * r.pairs + d) * 2)] = float(std::cos(double(ang)));
      (*t)[size_t((p * r.pairs + d) * 2 + 1)] = float(std::sin(double(ang)));
    }
  slot = t;
  return t;
}

void check_seq_rows(const std::vector<SeqRows>& seqs, int64_t T, bool need_cache) {
  for (const SeqRows& s : seqs) {
    G4_CHECK(s.row0 >= 0 && s.n >= 0 && s.row0 + s.n <= T && s.p0 >= 0, "sequence rows out of range");
    G4_CHECK(!need_cache || s.cache, "sequence rows without a cache");
  }
}

std::vector<int32_t> Backend::sample_rows(const Tensor& logits, const std::vector<RowSampling>& rows) {
  if (logits.shape.size() != 2 || int64_t(rows.size()) != logits.dim(0))
    throw Error("sample_rows: " + std::to_string(rows.size()) + " row choices for a logits tensor of " +
                std::to_string(logits.shape.empty() ? 0 : logits.dim(0)) + " rows");
  const int64_t V = logits.dim(1);
  std::vector<float> host(size_t(logits.numel()));
  download(logits, host.data());
  std::vector<int32_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    float* row = host.data() + i * size_t(V);
    ban_tokens(row, V, rows[i].banned);
    out[i] = choose_token(rows[i].params, row, V, rows[i].history, rows[i].u);
  }
  return out;
}

DType parse_kv_type(const std::string& name, const std::string& flag) {
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "q8_0" || name == "int8") return DType::kI8;
  throw Error(flag + ": unknown KV cache type '" + name + "' (use f32, bf16 or q8_0)");
}

std::string kv_type_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI8: return "q8_0";
    default: return dtype_name(t);
  }
}

int64_t kv_bytes_per_position(const KvLayerSpec& s) {
  const int64_t row = int64_t(s.n_kv_heads) * s.head_dim;
  auto one = [&](DType t) { return row * int64_t(dtype_size(t)) + (t == DType::kI8 ? 4 * s.n_kv_heads : 0); };
  return (s.k_from_v ? 0 : one(s.k_type)) + one(s.v_type);
}

void Backend::check_copy(const Tensor& src, const Tensor& dst) {
  G4_CHECK(src.numel() == dst.numel(), "copy: " + std::to_string(src.numel()) + " values into " + std::to_string(dst.numel()));
}

void Backend::copy(const Tensor& src, Tensor& dst) {
  check_copy(src, dst);
  std::vector<float> host(size_t(src.numel()));
  download(src, host.data());
  upload(dst, host.data());
}

Tensor Backend::slice_rows(const Tensor& x, int64_t row0, int64_t n) {
  std::vector<int64_t> rows(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = row0 + i;
  return gather_rows(x, rows);
}

void Backend::matmul_shared(const Tensor& x, const std::vector<const PackedWeight*>& ws, const std::vector<Tensor*>& ys) {
  G4_CHECK(ws.size() == ys.size(), "matmul_shared: one output per weight");
  for (size_t i = 0; i < ws.size(); ++i) matmul(x, *ws[i], *ys[i]);
}

void Backend::qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq,
                            const PackedWeight& wk, float eps, const std::vector<SeqRows>& seqs,
                            const RopeSpec& rope_spec, Tensor& k, Tensor& v) {
  rms_norm(q, &wq, eps, q);
  rms_norm(k_raw, &wk, eps, k);
  rms_norm(v_raw, nullptr, eps, v);
  rope_rows(q, seqs, rope_spec);
  rope_rows(k, seqs, rope_spec);
}

void Backend::rope_rows(Tensor& x, const std::vector<SeqRows>& seqs, const RopeSpec& rope_spec) {
  for (const SeqRows& s : seqs) {
    Tensor xs = x.rows(s.row0, s.n);
    rope(xs, s.p0, rope_spec);
  }
}

void Backend::add_norm_scale_norm(Tensor& x, const Tensor& o, const PackedWeight& w_post, float s,
                                  const PackedWeight& w_next, float eps, Tensor& out) {
  add_rms_norm(x, o, w_post, eps);
  if (s != 1.0f) scale(x, s);
  rms_norm(x, &w_next, eps, out);
}

}  // namespace g4
