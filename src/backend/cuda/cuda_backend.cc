#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_pool.h"
#include "backend/cuda/env.h"
#include "backend/cuda/step_recording.h"

namespace g4 {

using cuda::env_switch;
using cuda::WeightDesc;
using cuda::WFmt;

namespace {

// Device memory owned by a packed weight.
struct DevBuf {
  void* p = nullptr;
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  ~DevBuf() { if (p) cudaFree(p); }
};

struct CudaWeight : PackedWeight {
  WeightDesc desc;             // linears and embeddings
  const float* vec = nullptr;  // 1-D weights (norms), f32
  std::vector<std::unique_ptr<DevBuf>> bufs;

  void* put(const void* host, size_t bytes) {
    auto b = std::make_unique<DevBuf>();
    G4_CUDA(cudaMalloc(&b->p, bytes ? bytes : 1));
    G4_CUDA(cudaMemcpy(b->p, host, bytes, cudaMemcpyHostToDevice));
    bufs.push_back(std::move(b));
    return bufs.back()->p;
  }
};

const CudaWeight& as_cuda(const PackedWeight& w) { return static_cast<const CudaWeight&>(w); }
float* f32(Tensor& t) { return static_cast<float*>(t.data); }
const float* f32(const Tensor& t) { return static_cast<const float*>(t.data); }

cuda::SType stype_of(DType t) {
  switch (t) {
    case DType::kF32: return cuda::SType::kF32;
    case DType::kF16: return cuda::SType::kF16;
    default: return cuda::SType::kBF16;
  }
}

}  // namespace

bool cuda_device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device present";
    return false;
  }
  return true;
}

