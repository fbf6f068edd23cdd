// Launchers for the CUDA kernels, callable from host C++. All pointers are device pointers, all work
// goes on `stream`, nothing synchronises. Shapes follow backend.h: activations f32 row-major.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace g4::cuda {

// A packed weight as the kernels see it. Row-major codes as in quant/format.h (int4: two per byte, low
// nibble first; int8: signed bytes; bf16: raw bits); scales/zeros [rows, cols / group_size].
enum class WFmt : int { kBF16 = 0, kInt4 = 1, kInt8 = 2 };
enum class SType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

struct WeightDesc {
  WFmt fmt = WFmt::kBF16;
  int64_t rows = 0, cols = 0;
  int64_t group_size = 0;  // 0 for bf16
  const void* codes = nullptr;
  const void* scales = nullptr;
  const void* zeros = nullptr;  // null: symmetric (int4 z = 8, int8 z = 0)
  SType stype = SType::kBF16;
};

// Benchmark knockouts: G4_CUDA_KNOCKOUT="qx,gemv,attn,kv,qkvrope,norm,gelu" (any subset) leaves those kernels
// out of every step: the int8 rounding of GEMV inputs, the integer GEMVs (the lm_head too), decode and prefill
// attention, KV writes, the per-head norms and RoPE, the residual/RMS norms, the GELU gating; within decode
// attention, "sliding" and "full" leave out the split kernel of those layers only (the combine still runs)
// and "combine" the merge of the splits. Results are then wrong; a replayed step timed with and without a
// kind says what that kind costs inside the step (docs/PERF.md), where a lone launch's profile does not.
// Unset (the default) nothing is left out.
enum class Knock : unsigned {
  kQx = 1, kGemv = 2, kAttn = 4, kKv = 8, kQkvRope = 16, kNorm = 32, kGelu = 64,
  kAttnSliding = 128, kAttnFull = 256, kCombine = 512
};
bool knocked_out(Knock k);

// --- matmul pieces (gemv.cu) ---
// Bytes of the permuted activation buffer that gemv() needs for T tokens.
size_t gemv_x_bytes(const WeightDesc& w, int T);
// y[T, rows] = x[T, cols] * W^T for 1 <= T <= kGemvMaxT; xp is scratch of gemv_x_bytes(w, T).
// tune picks the kernel variant (benchmarks compare them); the default is the tuned choice.
constexpr int kGemvMaxT = 4;
// Fast mode: rows up to which a matmul takes the GEMV in groups of kGemvMaxT rather than the GEMM path.
constexpr int kGemvGroupMaxT = 16;
// Steps of one sequence of up to this many tokens (a verify of a draft of 8) take the decode attention kernels
// whatever the depth, so that each query sums its keys as its one-token step does.
constexpr int kExactStepMaxT = 9;
struct GemvTuning {
  int rows_per_warp = 0;  // 0: default; 1, 2 or 4
  int unroll = 0;         // chunks in flight per lane and row (2 or 4, for 2 rows per warp); 0: default
  int ksplit = 0;         // the integer kernel: warps of a block sharing one row's K range (1 or 4; 0: default)
  // int4: 1 takes the integer kernel of gemv_q8.cu (x rounded to int8 per 32 values, dp4a), -1 the f16
  // kernels here; 0 follows G4_CUDA_INT4_DP4A (default on; precise mode passes -1).
  int dp4a = 0;
  // The integer kernel's shape for one token (gemv_q8.cu): rows_per_warp, unroll, ksplit as above, and
  // pipeline 1 to issue the next chunks' loads before the current ones' arithmetic. prefetch: row groups
  // per warp whose weights are asked into L2 before waiting for the previous kernel (0: G4_CUDA_Q8_PREFETCH,
  // default 0).
  int pipeline = 0;
  int prefetch = 0;
  // One token through the shared-memory ring (gemv_q8_ring.cu) where the shape leaves K unsplit: rows a warp
  // and buffers a warp (4 and 4, ...), -1 never; 0 follows G4_CUDA_Q8_RING ("R,ST"; unset: never).
  int ring_rows = 0;
  int ring_stages = 0;
  // One token through shared memory filled by bulk copies (gemv_q8_bulk.cu; compute capability 9.0), its sums
  // in the shape's K-split order: rows a warp and buffers a warp (2 and 4, ...), -1 never; 0 follows
  // G4_CUDA_Q8_BULK ("R,ST"; unset: never).
  int bulk_rows = 0;
  int bulk_stages = 0;
};
// T up to kGemvQ8MaxT when gemv_takes_q8(w, tune) (the integer kernel of gemv_q8.cu), else up to kGemvMaxT.
void gemv(const WeightDesc& w, const float* x, int T, void* xp, float* y, cudaStream_t s, GemvTuning tune = {});
bool gemv_takes_q8(const WeightDesc& w, GemvTuning tune = {});
// gemv's two steps: x into the lane-permuted f16 (int) / f32 (bf16) layout, then the GEMV proper.
void gemv_permute_x(const WeightDesc& w, const float* x, int T, void* xp, cudaStream_t s);
void gemv_permuted(const WeightDesc& w, const void* xp, int T, float* y, cudaStream_t s, GemvTuning tune = {});
// --- int4 GEMV with int8 activations and dp4a (gemv_q8.cu) ---
// Tokens one launch takes. In the default shapes each token's sums come in one token's order, so a token's
// result is the same at every T up to this (a verify or a batch equals one-token steps bit for bit).
constexpr int kGemvQ8MaxT = 8;
bool gemv_q8_supported(const WeightDesc& w);  // int4 with a power-of-two multiple of 32 as group size
bool gemv_q8_enabled();                       // G4_CUDA_INT4_DP4A != 0
size_t gemv_q8_x_bytes(const WeightDesc& w, int T);
size_t gemv_q8_x_bytes_cols(int64_t cols, int T);  // the same for any weight of `cols` columns
// Kernels launched so far by this process (launch.cuh's count; equal at two host points: none in between).
uint64_t launches_so_far();
// x [T, cols] f32 -> int8 per 32 values with their scales, in the layout the kernel reads (scratch of
// gemv_q8_x_bytes), then y[T, rows] = W x from it.
void gemv_q8_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s);
void gemv_q8_quantized(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s, GemvTuning tune = {});
// Several weights of one layout (cols, group size, scale type, zero points or not; at most 3) against the
// same quantized x in one launch: ys[i][T, ws[i].rows].
bool gemv_q8_can_share(const WeightDesc* ws, int n);
void gemv_q8_multi(const WeightDesc* ws, float* const* ys, int n, const void* xq, int T, cudaStream_t s,
                   GemvTuning tune = {});
