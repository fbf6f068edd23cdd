#include "backend/host_backend.h"

#include <cstring>

#include "backend/host_kv.h"
#include "base/error.h"

namespace g4 {

void HostBackend::upload(Tensor& dst, const float* src) { std::memcpy(dst.data, src, size_t(dst.numel()) * 4); }
void HostBackend::download(const Tensor& src, float* dst) { std::memcpy(dst, src.data, size_t(src.numel()) * 4); }

void HostBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                            int window, Tensor& out) {
  host_kv::each_sequence(q, k, v, seqs, out,
                         [&](const Tensor& qs, const Tensor& ks, const Tensor& vs, const KvLayer& cache, int64_t p0,
                             Tensor& os) { attend(qs, ks, vs, cache, p0, window, os); });
}

void HostBackend::kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) {
  host_kv::append(seqs, k, v);
}

Tensor HostBackend::gather_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const int64_t C = x.cols(), R = x.numel() / C;
  Tensor y = empty({int64_t(rows.size()), C});
  for (size_t i = 0; i < rows.size(); ++i) {
    G4_CHECK(rows[i] >= 0 && rows[i] < R, "gather_rows: row out of range");
    std::memcpy(static_cast<float*>(y.data) + int64_t(i) * C, static_cast<const float*>(x.data) + rows[i] * C,
                size_t(C) * 4);
  }
  return y;
}

}  // namespace g4