CudaBackend::CudaBackend(CudaOptions opt) : opt_(opt), pool_(std::make_shared<cuda::DevicePool>()) {
  std::string why;
  if (!cuda_device_available(&why)) throw Error("cuda backend: " + why);
  G4_CUDA(cudaSetDevice(opt_.device));
  G4_CUDA(cudaDeviceGetAttribute(&n_sm_, cudaDevAttrMultiProcessorCount, opt_.device));
  G4_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  G4_CUBLAS(cublasCreate(&cublas_));
  G4_CUBLAS(cublasSetStream(cublas_, stream_));
  G4_CUBLAS(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  G4_CUDA(cudaEventCreateWithFlags(&tokens_copied_, cudaEventDisableTiming));
}

CudaBackend::~CudaBackend() {
  if (stream_ && !recording_) cudaStreamSynchronize(stream_);
  rope_tables_.clear();
  rope_cs_tables_.clear();
  if (pinned_tokens_) cudaFreeHost(pinned_tokens_);
  if (tokens_copied_) cudaEventDestroy(tokens_copied_);
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::synchronize() { G4_CUDA(cudaStreamSynchronize(stream_)); }

// --- memory ---

std::unique_ptr<PackedWeight> CudaBackend::pack(const WeightView& w, WeightRole role) {
  auto p = std::make_unique<CudaWeight>();
  p->shape = w.shape;
  if (w.shape.size() == 1) {  // norms: f32 on the device
    G4_CHECK(!w.quant, "quantized 1-D weight");
    std::vector<float> v(size_t(w.shape[0]));
    convert_to_f32(w.dtype, w.data, v.size(), v.data());
    p->vec = static_cast<const float*>(p->put(v.data(), v.size() * 4));
    return p;
  }
  if (w.shape.size() != 2) throw Error(w.name + ": cuda backend packs 1-D and 2-D weights only");
  WeightDesc& d = p->desc;
  d.rows = w.shape[0];
  d.cols = w.shape[1];
  if (w.quant) {
    const QuantWeight& q = *w.quant;
    validate(q, w.name);
    if (q.rows != d.rows || q.cols != d.cols) throw Error(w.name + ": quantized shape differs from the tensor shape");
    const int64_t chunk = q.kind == QuantKind::kInt4 ? 32 : 16;
    if (q.group_size % chunk != 0)
      throw Error(w.name + ": cuda backend needs " + (q.kind == QuantKind::kInt4 ? "int4" : "int8") +
                  " group sizes that are multiples of " + std::to_string(chunk) + ", got " + std::to_string(q.group_size));
    d.fmt = q.kind == QuantKind::kInt4 ? WFmt::kInt4 : WFmt::kInt8;
    d.group_size = q.group_size;
    d.stype = stype_of(q.scale_dtype);
    const size_t sbytes = size_t(q.rows) * size_t(q.groups_per_row()) * dtype_size(q.scale_dtype);
    d.codes = p->put(q.codes, q.code_bytes());
    d.scales = p->put(q.scales, sbytes);
    if (q.zeros) d.zeros = p->put(q.zeros, sbytes);
    return p;
  }
  if (d.cols % 8 != 0) throw Error(w.name + ": cuda backend needs rows of a multiple of 8 elements, got " + std::to_string(d.cols));
  d.fmt = WFmt::kBF16;
  const size_t n = size_t(d.rows) * size_t(d.cols);
  if (w.dtype == DType::kBF16) {
    d.codes = p->put(w.data, n * 2);
  } else {  // f16/f32 checkpoints are rounded to bf16 (the GEMV and GEMM paths read bf16)
    std::vector<uint16_t> b(n);
    std::vector<float> row(size_t(d.cols));
    for (int64_t r = 0; r < d.rows; ++r) {
      convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + size_t(r * d.cols) * dtype_size(w.dtype),
                     row.size(), row.data());
      for (int64_t c = 0; c < d.cols; ++c) b[size_t(r * d.cols + c)] = f32_to_bf16(row[size_t(c)]);
    }
    d.codes = p->put(b.data(), n * 2);
  }
  (void)role;
  return p;
}

Tensor CudaBackend::empty(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.storage = scratch(size_t(std::max<int64_t>(t.numel(), 1)) * 4);
  t.data = t.storage.get();
  return t;
}

void CudaBackend::upload(Tensor& dst, const float* src) {
  pending_qx_ = {};
  G4_CUDA(cudaMemcpyAsync(dst.data, src, size_t(dst.numel()) * 4, cudaMemcpyHostToDevice, stream_));
  synchronize();
}

void CudaBackend::download(const Tensor& src, float* dst) {
  G4_CUDA(cudaMemcpyAsync(dst, src.data, size_t(src.numel()) * 4, cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  check_copy(src, dst);
  pending_qx_ = {};
  G4_CUDA(cudaMemcpyAsync(dst.data, src.data, size_t(src.numel()) * 4, cudaMemcpyDeviceToDevice, stream_));
}

// What attention needs to derive a K=V layer's keys: the k_norm weight (owned by the model) and the
// {cos, sin} table of every position on the device.
struct CudaDerive {
  const float* k_norm = nullptr;
  std::shared_ptr<void> rope_cs;
  int pairs = 0;
};

KvLayer CudaBackend::new_kv_layer(const KvLayerSpec& spec) {
  const bool ok = (spec.k_type == DType::kF32 || spec.k_type == DType::kBF16) && spec.v_type == spec.k_type;
  if (!ok)
    throw Error("the cuda backend stores its KV cache as f32 or bf16, K and V alike (asked for K " +
                kv_type_name(spec.k_type) + ", V " + kv_type_name(spec.v_type) + ")");
  KvLayer c;
  if (spec.k_from_v) {
    G4_CHECK(spec.k_norm && as_cuda(*spec.k_norm).vec && spec.k_norm->shape[0] == spec.head_dim && !spec.ring &&
                 spec.rope.pairs <= spec.head_dim / 2,
             "derived keys need k_norm and a flat cache");
    auto dv = std::make_shared<CudaDerive>();
    dv->k_norm = as_cuda(*spec.k_norm).vec;
    dv->pairs = spec.rope.pairs;
    // One device table per RoPE and capacity, shared by the layers and sequences that use it.
    auto key = std::make_tuple(spec.rope.theta, spec.rope.pairs, int64_t(spec.head_dim), spec.capacity);
    auto& table = rope_cs_tables_[key];
    if (!table) {
      const auto host = rope_cos_sin(spec.rope, spec.head_dim, spec.capacity);
      void* p = nullptr;
      G4_CUDA(cudaMalloc(&p, std::max<size_t>(host->size(), 1) * 4));
      table = std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
      G4_CUDA(cudaMemcpy(p, host->data(), host->size() * 4, cudaMemcpyHostToDevice));
    }
    dv->rope_cs = table;
    c.derive = dv;
    c.k_from_v = true;
    c.k.shape = {0, spec.n_kv_heads, spec.head_dim};
    c.k.dtype = spec.k_type;
  }
  std::vector<Tensor*> stored = {&c.v};
  if (!spec.k_from_v) stored.push_back(&c.k);
  for (Tensor* t : stored) {
    t->shape = {spec.capacity, spec.n_kv_heads, spec.head_dim};
    t->dtype = spec.k_type;
    const size_t bytes = size_t(std::max<int64_t>(t->numel(), 1)) * dtype_size(spec.k_type);
    t->storage = scratch(bytes);
    t->data = t->storage.get();
    G4_CUDA(cudaMemsetAsync(t->data, 0, bytes, stream_));
  }
  c.capacity = spec.capacity;
  c.ring = spec.ring;
  c.k_type = c.v_type = spec.k_type;
  return c;
}

// --- ops ---

void CudaBackend::embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) {
  const WeightDesc& d = as_cuda(table).desc;
  const int T = int(tokens.size());
  G4_CHECK(out.numel() == int64_t(T) * d.cols, "embed output shape");
  if (T == 0) return;
  if (recording_) {  // the tokens come from the step slot at replay time
    G4_CHECK(T == recording_->n_tokens_, "a recorded step embeds the tokens it was begun with");
    cuda::embed_rows(d, recording_->dev_->tokens, T, scale, f32(out), stream_);
    return;
  }
  // The pinned staging buffer is reused: wait until its previous copy has left it.
  G4_CUDA(cudaEventSynchronize(tokens_copied_));
  if (size_t(T) > pinned_cap_) {
    if (pinned_tokens_) G4_CUDA(cudaFreeHost(pinned_tokens_));
    pinned_tokens_ = nullptr;
    G4_CUDA(cudaMallocHost(&pinned_tokens_, size_t(T) * 4));
    pinned_cap_ = size_t(T);
  }
  std::memcpy(pinned_tokens_, tokens.data(), size_t(T) * 4);
  auto dev = scratch(size_t(T) * 4);
  G4_CUDA(cudaMemcpyAsync(dev.get(), pinned_tokens_, size_t(T) * 4, cudaMemcpyHostToDevice, stream_));
  G4_CUDA(cudaEventRecord(tokens_copied_, stream_));
  cuda::embed_rows(d, static_cast<const int32_t*>(dev.get()), T, scale, f32(out), stream_);
}

// A verify of the longest exact draft is recorded like a decode step (forward.cc records up to kMaxRecordedTokens).
static_assert(cuda::kExactStepMaxT <= kMaxRecordedTokens, "the longest exact verify is a recordable step");

int CudaBackend::exact_step_tokens() const {
  return opt_.precise ? 1 : std::min(cuda::kExactStepMaxT, cuda::gemm_mma_min_tokens() - 1);
}

bool CudaBackend::mma_takes(const cuda::WeightDesc& w, int64_t T) const {
  return !opt_.precise && T >= cuda::gemm_mma_min_tokens() && T <= cuda::kMmaMaxT && cuda::gemm_mma_supported(w);
}

void CudaBackend::matmul(const Tensor& x, const PackedWeight& w, Tensor& y) {
  const WeightDesc& d = as_cuda(w).desc;
  const int64_t N = d.rows, K = d.cols;
  G4_CHECK(x.cols() == K && y.cols() == N, "matmul shapes");
  const int64_t T = x.numel() / K;
  G4_CHECK(y.numel() == T * N, "matmul output rows");
  // x as the op before left it, already rounded (gelu_mul's or attention's), if it is; dropped either way
  // (its cuBLAS paths launch outside launch.cuh's count).
  const std::shared_ptr<void> rounded = take_qx(x, T, K);
  if (T == 0) return;
  if (mma_takes(d, T)) {
    // 10-32 tokens of int4 weights (fast mode): the tensor-core kernel reads the weights once for all.
    auto xq = scratch(cuda::gemm_mma_x_bytes(d, int(T)));
    cuda::gemm_mma_quantize_x(d, f32(x), int(T), xq.get(), stream_);
    cuda::gemm_mma_quantized(d, xq.get(), int(T), f32(y), stream_);
    return;
  }
  if (T <= cuda::kGemvMaxT || (!opt_.precise && T <= cuda::kGemvGroupMaxT)) {
    // Precise mode keeps the activations in f16 (the dp4a kernel rounds them to int8). Up to kGemvMaxT rows
    // in one GEMV (kGemvQ8MaxT for the dp4a kernel); in fast mode a few more (a decode step of several
    // sequences) in groups of that many, which reads the weights once a group: less than the GEMM path's
    // dequantized copy.
    cuda::GemvTuning tune;
    if (opt_.precise) tune.dp4a = -1;
    const int64_t G = std::min<int64_t>(T, cuda::gemv_takes_q8(d, tune) ? cuda::kGemvQ8MaxT : cuda::kGemvMaxT);
    if (rounded && cuda::gemv_takes_q8(d, tune) && T <= cuda::kGemvQ8MaxT) {
      cuda::gemv_q8_quantized(d, rounded.get(), int(T), f32(y), stream_, tune);  // what gemv does after its rounding
      return;
    }
    auto xp = scratch(cuda::gemv_x_bytes(d, int(G)));
    for (int64_t r0 = 0; r0 < T; r0 += G) {
      const int64_t n = std::min(G, T - r0);
      cuda::gemv(d, f32(x) + r0 * K, int(n), xp.get(), f32(y) + r0 * N, stream_, tune);
    }
    return;
  }
  // Tensor-core path: weights dequantized block by block (never the whole model), cuBLAS per block.
  const bool precise = opt_.precise;
  const size_t esz = precise ? 4 : 2;
  std::shared_ptr<void> xb;
  const void* xin = x.data;
  if (!precise) {
    xb = scratch(size_t(T * K) * 2);
    cuda::f32_to_bf16(f32(x), T * K, xb.get(), stream_);
    xin = xb.get();
  }
  const bool direct = !precise && d.fmt == WFmt::kBF16;
  const int64_t block_rows = direct ? N : std::max<int64_t>(1, std::min<int64_t>(N, int64_t(opt_.gemm_scratch_bytes / (size_t(K) * esz))));
  std::shared_ptr<void> wb = direct ? nullptr : scratch(size_t(block_rows * K) * esz);
  const cudaDataType_t ab = precise ? CUDA_R_32F : CUDA_R_16BF;
  const float alpha = 1.f, beta = 0.f;
  for (int64_t r0 = 0; r0 < N; r0 += block_rows) {
    const int64_t n = std::min(block_rows, N - r0);
    const void* A;
    if (direct) {
      A = static_cast<const uint16_t*>(d.codes) + r0 * K;
    } else {
      cuda::dequant_rows(d, r0, n, wb.get(), precise, stream_);
      A = wb.get();
    }
    // Column-major view: y^T[N, T] (ld N) = W[N, K] (stored as K x N, ld K, transposed) * x^T (K x T, ld K).
    G4_CUBLAS(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(T), int(K), &alpha, A, ab, int(K), xin, ab,
                           int(K), &beta, f32(y) + r0, CUDA_R_32F, int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

void CudaBackend::rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) {
  const int64_t n = x.cols();
  G4_CHECK(y.numel() == x.numel(), "rms_norm shapes");
  const float* wv = nullptr;
  if (w) {
    G4_CHECK(as_cuda(*w).vec && w->shape[0] == n, "rms_norm weight size");
    wv = as_cuda(*w).vec;
  }
  cuda::rms_norm(f32(x), wv, eps, x.numel() / n, n, f32(y), stream_);
}

void CudaBackend::add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) {
  const int64_t n = o.cols();
  G4_CHECK(x.numel() == o.numel() && as_cuda(w).vec && w.shape[0] == n, "add_rms_norm shapes");
  cuda::add_rms_norm(f32(x), f32(o), as_cuda(w).vec, eps, o.numel() / n, n, stream_);
}

void CudaBackend::scale(Tensor& x, float s) { cuda::scale(f32(x), x.numel(), s, stream_); }

const float* CudaBackend::inv_freq(float theta, int pairs, int64_t D) {
  auto key = std::make_tuple(theta, pairs, D);
  auto it = rope_tables_.find(key);
  if (it != rope_tables_.end()) return static_cast<const float*>(it->second.get());
  std::vector<float> f(size_t(std::max(pairs, 1)));
  for (int d = 0; d < pairs; ++d) f[size_t(d)] = 1.0f / std::pow(theta, float(2 * d) / float(D));  // as the ref backend
  void* p = nullptr;
  G4_CUDA(cudaMalloc(&p, f.size() * 4));
  std::shared_ptr<void> buf(p, [](void* q) { cudaFree(q); });
  G4_CUDA(cudaMemcpy(p, f.data(), f.size() * 4, cudaMemcpyHostToDevice));
  rope_tables_[key] = buf;
  return static_cast<const float*>(p);
}

std::shared_ptr<void> CudaBackend::qx_buffer(bool on, int64_t T, int64_t K) {
  if (!on || opt_.precise || !cuda::gemv_q8_enabled() || T < 1 || T > cuda::kGemvQ8MaxT || K % 32 != 0) return nullptr;
  return scratch(cuda::gemv_q8_x_bytes_cols(K, int(T)));
}

void CudaBackend::keep_qx(const Tensor& out, int64_t T, int64_t K, std::shared_ptr<void> xq) {
  pending_qx_ = {f32(out), T, K, cuda::launches_so_far(), std::move(xq)};
}

std::shared_ptr<void> CudaBackend::take_qx(const Tensor& x, int64_t T, int64_t K) {
  PendingQx p = std::move(pending_qx_);
  pending_qx_ = {};
  const bool stands = p.xq && p.x == f32(x) && p.T == T && p.K == K && p.launches == cuda::launches_so_far();
  return stands ? std::move(p.xq) : nullptr;
}

void CudaBackend::gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  G4_CHECK(gate.numel() == up.numel() && out.numel() == up.numel(), "gelu_mul shapes");
  // out also rounded to int8 for the down projection that reads it next (pending_qx_, as add_norm_scale_norm
  // does for q/k/v and gate/up): 60 more of a step's rounding launches go (H100, 60-layer Q4_0, with the
  // attention merge's below: one sequence +1.7%, eight +0.6%; docs/PERF.md). For comparisons:
  // G4_CUDA_FUSE_QX_DOWN=0, the rounding in its own launch.
  static const bool fuse_qx = env_switch("G4_CUDA_FUSE_QX_DOWN", true);
  pending_qx_ = {};
  const int64_t n = out.cols(), T = out.numel() / n;
  auto xq = qx_buffer(fuse_qx, T, n);
  if (xq && cuda::gelu_mul_q8(f32(gate), f32(up), T, n, f32(out), xq.get(), stream_)) {
    keep_qx(out, T, n, std::move(xq));
    return;
  }
  cuda::gelu_mul(f32(gate), f32(up), gate.numel(), f32(out), stream_);
}

// q/k/v or gate/up: x rounded to int8 once per group of tokens, all weights in one launch per group.
void CudaBackend::matmul_shared(const Tensor& x, const std::vector<const PackedWeight*>& ws,
                                const std::vector<Tensor*>& ys) {
  G4_CHECK(ws.size() == ys.size() && !ws.empty(), "matmul_shared: one output per weight");
  const int64_t K = x.cols(), T = x.numel() / K;
  std::vector<cuda::WeightDesc> d;
  std::vector<float*> yp;
  for (size_t i = 0; i < ws.size(); ++i) {
    d.push_back(as_cuda(*ws[i]).desc);
    yp.push_back(f32(*ys[i]));
    G4_CHECK(d.back().cols == K && ys[i]->cols() == d.back().rows && ys[i]->numel() == T * d.back().rows,
             "matmul_shared shapes");
  }
  const int n = int(d.size());
  bool mma = true;
  for (const cuda::WeightDesc& w : d) mma = mma && mma_takes(w, T) && w.cols == K;
  if (mma) {
    auto xq = scratch(cuda::gemm_mma_x_bytes(d[0], int(T)));
    cuda::gemm_mma_quantize_x(d[0], f32(x), int(T), xq.get(), stream_);
    for (int i = 0; i < n; ++i) cuda::gemm_mma_quantized(d[size_t(i)], xq.get(), int(T), yp[size_t(i)], stream_);
    return;
  }
  if (!opt_.precise && T >= 1 && T <= cuda::kGemvGroupMaxT && cuda::gemv_q8_enabled() && cuda::gemv_q8_can_share(d.data(), n)) {
    // Groups of up to kGemvQ8MaxT tokens, each launch holding all the weights as a one-token step does: the
    // kernel's shape depends on the launch's rows, so one matmul per weight would sum a token's dot products
    // in another order than its one-token launch (k and v alone are short launches, q/k/v together a long
    // one) and a verify of 9 tokens would not give plain greedy's tokens.
    const int64_t G = std::min<int64_t>(T, cuda::kGemvQ8MaxT);
    // x as the norm before left it, already rounded (take_qx): one group of the same T and K.
    std::shared_ptr<void> xq = take_qx(x, T, K);
    const bool rounded = xq != nullptr;
    if (!rounded) xq = scratch(cuda::gemv_q8_x_bytes(d[0], int(G)));
    std::vector<float*> yg(yp.size());
    for (int64_t r0 = 0; r0 < T; r0 += G) {
      const int g = int(std::min(G, T - r0));
      for (size_t i = 0; i < yp.size(); ++i) yg[i] = yp[i] + r0 * d[i].rows;
      if (!rounded) cuda::gemv_q8_quantize_x(d[0], f32(x) + r0 * K, g, xq.get(), stream_);
      cuda::gemv_q8_multi(d.data(), yg.data(), n, xq.get(), g, stream_);
    }
    return;
  }
  Backend::matmul_shared(x, ws, ys);
}

namespace {

// Cuts seqs into launches: runs of consecutive entries with contiguous rows, at most cuda::kMaxSeqs, with
// same(prev, next) true between neighbours; go(i0, i1, r0, n) for each run of entries [i0, i1) covering
// rows [r0, r0 + n). Entries without rows are skipped.
template <class Same, class Go>
void for_each_run(const std::vector<SeqRows>& seqs, Same same, Go go) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].n > 0) idx.push_back(i);
  for (size_t a = 0; a < idx.size();) {
    size_t b = a + 1;
    while (b < idx.size() && b - a < size_t(cuda::kMaxSeqs) && idx[b] == idx[b - 1] + 1 &&
           seqs[idx[b]].row0 == seqs[idx[b - 1]].row0 + seqs[idx[b - 1]].n && same(seqs[idx[b - 1]], seqs[idx[b]]))
      ++b;
    const SeqRows &first = seqs[idx[a]], &last = seqs[idx[b - 1]];
    go(idx[a], idx[b - 1] + 1, first.row0, last.row0 + last.n - first.row0);
    a = b;
  }
}

