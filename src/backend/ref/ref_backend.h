// The reference backend: plain scalar C++, one thread, f32 activations, f64 accumulation in the
// reductions. It is the oracle every other backend is tested against, so it favours being obviously
// right over being fast. Weights are converted to f32 at pack time.
#pragma once

#include "backend/host_backend.h"

namespace g4 {

class RefBackend : public HostBackend {
 public:
  std::string name() const override { return "ref"; }
  std::unique_ptr<PackedWeight> pack(const WeightView& w, WeightRole role) override;
  Tensor empty(std::vector<int64_t> shape) override;
  KvLayer new_kv_layer(const KvLayerSpec& spec) override;

  void embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) override;
  void matmul(const Tensor& x, const PackedWeight& w, Tensor& y) override;
  void rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) override;
  void add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) override;
  void scale(Tensor& x, float s) override;
  void rope(Tensor& x, int64_t p0, const RopeSpec& rope) override;
  void gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void softcap(Tensor& x, float cap) override;

 protected:
  void attend(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0, int window,
              Tensor& out) override;
};

}  // namespace g4
