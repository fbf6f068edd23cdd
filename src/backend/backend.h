// The backend interface: the one place where model code meets hardware. A backend
//   - packs checkpoint tensors into its own layout at load time (pack),
//   - owns activation and KV-cache memory (Tensor, KvLayer),
//   - runs the Gemma-shaped op set below.
// model/forward.cc is written once against this interface. Every op has a plain scalar version in
// backend/ref, which is the oracle the optimised backends are tested against.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/sampling.h"
#include "base/dtype.h"
#include "quant/format.h"

namespace g4 {

// An activation tensor in backend memory (host memory for ref/cpu, device memory for cuda).
// Copies share the storage. Shapes are outermost-first, e.g. [n_tokens, d_model].
struct Tensor {
  std::shared_ptr<void> storage;
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t dim(int i) const { return shape[size_t(i < 0 ? int(shape.size()) + i : i)]; }
  // The last dimension (1 for a scalar): a row's length when the tensor is seen as rows.
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  // Same storage, new shape with the same element count.
  Tensor view(std::vector<int64_t> new_shape) const;
  // Same storage: rows [row0, row0 + n) of the outermost dimension, no copy.
  Tensor rows(int64_t row0, int64_t n) const;
};

// What a checkpoint tensor is used for; a backend may pick a layout per role.
enum class WeightRole { kLinear, kEmbedding, kNorm };

// A checkpoint tensor as stored: plain f32/f16/bf16 (quant == nullptr, values at `data`), or the
// backend-neutral quantized form of quant/format.h (quant != nullptr; dtype and data unused).
struct WeightView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // [out, in] for linears and embeddings, [n] for norms
  const void* data = nullptr;
  const QuantWeight* quant = nullptr;
};

// A weight in the backend's own layout. shape is the logical [out, in] / [n] shape.
class PackedWeight {
 public:
  virtual ~PackedWeight() = default;
  std::vector<int64_t> shape;
};

struct RopeSpec {
  float theta = 10000.0f;
  int pairs = 0;  // (d, d + D/2) for d < pairs rotate with w_d = theta^(-2d/D); the rest pass through
};

// {cos, sin} of the RoPE angle of every position < n and pair, [n][pairs][2], computed as every backend's
// rope computes them (f32 inverse frequency and angle, cos/sin in double): what deriving cached keys
// needs. Shared between callers with the same arguments while any holds it.
std::shared_ptr<const std::vector<float>> rope_cos_sin(const RopeSpec& rope, int64_t head_dim, int64_t n);

// How one attention layer's KV cache is stored. Sliding layers use a ring of `capacity` slots (position p
// lives in slot p % capacity; capacity = window + slack, so a rollback of up to slack + 1 positions keeps
// every key the next query needs); full layers use a flat cache (slot = position).
// Element types: kF32, kBF16, or kI8 (symmetric, one f32 scale per position and KV head: x = q * scale).
struct KvLayerSpec {
  int64_t capacity = 0;
  int n_kv_heads = 0, head_dim = 0;
  bool ring = false;
  DType k_type = DType::kF32, v_type = DType::kF32;
  // K=V layers may store V only: V is the weightless norm of the raw K projection and K = RoPE(V * k_norm)
  // at the key's position, so attention derives cached keys from cached values (exact up to rounding).
  bool k_from_v = false;
  const PackedWeight* k_norm = nullptr;  // k_from_v: the layer's k_norm weight (packed by this backend)
  RopeSpec rope;                         // k_from_v: the layer's RoPE
};

struct KvLayer {
  Tensor k, v;              // [capacity, n_kv_heads, head_dim] in k_type / v_type
  Tensor k_scale, v_scale;  // kI8 only: [capacity, n_kv_heads] f32
  int64_t capacity = 0;
  bool ring = false;
  DType k_type = DType::kF32, v_type = DType::kF32;
  bool k_from_v = false;               // k is empty; keys are derived from v (KvLayerSpec::k_from_v)
  std::shared_ptr<const void> derive;  // k_from_v: the backend's data for deriving keys
};

// One sequence's part of a batched step: rows [row0, row0 + n) of the step's activations are that
// sequence's positions p0 .. p0 + n - 1, and `cache` is its KV cache layer for the layer being run. The
// per-sequence ops below take a list of these, so that a backend can serve every sequence of a step in
// one pass (one kernel launch per op on cuda) while each sequence keeps its own positions and cache.
struct SeqRows {
  int64_t row0 = 0, n = 0, p0 = 0;
  KvLayer* cache = nullptr;
};

// Throws g4::Error unless every entry covers rows inside [0, T) and (need_cache) names a cache.
void check_seq_rows(const std::vector<SeqRows>& seqs, int64_t T, bool need_cache);

// The KV element types a cache may use, by their llama.cpp names: "f32", "bf16", "q8_0" (= kI8 here).
// Throws g4::Error naming the flag for anything else.
DType parse_kv_type(const std::string& name, const std::string& flag);
std::string kv_type_name(DType t);
// Bytes one position of one layer takes: K (unless derived) and V rows plus int8 scales.
int64_t kv_bytes_per_position(const KvLayerSpec& s);