bool same_derivation(const KvLayer& a, const KvLayer& b) {
  if (!a.k_from_v) return true;
  const auto& x = *static_cast<const CudaDerive*>(a.derive.get());
  const auto& y = *static_cast<const CudaDerive*>(b.derive.get());
  return x.k_norm == y.k_norm && x.rope_cs == y.rope_cs && x.pairs == y.pairs;
}

bool same_cache_shape(const SeqRows& a, const SeqRows& b) {
  return a.cache->capacity == b.cache->capacity && a.cache->ring == b.cache->ring && a.cache->k_type == b.cache->k_type &&
         a.cache->k_from_v == b.cache->k_from_v && same_derivation(*a.cache, *b.cache);
}

}  // namespace

cuda::SeqTable CudaBackend::seq_table(const std::vector<SeqRows>& seqs, size_t i0, size_t i1) const {
  G4_CHECK(i1 > i0 && i1 - i0 <= size_t(cuda::kMaxSeqs), "sequence table size");
  G4_CHECK(!recording_ || seqs.size() == recording_->pos_.size(),
           "a recorded step's ops take the sequences it was begun with");
  cuda::SeqTable t;
  t.n = int(i1 - i0);
  t.dpos = recording_ ? rec_pos() + i0 : nullptr;  // entry j's replayed position: dpos[j]
  for (size_t i = i0; i < i1; ++i) {
    cuda::SeqEntry& e = t.e[i - i0];
    // (the kernels that store cache rows index positions in 32 bits: seq_table.cuh kv_write_at)
    G4_CHECK(seqs[i].p0 >= 0 && seqs[i].p0 + seqs[i].n < (int64_t(1) << 31), "cuda: positions past 2^31");
    e.p0 = rec_offset(i, seqs[i].p0);  // recording: relative to the replayed position (seq_table.cuh)
    e.row0 = int32_t(seqs[i].row0 - seqs[i0].row0);
    e.n = int32_t(seqs[i].n);
    if (seqs[i].cache) e.ck = seqs[i].cache->k.data, e.cv = seqs[i].cache->v.data;
  }
  return t;
}

