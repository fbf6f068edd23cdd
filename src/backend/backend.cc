#include "backend/backend.h"

#include "base/error.h"

namespace g4 {

Tensor Tensor::view(std::vector<int64_t> new_shape) const {
  Tensor t = *this;
  t.shape = std::move(new_shape);
  G4_CHECK(t.numel() == numel(), "view changes the element count");
  return t;
}

void Backend::matmul_shared(const Tensor& x, const std::vector<const PackedWeight*>& ws, const std::vector<Tensor*>& ys) {
  G4_CHECK(ws.size() == ys.size(), "matmul_shared: one output per weight");
  for (size_t i = 0; i < ws.size(); ++i) matmul(x, *ws[i], *ys[i]);
}

void Backend::qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq,
                            const PackedWeight& wk, float eps, int64_t p0, const RopeSpec& rope_spec, Tensor& k,
                            Tensor& v) {
  rms_norm(q, &wq, eps, q);
  rms_norm(k_raw, &wk, eps, k);
  rms_norm(v_raw, nullptr, eps, v);
  rope(q, p0, rope_spec);
  rope(k, p0, rope_spec);
}

void Backend::add_norm_scale_norm(Tensor& x, const Tensor& o, const PackedWeight& w_post, float s,
                                  const PackedWeight& w_next, float eps, Tensor& out) {
  add_rms_norm(x, o, w_post, eps);
  if (s != 1.0f) scale(x, s);
  rms_norm(x, &w_next, eps, out);
}

}  // namespace g4