// --- int4 weights times up to kMmaMaxT tokens on the integer tensor cores (gemm_mma.cu) ---
// x rounded to int8 per 32 values as for gemv_q8, the weights read once for all tokens; each token's
// result is the same at every T.
constexpr int kMmaMaxT = 32;
bool gemm_mma_supported(const WeightDesc& w);  // int4 with a power-of-two multiple of 32 as group size
// Token count from which a fast-mode matmul takes this kernel (G4_CUDA_MMA=0: never; G4_CUDA_MMA_MIN_T).
int gemm_mma_min_tokens();
size_t gemm_mma_x_bytes(const WeightDesc& w, int T);
// The kernel's shape (benchmarks compare them): rows_per_warp 8-row tiles a warp (1, 2), ksplit warps
// splitting K (1, 2, 4, 8), quads (4 chunks) per load round (1, 2, 4); 0: the default for the weight.
// prefetch: 1 asks L2 for the first tiles' codes before waiting for the previous kernel, 0 not, -1
// G4_CUDA_MMA_PREFETCH (default 1).
struct MmaTuning {
  int rows_per_warp = 0;
  int ksplit = 0;
  int quads = 0;
  int prefetch = -1;
};
// x [T, cols] f32 -> its int8 layout (scratch of gemm_mma_x_bytes), then y[T, rows] = W x from it.
void gemm_mma_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s);
void gemm_mma_quantized(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s, MmaTuning tune = {});
// Dequantizes rows [r0, r0 + n) into out [n, cols] as bf16 (to_f32 false) or f32.
void dequant_rows(const WeightDesc& w, int64_t r0, int64_t n, void* out, bool to_f32, cudaStream_t s);
// out[i, :] = W[tokens[i], :] * scale; tokens on the device.
void embed_rows(const WeightDesc& w, const int32_t* tokens, int T, float scale, float* out, cudaStream_t s);

// --- the sequences of a batched step ---
// As the kernels see them: passed by value (kernel parameter space), so a step uploads nothing. Entry i
// owns rows [row0, row0 + n) of the launch at positions p0 .. p0 + n - 1; (ck, cv) is its cache layer.
// Entries are sorted by row0 and cover the launch's rows without gaps. A non-null dpos (a recorded step: a
// device array, one position an entry) makes p0 relative: entry i's position is dpos[i] + p0 at run time.
constexpr int kMaxSeqs = 32;
struct SeqEntry {
  void* ck = nullptr;
  void* cv = nullptr;
  int64_t p0 = 0;
  int32_t row0 = 0, n = 0;
};
struct SeqTable {
  int n = 0;
  const int64_t* dpos = nullptr;
  SeqEntry e[kMaxSeqs];
};

