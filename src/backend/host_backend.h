// What the two host-memory backends (ref and cpu) share: activations are f32 arrays in host memory, the KV
// cache is host_kv's, and attention runs one sequence at a time through the backend's attend().
#pragma once

#include <vector>

#include "backend/backend.h"

namespace g4 {

class HostBackend : public Backend {
 public:
  void upload(Tensor& dst, const float* src) override;
  void download(const Tensor& src, float* dst) override;
  using Backend::attention;
  using Backend::kv_append;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs, int window,
                 Tensor& out) override;
  void kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) override;
  Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) override;

 protected:
  // Attention for one sequence's rows: queries at positions p0 .. p0 + T - 1 over its cache and new keys.
  virtual void attend(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0, int window,
                      Tensor& out) = 0;
};

}  // namespace g4