void CudaBackend::rope(Tensor& x, int64_t p0, const RopeSpec& rope) { rope_rows(x, {SeqRows{0, x.dim(0), p0, nullptr}}, rope); }

void CudaBackend::rope_rows(Tensor& x, const std::vector<SeqRows>& seqs, const RopeSpec& rope) {
  const int64_t H = x.dim(1), D = x.dim(2);
  G4_CHECK(rope.pairs <= D / 2, "rope pairs exceed head_dim / 2");
  const auto any = [](const SeqRows&, const SeqRows&) { return true; };
  for_each_run(seqs, any, [&](size_t i0, size_t i1, int64_t r0, int64_t n) {
    cuda::rope(f32(x) + r0 * H * D, n, H, D, seq_table(seqs, i0, i1), inv_freq(rope.theta, rope.pairs, D), rope.pairs,
               stream_);
  });
}

void CudaBackend::qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq,
                                const PackedWeight& wk, float eps, const std::vector<SeqRows>& seqs,
                                const RopeSpec& rope, Tensor& k, Tensor& v) {
  const int64_t T = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k_raw.dim(1);
  G4_CHECK(k_raw.dim(0) == T && k_raw.dim(2) == D && v_raw.numel() == k_raw.numel() && k.numel() == k_raw.numel() &&
               v.numel() == k_raw.numel(),
           "qkv_norm_rope shapes");
  G4_CHECK(as_cuda(wq).vec && wq.shape[0] == D && as_cuda(wk).vec && wk.shape[0] == D, "qkv_norm_rope weight size");
  G4_CHECK(rope.pairs <= D / 2, "rope pairs exceed head_dim / 2");
  check_seq_rows(seqs, T, false);
  bool fused = true;
  const auto any = [](const SeqRows&, const SeqRows&) { return true; };
  for_each_run(seqs, any, [&](size_t i0, size_t i1, int64_t r0, int64_t n) {
    const int64_t qo = r0 * Hq * D, ko = r0 * Hkv * D;
    fused = fused && cuda::qkv_norm_rope(f32(q) + qo, f32(k_raw) + ko, f32(v_raw) + ko, as_cuda(wq).vec,
                                         as_cuda(wk).vec, eps, n, int(Hq), int(Hkv), int(D), seq_table(seqs, i0, i1),
                                         inv_freq(rope.theta, rope.pairs, D), rope.pairs, f32(k) + ko, f32(v) + ko,
                                         stream_);
  });
  if (!fused) Backend::qkv_norm_rope(q, k_raw, v_raw, wq, wk, eps, seqs, rope, k, v);
}