// --- elementwise and row ops (ops.cu) ---
void f32_to_bf16(const float* x, int64_t n, void* out, cudaStream_t s);
void f32_to_f16(const float* x, int64_t n, void* out, cudaStream_t s);
void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* y, cudaStream_t s);
// x += rms_norm(o; w).
void add_rms_norm(float* x, const float* o, const float* w, float eps, int64_t rows, int64_t n, cudaStream_t s);
void scale(float* x, int64_t n, float sc, cudaStream_t s);
// Fused steps (backend.h add_norm_scale_norm, qkv_norm_rope); false when the shapes or alignment do not
// suit the kernel (nothing launched: the caller composes the plain ops). xq non-null (n % 32 == 0, at most
// kGemvQ8MaxT rows): out also rounded to int8 there, as gemv_q8_quantize_x(w of n columns, out, rows, xq)
// would write it (gemv_q8_x_bytes of it).
bool add_norm_scale_norm(float* x, const float* o, const float* w1, float sc, const float* w2, float eps, int64_t rows,
                         int64_t n, float* out, cudaStream_t s, void* xq = nullptr);
bool qkv_norm_rope(float* q, const float* k_raw, const float* v_raw, const float* wq, const float* wk, float eps,
                   int64_t T, int Hq, int Hkv, int D, const SeqTable& seqs, const float* inv_freq, int pairs, float* k,
                   float* v, cudaStream_t s);
void softcap(float* x, int64_t n, float cap, cudaStream_t s);
// y [n, C] = rows `rows` (a device array of n ids, each in range) of x [*, C].
void gather_rows(const float* x, const int64_t* rows, int64_t n, int64_t C, float* y, cudaStream_t s);
void gelu_mul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t s);
// The same for rows x n values (n % 32 == 0, at most kGemvQ8MaxT rows, 16-byte aligned pointers), the output
// also rounded to int8 at xq (scratch of gemv_q8_x_bytes_cols(n, rows)) as gemv_q8_quantize_x would round it;
// false (nothing launched) when those conditions do not hold.
bool gelu_mul_q8(const float* gate, const float* up, int64_t rows, int64_t n, float* out, void* xq, cudaStream_t s);
// In-place RoPE on x [T, H, D], each row at its sequence's position (SeqTable), inv_freq[pairs] precomputed
// on the host.
void rope(float* x, int64_t T, int64_t H, int64_t D, const SeqTable& seqs, const float* inv_freq, int pairs,
          cudaStream_t s);
// Writes each entry's rows of k, v [T, row] into its cache at slots p0 + t (mod capacity for a ring, where
// only an entry's last `capacity` rows are written); the caches hold bf16 (rounded to nearest even) when
// bf16, else f32. Entries without ck (derived keys) get their values only.
void kv_write(const SeqTable& seqs, const float* k, const float* v, int64_t T, int64_t row, int64_t capacity, bool ring,
              bool bf16, cudaStream_t s);