// A recorded decode or verify step that the backend can replay with new tokens and new positions
// (CUDA graphs). Opaque to callers; see Backend::begin_step_recording.
// The tokens of a recorded step of one sequence: a decode step, or a verify of up to the longest draft that
// the cuda backend verifies exactly (8 drafted tokens and the pending one: Backend::exact_step_tokens).
constexpr int kMaxRecordedTokens = 9;
constexpr int kMaxRecordedSeqs = 32;   // the sequences of a recorded batched decode step (one token each)
class StepRecording {
 public:
  virtual ~StepRecording() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // CPU threads the backend computes with (1 for the scalar ref backend and for cuda's host thread).
  virtual int threads() const { return 1; }
  // The most tokens of one sequence a forward step computes each bit for bit as its one-token step would (so
  // greedy speculation with a draft of up to this minus one gives plain greedy's tokens).
  virtual int exact_step_tokens() const { return 1 << 30; }

  // --- memory ---
  virtual std::unique_ptr<PackedWeight> pack(const WeightView& w, WeightRole role) = 0;
  virtual Tensor empty(std::vector<int64_t> shape) = 0;                   // f32, uninitialised
  virtual void upload(Tensor& dst, const float* src) = 0;                 // dst.numel() floats
  virtual void download(const Tensor& src, float* dst) = 0;               // src.numel() floats
  // dst = src, both on this backend with the same element count (the default goes through the host;
  // overrides check the count with check_copy).
  virtual void copy(const Tensor& src, Tensor& dst);
  // A zero-filled KV cache layer. Throws g4::Error for an element type the backend cannot store.
  virtual KvLayer new_kv_layer(const KvLayerSpec& spec) = 0;
  // The f32 cache of the tests and benchmarks.
  KvLayer make_kv_layer(int64_t capacity, int n_kv_heads, int head_dim, bool ring) {
    KvLayerSpec s;
    s.capacity = capacity;
    s.n_kv_heads = n_kv_heads;
    s.head_dim = head_dim;
    s.ring = ring;
    return new_kv_layer(s);
  }