void CudaBackend::add_norm_scale_norm(Tensor& x, const Tensor& o, const PackedWeight& w_post, float s,
                                      const PackedWeight& w_next, float eps, Tensor& out) {
  const int64_t n = o.cols();
  G4_CHECK(x.numel() == o.numel() && out.numel() == o.numel() && as_cuda(w_post).vec && w_post.shape[0] == n &&
               as_cuda(w_next).vec && w_next.shape[0] == n,
           "add_norm_scale_norm shapes");
  // out also rounded to int8 for the q/k/v or gate/up GEMV that reads it (pending_qx_): 120 of a step's 241
  // rounding launches go (H100, 60-layer Q4_0: one sequence +2.7%, eight +0.9%; docs/PERF.md). For
  // comparisons: G4_CUDA_FUSE_QX=0, the rounding in its own launch.
  static const bool fuse_qx = env_switch("G4_CUDA_FUSE_QX", true);
  const int64_t T = o.numel() / n;
  pending_qx_ = {};
  std::shared_ptr<void> xq = qx_buffer(fuse_qx, T, n);
  if (cuda::add_norm_scale_norm(f32(x), f32(o), as_cuda(w_post).vec, s, as_cuda(w_next).vec, eps, T, n, f32(out),
                                stream_, xq.get())) {
    if (xq) keep_qx(out, T, n, std::move(xq));
    return;
  }
  Backend::add_norm_scale_norm(x, o, w_post, s, w_next, eps, out);
}