// --- attention (attention.cu) ---
struct AttnArgs {
  const float* q;          // [T, Hq, D]
  const float* k;          // [T, Hkv, D] new keys
  const float* v;
  SeqTable seqs;           // each sequence's rows, positions and cache [capacity, Hkv, D] (f32 or bf16)
  int64_t T, Hq, Hkv, D, capacity;
  bool ring;
  int window;              // 0 = unlimited
  float* out;              // [T, Hq, D]
  bool cache_bf16 = false; // the caches hold bf16 (else f32); new keys/values are always f32
  int split_min = 32;      // decode attention: a split takes whole multiples of it in keys (split_keys)
  // K=V layers that store V only (KvLayerSpec::k_from_v; then the entries' ck are null): every key, cached
  // or new, is derived from its value as the cache holds it, K = RoPE(V * kw) at the key's position, with
  // {cos, sin} from rope_cs [capacity][pairs][2] (the host's rope_cos_sin table). Null kw: keys are stored.
  const float* kw = nullptr;
  const float* rope_cs = nullptr;
  int pairs = 0;
};
// Whether n queries of one sequence from position p0 take the decode kernels (else the GEMM path of
// cuda_backend.cc).
bool attn_decode_suits(int64_t n, int64_t p0, int window);
// Split-K flash-decoding for few queries per sequence, every sequence of the table in one launch; scratch
// of attn_decode_scratch_bytes. The split count depends on the cache capacity, not on p0 nor on the other
// sequences, and a query's slicing of its keys over the splits on its position alone (whole multiples of
// split_min keys a split: a short context fills the first few), so a recorded step is valid at every position and a
// sequence's result is the same alone or in a batch.
size_t attn_decode_scratch_bytes(const AttnArgs& a, int n_sm);
// xq non-null: the output also rounded to int8 there for the o projection's GEMV (gemv_q8's x layout of T
// rows of Hq D values, scratch of gemv_q8_x_bytes_cols; Hq D a multiple of 1,024, T at most kGemvQ8MaxT), as
// gemv_q8_quantize_x would round it. append: the new rows a.k, a.v also stored in the caches afterwards, as
// kv_write stores them (by the merge launch's extra blocks: no launch of their own).
void attn_decode(const AttnArgs& a, void* scratch, int n_sm, cudaStream_t s, void* xq = nullptr, bool append = false);
// An attention launch's new rows a.k, a.v stored in its sequences' caches (kv_write over a's table and cache).
void attn_store_rows(const AttnArgs& a, cudaStream_t s);
// attn_decode's split kernel on the tensor cores (attn_decode_tc.cu: bf16 cache, stored or derived keys
// (pairs a multiple of 8), head dims 256/512, groups up to 8); the same partial outputs part [T, Hq,
// n_split, D] and (max, sum) ml.
bool attn_decode_tc_suits(const AttnArgs& a);
void attn_decode_tc(const AttnArgs& a, int n_split, float* part, float* ml, cudaStream_t s);
// One sequence (a.seqs.n == 1): gathers keys/values of positions [lo, lo + n) (cache or new) into kc, vc
// [n, Hkv, D].
void gather_kv(const AttnArgs& a, int64_t lo, int64_t n, float* kc, float* vc, cudaStream_t s);
// The same as f16 (kc, vc: __half [n, Hkv, D]).
void gather_kv_f16(const AttnArgs& a, int64_t lo, int64_t n, void* kc, void* vc, cudaStream_t s);
// Prefill attention in one pass over the keys (attn_prefill.cu, flash-attention style, no score matrix): q
// [T, Hq, D] f32 at positions p0 .., keys/values k, v __half [n, Hkv, D] of positions lo .. lo + n - 1
// (gather_kv_f16), causal and window masks, f16 products with f32 sums; out [T, Hq, D].
bool attn_prefill_f16_supports(int64_t D, int64_t group);
void attn_prefill_f16(const float* q, const void* k, const void* v, float* out, int64_t T, int64_t Hq, int64_t Hkv,
                      int64_t D, int64_t p0, int64_t lo, int64_t n, int window, cudaStream_t s);
// Row softmax of scores [Hq, Tq, n] in place, with the causal/window mask for query positions
// pq0 + t and key positions lo + j; masked entries become 0. half_out: row r's probabilities as f16 at
// (__half*)(scores + r * n), i.e. f16 rows with a leading dimension of 2n.
void masked_softmax(float* scores, int64_t Hq, int64_t Tq, int64_t n, int64_t pq0, int64_t lo, int window,
                    bool half_out, cudaStream_t s);

// --- token choice (sample.cu): Backend::sample_rows on the device ---
// One row's choice, as backend/sampling.h SamplingParams (greedy at temperature <= 0), with the penalties'
// history as distinct token ids and their counts (device arrays of n_pen each; n_pen 0: no penalties).
struct ChoiceArgs {
  float temperature = 0, top_p = 1, min_p = 0;
  int top_k = 0;
  float repeat_penalty = 1, presence_penalty = 0, frequency_penalty = 0;
  const int32_t* pen_ids = nullptr;
  const int32_t* pen_counts = nullptr;
  int n_pen = 0;
  const int32_t* ban_ids = nullptr;  // ids set to -infinity after the penalties (in range; repeats allowed)
  int n_ban = 0;
  double u = 0;  // the caller's uniform number in [0, 1)
};
// Whether a row's choice is its argmax (choose_token's greedy path): temperature <= 0, or top-k keeps one id.
inline bool greedy_choice(float temperature, int64_t top_k, int64_t V) {
  return temperature <= 0 || (top_k > 0 ? std::min(top_k, V) : V) == 1;
}
size_t choose_token_scratch_bytes(int64_t V);
// Writes the token choose_token (backend/sampling.h) picks from logits [V] to *out (device); scratch of
// choose_token_scratch_bytes(V). The logits are not modified.
void choose_token(const float* logits, int64_t V, const ChoiceArgs& a, void* scratch, int32_t* out, cudaStream_t s);
// Greedy choice of every row of logits [R, V] in one launch pair (what choose_token picks for each row at
// temperature 0 without penalties or bans) into out[R] (device); scratch of argmax_rows_scratch_bytes(R, V).
size_t argmax_rows_scratch_bytes(int64_t R, int64_t V);
void argmax_rows(const float* logits, int64_t R, int64_t V, void* scratch, int32_t* out, cudaStream_t s);

}  // namespace g4::cuda