  // --- ops (all activations f32 [rows, cols] unless noted) ---
  // out[i, :] = table[tokens[i], :] * scale. Token ids are validated by the caller.
  virtual void embed(const PackedWeight& table, const std::vector<int32_t>& tokens, float scale, Tensor& out) = 0;
  // y = x * W^T; x [T, in], W [out, in], y [T, out].
  virtual void matmul(const Tensor& x, const PackedWeight& w, Tensor& y) = 0;
  // RMSNorm over the last dim, in place or out of place: y = x / sqrt(mean(x^2) + eps) * w (w null: no weight).
  virtual void rms_norm(const Tensor& x, const PackedWeight* w, float eps, Tensor& y) = 0;
  // x += RMSNorm(o; w). The sandwich-norm residual add.
  virtual void add_rms_norm(Tensor& x, const Tensor& o, const PackedWeight& w, float eps) = 0;
  virtual void scale(Tensor& x, float s) = 0;
  // RoPE (rotate-half pairing) on x [T, H, D] for positions p0 .. p0+T-1, in place.
  virtual void rope(Tensor& x, int64_t p0, const RopeSpec& rope) = 0;
  // The same with each sequence's rows (seqs) at its own positions. The default: rope per sequence; a
  // backend that records steps overrides it so that every sequence reads its own replayed position.
  virtual void rope_rows(Tensor& x, const std::vector<SeqRows>& seqs, const RopeSpec& rope);
  // out = gelu_tanh(gate) * up, all [T, F].
  virtual void gelu_mul(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // Causal attention with scale 1.0. q [T, Hq, D]; k, v [T, Hkv, D] are the new keys/values; for each
  // sequence, its rows are queries at its positions p0 .. p0+n-1 that see its own new keys and, before p0,
  // its cache. The new ones are used as the cache will hold them (rounded to its type; derived keys derived
  // from the rounded values), so a result does not depend on how a prompt was cut into chunks nor on which
  // other sequences share the step. window > 0 limits keys to pq - pk < window. out [T, Hq, D]. Does not
  // modify the caches.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                         int window, Tensor& out) = 0;
  // Writes each sequence's rows of k, v [T, Hkv, D] into its cache at its positions (only the last
  // `capacity` for a ring).
  virtual void kv_append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) = 0;
  // attention, then kv_append of the same rows: a step's layer attends to its new keys, then stores them. A
  // backend may do both in fewer passes.
  virtual void attend_and_append(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<SeqRows>& seqs,
                                 int window, Tensor& out) {
    attention(q, k, v, seqs, window, out);
    kv_append(seqs, k, v);
  }
  // One sequence: all rows at positions p0 .. p0+T-1 of `cache`.
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const KvLayer& cache, int64_t p0, int window,
                 Tensor& out) {
    attention(q, k, v, {SeqRows{0, q.dim(0), p0, const_cast<KvLayer*>(&cache)}}, window, out);
  }
  void kv_append(KvLayer& cache, const Tensor& k, const Tensor& v, int64_t p0) {
    kv_append({SeqRows{0, k.dim(0), p0, &cache}}, k, v);
  }
  // x = cap * tanh(x / cap).
  virtual void softcap(Tensor& x, float cap) = 0;
  // Copies rows `rows` of x [R, C] into a new [rows.size(), C] tensor, in that order.
  virtual Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) = 0;
  // Copies rows [row0, row0 + n) of x [R, C] into a new [n, C] tensor.
  Tensor slice_rows(const Tensor& x, int64_t row0, int64_t n);

  // --- fused steps (defaults compose the ops above; a backend overrides them to save passes/launches) ---
  // ys[i] = x * W_i^T for every i: projections of one input (q/k/v, gate/up), so x can be prepared once.
  virtual void matmul_shared(const Tensor& x, const std::vector<const PackedWeight*>& ws, const std::vector<Tensor*>& ys);
  // The per-head steps between the projections and attention, q/k/v [T, H, D]: q = rope(norm(q; wq)) in
  // place, k = rope(norm(k_raw; wk)), v = norm(v_raw) without a weight (v_raw may be k_raw: K=V layers);
  // each sequence's rows rotated at its positions.
  virtual void qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq,
                             const PackedWeight& wk, float eps, const std::vector<SeqRows>& seqs, const RopeSpec& rope,
                             Tensor& k, Tensor& v);
  void qkv_norm_rope(Tensor& q, const Tensor& k_raw, const Tensor& v_raw, const PackedWeight& wq,
                     const PackedWeight& wk, float eps, int64_t p0, const RopeSpec& rope, Tensor& k, Tensor& v) {
    qkv_norm_rope(q, k_raw, v_raw, wq, wk, eps, {SeqRows{0, q.dim(0), p0, nullptr}}, rope, k, v);
  }
  // The residual step closing a block and the norm opening the next: x = (x + norm(o; w_post)) * s, then
  // out = norm(x; w_next).
  virtual void add_norm_scale_norm(Tensor& x, const Tensor& o, const PackedWeight& w_post, float s,
                                   const PackedWeight& w_next, float eps, Tensor& out);

  // --- optional: recorded decode steps (a backend without them keeps these defaults) ---
  // Starts recording the ops of a step over pos.size() sequences, pos[i] the first position of the step's
  // i-th sequence (in the order of the step's SeqRows): one sequence over n_tokens = 1 .. kMaxRecordedTokens
  // tokens (a decode step, a speculative verify of the pending token and its drafts, a drafter's step), or
  // 2 .. kMaxRecordedSeqs sequences with one token each (n_tokens = pos.size(): a batched decode step).
  // Until end_step_recording the ops are recorded, not run; at replay the token ids given to embed are the
  // ones replay_step is passed, and a position p that sequence i's ops were given (rope, qkv_norm_rope,
  // attention, kv_append) becomes pos'[i] + (p - pos[i]), pos' the positions replay_step is passed.
  // Returns null when the backend cannot record such a step.
  virtual std::unique_ptr<StepRecording> begin_step_recording(int n_tokens, const std::vector<int64_t>& pos) {
    (void)n_tokens, (void)pos;
    return nullptr;
  }
  virtual void end_step_recording(StepRecording& rec) { (void)rec; }
  // Runs a recording for `tokens` (as many as it was recorded with) from positions `pos` (one a sequence);
  // tensors created while recording keep their storage.
  virtual void replay_step(StepRecording& rec, const std::vector<int32_t>& tokens, const std::vector<int64_t>& pos) {
    (void)rec, (void)tokens, (void)pos;
  }

  // --- token choice where the logits are (callers that need only the next token) ---
  // The token of each row of logits [R, V] (f32), rows[i] for row i: choose_token(rows[i].params, row,
  // V, rows[i].history, rows[i].u) of backend/sampling.h, the row's rows[i].banned ids set to -infinity
  // first. The default downloads the rows and runs exactly
  // that; a backend may choose on the device so that only the ids cross to the host (then a choice can
  // differ only where u * total lands within rounding of a boundary between two tokens' weights).
  // Does not modify the logits. Throws g4::Error when rows.size() != R.
  virtual std::vector<int32_t> sample_rows(const Tensor& logits, const std::vector<RowSampling>& rows);

 protected:
  // copy's check: the same element count (one clear error otherwise).
  static void check_copy(const Tensor& src, const Tensor& dst);
};

// Creates a backend by name: "ref", "cpu", "cuda" (when built), or "auto" / "" for default_backend_name().
// threads > 0 sets the cpu backend's thread count (0: $G4_THREADS, else every hardware thread); the other
// backends ignore it. Throws g4::Error listing the available ones for unknown names.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);
// The best backend built and usable here: "cuda" when built and a device is present, else "cpu".
std::string default_backend_name();
// "auto" and "" resolve to default_backend_name(); other names are returned as given.
std::string resolve_backend_name(const std::string& name);
// The backends compiled into this build, e.g. {"ref", "cpu", "cuda"}.
std::vector<std::string> built_backends();

}  // namespace g4