void CudaBackend::softcap(Tensor& x, float cap) { cuda::softcap(f32(x), x.numel(), cap, stream_); }

Tensor CudaBackend::gather_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const int64_t C = x.cols(), R = x.numel() / C;
  Tensor y = empty({int64_t(rows.size()), C});
  // Runs of consecutive rows (a decode batch's last rows: a run or a few): one copy per run while there are
  // few, else the ids go up once and one kernel gathers (the assistant's centroid mask picks thousands of
  // scattered logits).
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    G4_CHECK(rows[i] >= 0 && rows[j - 1] < R, "gather_rows: row out of range");
    runs.emplace_back(i, j);
    i = j;
  }
  constexpr size_t kMaxCopies = 64;  // above a step's sequences (kMaxSeqs): their last rows stay copies
  if (runs.size() > kMaxCopies) {
    G4_CHECK(!recording_, "gather_rows of scattered rows while recording a step");
    auto ids = scratch(rows.size() * sizeof(int64_t));
    G4_CUDA(cudaMemcpyAsync(ids.get(), rows.data(), rows.size() * sizeof(int64_t), cudaMemcpyHostToDevice, stream_));
    // (From pageable memory the copy has taken the ids when it returns: `rows` may go.)
    cuda::gather_rows(f32(x), static_cast<const int64_t*>(ids.get()), int64_t(rows.size()), C, f32(y), stream_);
    return y;
  }
  for (const auto& [i, j] : runs)
    G4_CUDA(cudaMemcpyAsync(f32(y) + int64_t(i) * C, f32(x) + rows[i] * C, (j - i) * size_t(C) * 4,
                            cudaMemcpyDeviceToDevice, stream_));
  return y;
}

void CudaBackend::check_kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) const {
  const int64_t T = k.dim(0), row = k.dim(1) * k.dim(2);
  G4_CHECK(v.numel() == k.numel(), "kv_append shapes");
  check_seq_rows(seqs, T, true);
  for (const SeqRows& s : seqs) {
    G4_CHECK(s.cache->v.dim(1) * s.cache->v.dim(2) == row, "kv_append shapes");
    if (!s.cache->ring) G4_CHECK(s.p0 + s.n <= s.cache->capacity, "flat cache overflow");
  }
}

