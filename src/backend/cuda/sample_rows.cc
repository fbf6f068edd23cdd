// CudaBackend::sample_rows: the token of each logits row chosen on the device (sample.cu); the host sends
// each row's parameters, its uniform number, the penalties' (id, count) pairs and the banned ids, and reads
// back 4 bytes a row instead of the row's V floats.
#include <map>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "base/error.h"

namespace g4 {

std::vector<int32_t> CudaBackend::sample_rows(const Tensor& logits, const std::vector<RowSampling>& rows) {
  if (logits.shape.size() != 2 || int64_t(rows.size()) != logits.dim(0))
    throw Error("sample_rows: " + std::to_string(rows.size()) + " row choices for a logits tensor of " +
                std::to_string(logits.shape.empty() ? 0 : logits.dim(0)) + " rows");
  G4_CHECK(!recording_, "sample_rows while recording a decode step");
  const int64_t R = logits.dim(0), V = logits.dim(1);
  std::vector<int32_t> ids(static_cast<size_t>(R));
  if (R == 0) return ids;
  auto out = scratch(size_t(R) * 4);
  int32_t* out_d = static_cast<int32_t*>(out.get());
  // Every row greedy without penalties or bans (greedy decoding, a greedy verify): one launch pair for all
  // rows instead of one a row.
  bool all_plain = R <= 65535;
  for (const RowSampling& row : rows)
    all_plain = all_plain && cuda::greedy_choice(row.params.temperature, row.params.top_k, V) &&
                no_penalties(row.params) && row.banned.empty();
  auto work = scratch(all_plain ? cuda::argmax_rows_scratch_bytes(R, V) : cuda::choose_token_scratch_bytes(V));
  // Each row's upload (penalties' ids and counts, banned ids), kept until the copies have run.
  std::vector<std::vector<int32_t>> uploads(static_cast<size_t>(R));
  std::vector<std::shared_ptr<void>> uploads_dev;
  if (all_plain) {
    cuda::argmax_rows(static_cast<const float*>(logits.data), R, V, work.get(), out_d, stream_);
  } else {
    for (int64_t r = 0; r < R; ++r) {
      const RowSampling& row = rows[size_t(r)];
      const SamplingParams& p = row.params;
      cuda::ChoiceArgs a;
      a.temperature = p.temperature;
      a.top_k = p.top_k;
      a.top_p = p.top_p;
      a.min_p = p.min_p;
      a.repeat_penalty = p.repeat_penalty;
      a.presence_penalty = p.presence_penalty;
      a.frequency_penalty = p.frequency_penalty;
      a.u = row.u;
      // One upload a row: the penalties' ids and counts, then the banned ids.
      std::vector<int32_t>& up = uploads[size_t(r)];
      if (!no_penalties(p)) {  // the counts penalized_logits (backend/sampling.cc) takes
        const std::vector<int32_t>& h = row.history;
        const size_t start = h.size() > size_t(p.repeat_last_n) ? h.size() - size_t(p.repeat_last_n) : 0;
        std::map<int32_t, int32_t> counts;
        for (size_t i = start; i < h.size(); ++i)
          if (h[i] >= 0 && h[i] < V) ++counts[h[i]];
        for (const auto& [id, c] : counts) up.push_back(id);
        for (const auto& [id, c] : counts) up.push_back(c);
        a.n_pen = int(counts.size());
      }
      for (int32_t b : row.banned)
        if (b >= 0 && b < V) up.push_back(b), ++a.n_ban;
      if (!up.empty()) {
        uploads_dev.push_back(scratch(up.size() * 4));
        int32_t* d = static_cast<int32_t*>(uploads_dev.back().get());
        G4_CUDA(cudaMemcpyAsync(d, up.data(), up.size() * 4, cudaMemcpyHostToDevice, stream_));
        if (a.n_pen > 0) a.pen_ids = d, a.pen_counts = d + a.n_pen;
        if (a.n_ban > 0) a.ban_ids = d + 2 * a.n_pen;
      }
      cuda::choose_token(static_cast<const float*>(logits.data) + r * V, V, a, work.get(), out_d + r, stream_);
    }
  }
  G4_CUDA(cudaMemcpyAsync(ids.data(), out_d, size_t(R) * 4, cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return ids;
}

}  // namespace g4
