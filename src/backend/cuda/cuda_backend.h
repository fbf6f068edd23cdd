// The CUDA backend: weights packed into device memory at load time (int4/int8 codes with their group
// scales and zero points as given, bf16 as bf16; norms as f32), f32 activations in device memory, and
// every op enqueued on one stream without host synchronisation (only download() waits). Decode
// matmuls (T <= 4) use the GEMV kernels of gemv.cu; longer inputs dequantize bounded row blocks to
// bf16 and run cuBLAS on tensor cores. Options::precise swaps the tensor-core paths for f32 cuBLAS
// (the fixture tests use it to hold the 1e-3 bound of the reference).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

namespace g4 {

namespace cuda {
class DevicePool;
}

struct CudaOptions {
  int device = 0;
  bool precise = false;                    // f32 GEMMs (no bf16/f16 tensor cores) for prefill and attention
  size_t gemm_scratch_bytes = 256u << 20;  // bound on the dequantized weight block of the GEMM path
  bool step_graphs = true;                 // record decode steps as CUDA graphs (begin_step_recording)
};

class CudaStepGraph;

// True when a CUDA device can be used; otherwise false with the reason in *why.
bool cuda_device_available(std::string* why);

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(CudaOptions opt = {});  // throws g4::Error when no device can be used
  ~CudaBackend() override;
  std::string name() const override { return "cuda"; }

  std::unique_ptr<PackedWeight> pack(const WeightView& w, WeightRole role) override;
  Tensor empty(std::vector<int64_t> shape) override;
  void upload(Tensor& dst, const float* src) override;
  void download(const Tensor& src, float* dst) override;
  void copy(const Tensor& src, Tensor& dst) override;  // on the stream, no wait
  KvLayer new_kv_layer(const KvLayerSpec& spec) override;

  void embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) override;
  void matmul(const Tensor& x, const PackedWeight& w, Tensor& y) override;
  void rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) override;
  void add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) override;
  void scale(Tensor& x, float s) override;
  void rope(Tensor& x, int64_t p0, const RopeSpec& rope) override;
  // Each row at its sequence's position from the sequence table (a recorded step's: its replayed one).
  void rope_rows(Tensor& x, const std::vector<SeqRows>& seqs, const RopeSpec& rope) override;
  void gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) override;
  using Backend::attention;
  using Backend::kv_append;
  using Backend::qkv_norm_rope;
  // Every sequence of a step in one launch per op (in runs of cuda::kMaxSeqs sequences).
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs, int window,
                 Tensor& out) override;
  void kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) override;
  // A one-sequence decode step's row is stored by the attention's merge launch (no kv_write launch).
  void attend_and_append(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                         int window, Tensor& out) override;
  void softcap(Tensor& x, float cap) override;
  Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) override;
  void matmul_shared(const Tensor& x, const std::vector<const PackedWeight*>& ws, const std::vector<Tensor*>& ys) override;
  void qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq, const PackedWeight& wk,
                     float eps, const std::vector<SeqRows>& seqs, const RopeSpec& rope, Tensor& k, Tensor& v) override;
  void add_norm_scale_norm(Tensor& x, const Tensor& o, const PackedWeight& w_post, float s, const PackedWeight& w_next,
                           float eps, Tensor& out) override;

  // Fast mode: below the tensor-core GEMM's threshold, and the decode attention kernels (attn_decode_suits);
  // precise mode: one (a lone token takes another GEMV kernel than several).
  int exact_step_tokens() const override;

  // Chooses on the device (sample.cu); only the ids are copied back.
  std::vector<int32_t> sample_rows(const Tensor& logits, const std::vector<RowSampling>& rows) override;

  // Decode, verify and batched decode steps as CUDA graphs: the token ids and first positions live in a
  // pinned host slot that the graph's first node copies to the device, so one graph serves every position.
  std::unique_ptr<StepRecording> begin_step_recording(int n_tokens, const std::vector<int64_t>& pos) override;
  void end_step_recording(StepRecording& rec) override;
  void replay_step(StepRecording& rec, const std::vector<int32_t>& tokens, const std::vector<int64_t>& pos) override;

  cudaStream_t stream() const { return stream_; }
  void synchronize();
  int sm_count() const { return n_sm_; }
  // Device scratch from the pool, returned to it when the last copy of the handle goes.
  std::shared_ptr<void> scratch(size_t bytes);

 private:
  friend class CudaStepGraph;
  // attention, and with append the rows stored too (attend_and_append; its checks made by the caller).
  void attend(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs, int window,
              Tensor& out, bool append);
  // kv_append's checks of its arguments.
  void check_kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) const;
  void attention_prefill(const cuda::AttnArgs& a);
  // The kernels' table for seqs[i0, i1), rows counted from seqs[i0].row0; a recorded step's position
  // comes from its slot.
  cuda::SeqTable seq_table(const std::vector<SeqRows>& seqs, size_t i0, size_t i1) const;
  // The recorded step's device positions (one a sequence), null when not recording.
  const int64_t* rec_pos() const;
  // A host position p of the step's i-th sequence as a recorded op keeps it: p less the position the
  // recording began with for that sequence (the kernels add the replayed one), or p itself when not recording.
  int64_t rec_offset(size_t i, int64_t p) const;
  const float* inv_freq(float theta, int pairs, int64_t D);
  // Whether a matmul of T tokens on w takes the tensor-core kernel (gemm_mma.cu).
  bool mma_takes(const cuda::WeightDesc& w, int64_t T) const;
  // The rounded int8 copy of an op's output for the GEMV that reads it next (pending_qx_ below): qx_buffer
  // gives a buffer for T rows of K values when `on` and the integer GEMV would take them (fast mode, at most
  // kGemvQ8MaxT rows, 32-value chunks), else null; keep_qx makes it out's pending copy; take_qx returns it if
  // it stands for x [T, K] (no kernel since), else null, and drops it either way.
  std::shared_ptr<void> qx_buffer(bool on, int64_t T, int64_t K);
  void keep_qx(const Tensor& out, int64_t T, int64_t K, std::shared_ptr<void> xq);
  std::shared_ptr<void> take_qx(const Tensor& x, int64_t T, int64_t K);

  CudaOptions opt_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::shared_ptr<cuda::DevicePool> pool_;
  int n_sm_ = 0;
  int32_t* pinned_tokens_ = nullptr;
  size_t pinned_cap_ = 0;
  cudaEvent_t tokens_copied_ = nullptr;
  std::map<std::tuple<float, int, int64_t>, std::shared_ptr<void>> rope_tables_;
  // Derived keys' {cos, sin} tables by (theta, pairs, head_dim, capacity).
  std::map<std::tuple<float, int, int64_t, int64_t>, std::shared_ptr<void>> rope_cs_tables_;
  CudaStepGraph* recording_ = nullptr;  // the step being recorded, if any
  // An op's output already rounded to int8 for the GEMV that reads it next (add_norm_scale_norm writes it
  // for matmul_shared, gelu_mul and attention for matmul; the GEMV takes it instead of launching the rounding when x is
  // that output, no kernel ran in between (cuda::launches_so_far) and no copy wrote device memory). Dropped
  // by the next matmul or matmul_shared either way.
  struct PendingQx {
    const float* x = nullptr;
    int64_t T = 0, K = 0;
    uint64_t launches = 0;
    std::shared_ptr<void> xq;
  } pending_qx_;
};

}  // namespace g4