void CudaBackend::kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) {
  check_kv_append(seqs, k, v);
  const int64_t row = k.dim(1) * k.dim(2);
  const uint64_t before = cuda::launches_so_far();
  for_each_run(seqs, same_cache_shape, [&](size_t i0, size_t i1, int64_t r0, int64_t n) {
    const KvLayer& c = *seqs[i0].cache;
    cuda::kv_write(seq_table(seqs, i0, i1), f32(k) + r0 * row, f32(v) + r0 * row, n, row, c.capacity, c.ring,
                   c.k_type == DType::kBF16, stream_);
  });
  // It writes only the caches, so the attention output's rounded copy (pending_qx_), made just before, still
  // stands for it: the forward appends the step's keys between the attention and the o projection.
  if (pending_qx_.xq && pending_qx_.launches == before) pending_qx_.launches = cuda::launches_so_far();
}

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                            int window, Tensor& out) {
  attend(q, k, v, seqs, window, out, false);
}

// One sequence's decode launch (a step or a verify): the attention's merge launch stores the new rows too
// (each merge block a share), one kv_write launch a layer fewer. H100, depth 512, Q4_0: a step +0.9 to +1.9%
// a token (+0.6% on g4's int4), a verify of 4 1.153-1.155 -> 1.145-1.152 one-token steps. Several sequences
// keep attention then kv_append: fused, 8 sequences ran 0.6% slower (docs/PERF.md). G4_CUDA_FUSE_KV=0
// (comparisons): never fused.
void CudaBackend::attend_and_append(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                                    int window, Tensor& out) {
  static const bool fuse = env_switch("G4_CUDA_FUSE_KV", true);
  if (!fuse || seqs.size() != 1) return Backend::attend_and_append(q, k, v, seqs, window, out);
  check_kv_append(seqs, k, v);
  attend(q, k, v, seqs, window, out, true);
}

void CudaBackend::attend(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                         int window, Tensor& out, bool append) {
  const int64_t T = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k.dim(1);
  G4_CHECK(k.dim(0) == T && v.dim(0) == T && k.dim(2) == D && v.dim(2) == D && v.dim(1) == Hkv, "attention shapes");
  G4_CHECK(Hq % Hkv == 0 && out.numel() == q.numel(), "attention GQA");
  check_seq_rows(seqs, T, true);
  for (const SeqRows& s : seqs) {
    const KvLayer& cache = *s.cache;
    G4_CHECK(cache.v.dim(1) == Hkv && cache.v.dim(2) == D, "attention cache shape");
    // The same capacity rules as the ref backend, checked for the earliest key the first query sees.
    const int64_t lo = window > 0 ? std::max<int64_t>(0, s.p0 - window + 1) : 0;
    if (cache.ring && lo < s.p0) G4_CHECK(s.p0 - lo <= cache.capacity, "ring cache smaller than the window");
    if (!cache.ring) G4_CHECK(s.p0 <= cache.capacity, "flat cache overflow");
  }
  // Sequences whose queries suit the decode kernels share a launch; any other one takes the GEMM path alone.
  // A recorded step (at most kMaxRecordedTokens queries) always takes the decode kernels: its replays run
  // at other depths than the recording's.
  const auto decode = [&](const SeqRows& s) { return recording_ || cuda::attn_decode_suits(s.n, s.p0, window); };
  const auto same = [&](const SeqRows& a, const SeqRows& b) { return same_cache_shape(a, b) && decode(a) && decode(b); };
  // A decode launch covering every row also rounds out to int8 for the o projection that reads it next
  // (pending_qx_, as add_norm_scale_norm does for q/k/v; measured with gelu_mul's above). For comparisons:
  // G4_CUDA_FUSE_QX_O=0, the rounding in its own launch.
  static const bool fuse_qx = env_switch("G4_CUDA_FUSE_QX_O", true);
  pending_qx_ = {};
  const int64_t K = Hq * D;
  std::shared_ptr<void> xq = D % 32 == 0 && K % 1024 == 0 ? qx_buffer(fuse_qx, T, K) : nullptr;
  bool rounded = false;
  for_each_run(seqs, same, [&](size_t i0, size_t i1, int64_t r0, int64_t n) {
    const KvLayer& c = *seqs[i0].cache;
    const int64_t qo = r0 * Hq * D, ko = r0 * Hkv * D;
    cuda::AttnArgs a{f32(q) + qo, f32(k) + ko, f32(v) + ko, seq_table(seqs, i0, i1), n, Hq, Hkv, D, c.capacity,
                     c.ring, window, f32(out) + qo, c.k_type == DType::kBF16};
    if (c.k_from_v) {
      const auto& dv = *static_cast<const CudaDerive*>(c.derive.get());
      a.kw = dv.k_norm, a.rope_cs = static_cast<const float*>(dv.rope_cs.get()), a.pairs = dv.pairs;
    }
    const bool all_rows = r0 == 0 && n == T;
    if (decode(seqs[i0])) {
      auto s = scratch(cuda::attn_decode_scratch_bytes(a, n_sm_));
      cuda::attn_decode(a, s.get(), n_sm_, stream_, all_rows ? xq.get() : nullptr, append);
      rounded = all_rows && xq;
    } else {
      attention_prefill(a);
      if (append) cuda::attn_store_rows(a, stream_);
    }
  });
  if (rounded) keep_qx(out, T, K, std::move(xq));
}

