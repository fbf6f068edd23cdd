// The CPU backend: weights packed at load time into SIMD layouts (cpu_weight.h), int4/int8 matmuls as
// integer dot products against activations quantized on the fly to int8 per 32-element group, dense
// bf16/f16/f32 matmuls in f32, attention and the small ops in f32, all split over a thread pool.
// Thread count: constructor argument, else $G4_THREADS, else all hardware threads.
// One forward pass at a time per backend (scratch buffers are members).
#pragma once

#include <memory>

#include "backend/host_backend.h"
#include "backend/cpu/cpu_weight.h"
#include "backend/cpu/kernels.h"
#include "base/thread_pool.h"

namespace g4 {

class CpuBackend : public HostBackend {
 public:
  explicit CpuBackend(int n_threads = 0, const cpu::KernelTable* kernels = nullptr);
  std::string name() const override { return "cpu"; }
  const cpu::KernelTable& kernels() const { return *k_; }
  int threads() const override { return pool_.size(); }

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
  // (cpu_attention.cc)
  void attend(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0, int window,
              Tensor& out) override;

 private:
  // Runs fn(begin, end) over [0, n) in about threads * 4 chunks whose sizes are multiples of `align`.
  void parallel_rows(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

  const cpu::KernelTable* k_;
  ThreadPool pool_;
  cpu::QAct act_;  // scratch: the quantized activations of the current matmul
};

}  // namespace g4