// Prefill attention (more queries than the decode kernels take). Fast mode, head dims 32-512 (powers of
// two): the flash kernel (attn_prefill.cu) over the keys and values gathered once as f16, no score matrix.
// Otherwise scores and outputs through cuBLAS, per KV head a batch over its GQA group, the queries cut into
// blocks so that the score matrix stays under 1 GiB: f16 products in fast mode (queries, keys, values and
// the probabilities; f32 sums and scores), f32 throughout in precise mode.
void CudaBackend::attention_prefill(const cuda::AttnArgs& a) {
  if (cuda::knocked_out(cuda::Knock::kAttn) || a.T == 0) return;
  const int64_t group = a.Hq / a.Hkv, D = a.D;
  const bool f16 = !opt_.precise;
  const cudaDataType_t in = f16 ? CUDA_R_16F : CUDA_R_32F;
  const size_t esz = f16 ? 2 : 4;
  const float one = 1.f, zero = 0.f;
  G4_CHECK(a.seqs.n == 1 && !a.seqs.dpos, "the GEMM attention path takes one sequence");
  const int64_t p0 = a.seqs.e[0].p0;
  static const bool flash_on = env_switch("G4_CUDA_FLASH_PREFILL", true);  // 0: the GEMM path below
  if (f16 && flash_on && cuda::attn_prefill_f16_supports(D, group)) {
    // Every key any query sees, gathered once as f16; then one pass over them per block of queries.
    const int64_t lo = a.window > 0 ? std::max<int64_t>(0, p0 - a.window + 1) : 0, n = p0 + a.T - lo;
    auto kc = scratch(size_t(n * a.Hkv * D) * 2), vc = scratch(size_t(n * a.Hkv * D) * 2);
    cuda::gather_kv_f16(a, lo, n, kc.get(), vc.get(), stream_);
    cuda::attn_prefill_f16(a.q, kc.get(), vc.get(), a.out, a.T, a.Hq, a.Hkv, D, p0, lo, n, a.window, stream_);
    return;
  }
  const int64_t max_keys = p0 + a.T;
  const int64_t tq = std::max<int64_t>(1, std::min<int64_t>(a.T, (int64_t(1) << 28) / (a.Hq * max_keys)));
  for (int64_t t0 = 0; t0 < a.T; t0 += tq) {
    const int64_t nq = std::min(tq, a.T - t0), pq0 = p0 + t0;
    const int64_t lo = a.window > 0 ? std::max<int64_t>(0, pq0 - a.window + 1) : 0;
    const int64_t n = p0 + t0 + nq - lo;
    auto kc = scratch(size_t(n * a.Hkv * D) * esz), vc = scratch(size_t(n * a.Hkv * D) * esz);
    auto sc = scratch(size_t(a.Hq * nq * n) * 4);
    float* S = static_cast<float*>(sc.get());
    const float* q = a.q + t0 * a.Hq * D;
    std::shared_ptr<void> qh;
    if (f16) {
      cuda::gather_kv_f16(a, lo, n, kc.get(), vc.get(), stream_);
      qh = scratch(size_t(nq * a.Hq * D) * 2);
      cuda::f32_to_f16(q, nq * a.Hq * D, qh.get(), stream_);
    } else {
      cuda::gather_kv(a, lo, n, static_cast<float*>(kc.get()), static_cast<float*>(vc.get()), stream_);
    }
    const char* Q = static_cast<const char*>(f16 ? qh.get() : static_cast<const void*>(q));
    const char* K = static_cast<const char*>(kc.get());
    const char* V = static_cast<const char*>(vc.get());
    for (int64_t g = 0; g < a.Hkv; ++g) {
      const int64_t h0 = g * group;
      // S_h^T [n, nq] = K_g (n x D) * Q_h^T, batched over the group's heads.
      G4_CUBLAS(cublasGemmStridedBatchedEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(nq), int(D), &one,
                                           K + size_t(g * D) * esz, in, int(a.Hkv * D), 0, Q + size_t(h0 * D) * esz, in,
                                           int(a.Hq * D), D, &zero, S + h0 * nq * n, CUDA_R_32F, int(n), nq * n,
                                           int(group), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    cuda::masked_softmax(S, a.Hq, nq, n, pq0, lo, a.window, f16, stream_);
    // The probabilities: f32 rows of n, or f16 rows at the start of each f32 row (a leading dimension of 2n).
    const int64_t ldp = f16 ? 2 * n : n;
    const char* P = reinterpret_cast<const char*>(S);
    for (int64_t g = 0; g < a.Hkv; ++g) {
      const int64_t h0 = g * group;
      // O_h^T [D, nq] = V_g^T (D x n) * P_h^T (n x nq).
      G4_CUBLAS(cublasGemmStridedBatchedEx(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, int(D), int(nq), int(n), &one,
                                           V + size_t(g * D) * esz, in, int(a.Hkv * D), 0,
                                           P + size_t(h0 * nq * ldp) * esz, in, int(ldp), nq * ldp, &zero,
                                           a.out + (t0 * a.Hq + h0) * D, CUDA_R_32F, int(a.Hq * D), D, int(group),
                                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
}

}  // namespace g4
