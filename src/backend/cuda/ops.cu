// Row and elementwise kernels: RMSNorm (plain and residual-add), scale, softcap, GELU-tanh gating,
// RoPE with host-computed inverse frequencies (bit-identical to the ref backend's), and KV-cache
// writes with the ring-slot rule of backend.h. Reductions accumulate in f32 in a fixed order.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/q8_act.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/pack2.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/seq_table.cuh"

namespace g4::cuda {

bool knocked_out(Knock k) {
  static const unsigned mask = [] {
    static const struct { const char* name; Knock k; } names[] = {
        {"qx", Knock::kQx},           {"gemv", Knock::kGemv}, {"attn", Knock::kAttn}, {"kv", Knock::kKv},
        {"qkvrope", Knock::kQkvRope}, {"norm", Knock::kNorm}, {"gelu", Knock::kGelu},
        {"sliding", Knock::kAttnSliding}, {"full", Knock::kAttnFull}, {"combine", Knock::kCombine}};
    const char* e = std::getenv("G4_CUDA_KNOCKOUT");
    unsigned m = 0;
    for (const char* p = e; p && *p;) {
      const char* end = std::strchr(p, ',');
      const std::string item(p, end ? size_t(end - p) : std::strlen(p));
      bool known = false;
      for (const auto& n : names)
        if (item == n.name) m |= unsigned(n.k), known = true;
      if (!known && !item.empty()) {
        std::string all;
        for (const auto& n : names) all += std::string(all.empty() ? "" : ", ") + n.name;
        throw Error("G4_CUDA_KNOCKOUT: unknown kernel kind '" + item + "' (" + all + ")");
      }
      p = end ? end + 1 : nullptr;
    }
    return m;
  }();
  return (mask & unsigned(k)) != 0;
}

namespace {

unsigned grid_for(int64_t n, int block) { return unsigned(std::max<int64_t>(1, std::min<int64_t>((n + block - 1) / block, 65536))); }

constexpr int kNormThreads = 256;

// One block per row. add: x += norm(o) (y unused); else y = norm(x).
template <bool kAdd>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const float* __restrict__ in, const float* __restrict__ w,
                                                              float eps, int64_t n, float* out) {
  grid_dependency_sync();
  const int64_t r = blockIdx.x;
  const float* xr = in + r * n;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / float(n) + eps);
  float* yr = out + r * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = xr[i] * inv * (w ? w[i] : 1.f);
    if (kAdd) yr[i] += v;
    else yr[i] = v;
  }
}

// The same with the row held in registers as float4s (n % 4 == 0, n / 4 <= kVecPer * blockDim): one
// read of x, a block of up to 1024 threads per row, so a single-row (decode) norm is not one slow block.
constexpr int kVecPer = 4;
// This thread's float4s of a row of n4 float4s (strided by the block) into v; returns their sum of squares,
// accumulated in a fixed order so every kernel using it reduces identically.
__device__ __forceinline__ float load_row_sumsq(const float4* row, int n4, float4 (&v)[kVecPer]) {
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < n4) {
      v[i] = row[idx];
      ss = fmaf(v[i].x, v[i].x, ss);
      ss = fmaf(v[i].y, v[i].y, ss);
      ss = fmaf(v[i].z, v[i].z, ss);
      ss = fmaf(v[i].w, v[i].w, ss);
    }
  }
  return ss;
}

// Before a row kernel waits for the previous kernel: asks L2 for the lines of up to three rows of n4 float4s
// that it will read (a thread per 128-byte line). Weights are never written by kernels, and a prefetch
// reads nothing into registers (L2 is where writes land), so this is safe for rows an earlier kernel
// writes too; after the wait the row's loads hit L2 instead of waiting on memory one phase at a time.
__device__ __forceinline__ void prefetch_rows_l2(int n4, const float4* a, const float4* b, const float4* c) {
  for (int i = threadIdx.x * 8; i < n4; i += blockDim.x * 8) {
    if (a) prefetch_l2(a + i);
    if (b) prefetch_l2(b + i);
    if (c) prefetch_l2(c + i);
  }
}

template <bool kAdd>
__global__ void __launch_bounds__(1024) rms_norm_vec_kernel(const float* __restrict__ in, const float* __restrict__ w,
                                                           float eps, int n, float* out) {
  const int64_t r = blockIdx.x;
  const int n4 = n / 4;
  prefetch_rows_l2(n4, reinterpret_cast<const float4*>(w), reinterpret_cast<const float4*>(kAdd ? out + r * n : nullptr),
                   nullptr);
  grid_dependency_sync();
  const float4* xr = reinterpret_cast<const float4*>(in + r * n);
  float4 v[kVecPer];
  const float ss = block_sum(load_row_sumsq(xr, n4, v));
  const float inv = rsqrtf(ss / float(n) + eps);
  float4* yr = reinterpret_cast<float4*>(out + r * n);
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < n4) {
      const float4 wv = w ? reinterpret_cast<const float4*>(w)[idx] : make_float4(1.f, 1.f, 1.f, 1.f);
      float4 o = make_float4(v[i].x * inv * wv.x, v[i].y * inv * wv.y, v[i].z * inv * wv.z, v[i].w * inv * wv.w);
      if (kAdd) {
        const float4 y = yr[idx];
        o = make_float4(y.x + o.x, y.y + o.y, y.z + o.z, y.w + o.w);
      }
      yr[idx] = o;
    }
  }
}

// Threads for the vector kernel, or 0 when the row does not suit it.
int vec_threads(int64_t n, const void* a, const void* b, const void* c) {
  auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  if (n % 4 != 0 || n / 4 > int64_t(kVecPer) * 1024 || !aligned(a) || !aligned(b) || !aligned(c)) return 0;
  const int64_t want = (n / 4 + kVecPer - 1) / kVecPer;
  return int(std::min<int64_t>(1024, std::max<int64_t>(32, (want + 31) / 32 * 32)));
}

__global__ void scale_kernel(float* x, int64_t n, float s) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] *= s;
}

__global__ void softcap_kernel(float* x, int64_t n, float cap) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
}

// y[i, :] = x[rows[i], :] for n rows of C values.
__global__ void gather_rows_kernel(const float* __restrict__ x, const int64_t* __restrict__ rows, int64_t n, int64_t C,
                                   float* __restrict__ y) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * C; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[rows[i / C] * C + i % C];
}

// gelu_tanh(g) * u, one f32 rounding after another (no contraction).
__device__ __forceinline__ float gelu_mul_value(float g, float u) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  const float g3 = __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, g), g), g);
  const float t = tanhf(__fmul_rn(k, __fadd_rn(g, g3)));
  return __fmul_rn(__fmul_rn(__fmul_rn(0.5f, g), __fadd_rn(1.f, t)), u);
}

__global__ void gelu_mul_kernel(const float* gate, const float* up, int64_t n, float* out) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = gelu_mul_value(gate[i], up[i]);
}

// The same values for `rows` rows of n (n % 32 == 0), four a thread, also rounded to int8 at xq for the
// integer GEMV that reads them next (the down projection): gemv_q8.cu's x layout, nch_pad chunks a row, 8
// lanes a chunk (quantize_chunk_lanes: the bytes gemv_q8_quantize_x writes), the padding chunks zero.
// (gate, up and out 16-byte aligned; out may be gate.)
__global__ void gelu_mul_q8_kernel(const float* gate, const float* up, int64_t rows, int n, float* out,
                                   uint4* __restrict__ xq, int nch_pad, bool early_next) {
  grid_dependency_sync(early_next);
  // (index arithmetic in 32 bits: rows <= kGemvQ8MaxT, so rows * n stays far below 2^31)
  const int n4 = int(rows) * n / 4, i4 = int(blockIdx.x * blockDim.x + threadIdx.x);
  const bool live = i4 < n4;  // (the same for a chunk's 8 lanes: n4 is a multiple of 8)
  float4 y = make_float4(0.f, 0.f, 0.f, 0.f);
  if (live) {
    const float4 g = reinterpret_cast<const float4*>(gate)[i4], u = reinterpret_cast<const float4*>(up)[i4];
    y = make_float4(gelu_mul_value(g.x, u.x), gelu_mul_value(g.y, u.y), gelu_mul_value(g.z, u.z),
                    gelu_mul_value(g.w, u.w));
    reinterpret_cast<float4*>(out)[i4] = y;
  }
  float2* xd = x_scales(xq, nch_pad, rows);
  const int r = live ? i4 * 4 / n : 0;
  const int c = live ? i4 * 4 % n / 32 : 0;
  quantize_chunk_lanes(y, live, x_slot(xq, nch_pad, r, c), xd + int64_t(r) * nch_pad + c);
  const int pad = nch_pad - n / 32;  // the padding chunks past n / 32, a thread each
  if (i4 < int(rows) * pad) zero_chunk(xq, xd, nch_pad, i4 / pad, n / 32 + i4 % pad);
}

__device__ __forceinline__ void round_to(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void round_to(__half* p, float v) { *p = __float2half_rn(v); }

// out = x rounded, a value a thread (any n and alignment; round8_kernel where it suits).
template <class OT>
__global__ void round_kernel(const float* x, int64_t n, OT* out) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    round_to(out + i, x[i]);
}

// The same 8 values a thread: two 16-byte loads, one 16-byte store (n % 8 == 0, both 16-byte aligned:
// round8_suits). (A value a thread ran at ~1 TB/s on the H200: 28 ms of a 2,048-token prefill.)
template <class OT>
__global__ void round8_kernel(const float4* x, int64_t n8, uint4* out) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 a = x[2 * i], b = x[2 * i + 1];
    out[i] = make_uint4(pack2<OT>(a.x, a.y), pack2<OT>(a.z, a.w), pack2<OT>(b.x, b.y), pack2<OT>(b.z, b.w));
  }
}

bool round8_suits(const void* x, int64_t n, const void* out) {
  return n % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

// Thread per (t, h, d < pairs); row t at its sequence's position. Angles in f32 as the reference, cos/sin
// in f64 as the reference.
__global__ void rope_kernel(float* x, int64_t T, int64_t H, int64_t D, SeqTable st, const float* inv_freq, int pairs) {
  grid_dependency_sync();
  const int64_t n = T * H * pairs;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int d = int(i % pairs);
    const int64_t th = i / pairs, t = th / H;
    int64_t p0;
    const int64_t row0 = entry_of(st, t, &p0).row0;
    const float ang = float(p0 + t - row0) * inv_freq[d];
    double sd, cd;
    sincos(double(ang), &sd, &cd);
    const float c = float(cd), s = float(sd);
    float* v = x + th * D;
    const float a = v[d], b = v[d + D / 2];
    v[d] = a * c - b * s;
    v[d + D / 2] = b * c + a * s;
  }
}

// Thread per element of rows [0, T) (kv_write_at: row t to its sequence's slot).
template <class CT>
__global__ void kv_write_kernel(SeqTable st, const float* k, const float* v, int64_t T, int64_t row, int64_t capacity,
                                bool ring) {
  grid_dependency_sync();
  const unsigned n = unsigned(T * row);
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    kv_write_at<CT>(st, k, v, unsigned(row), unsigned(capacity), ring, i);
}

// x = (x + norm(o; w1)) * s, then out = norm(x; w2): one block per row, the row in registers as float4s
// (the conditions of vec_threads), two block reductions. w1 is read into registers before the wait (a weight),
// x right after it with o, w2 during the first pass (in flight through the second reduction), so that after
// the wait one memory phase precedes the reductions instead of three (H200: decode +1.8% at depth 0, +1.4% at
// 65,536, docs/PERF.md). kQx: out is also rounded to int8 at xq for the integer GEMV that reads it next
// (gemv_q8.cu's x layout for gridDim.x tokens of n values, nch_pad chunks a token, the scales after the
// words, padding chunks zero), as gemv_q8_quantize_x would round it, bit for bit.
template <bool kQx>
__global__ void __launch_bounds__(1024) add_norm_scale_norm_kernel(float* __restrict__ x, const float* __restrict__ o,
                                                                  const float* __restrict__ w1, float s,
                                                                  const float* __restrict__ w2, float eps, int n,
                                                                  float* __restrict__ out, uint4* __restrict__ xq,
                                                                  int nch_pad, bool early_next) {
  const int64_t r = blockIdx.x;
  const int n4 = n / 4;
  const float4* w1v = reinterpret_cast<const float4*>(w1);
  const float4* w2v = reinterpret_cast<const float4*>(w2);
  prefetch_rows_l2(n4, nullptr, w2v, reinterpret_cast<const float4*>(x + r * n));
  float4 wa[kVecPer], xa[kVecPer];  // w1 (then w2) and x in registers
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < n4) wa[i] = w1v[idx];
  }
  grid_dependency_sync(kQx && early_next);
  const float4* orow = reinterpret_cast<const float4*>(o + r * n);
  float4* xrow = reinterpret_cast<float4*>(x + r * n);
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < n4) xa[i] = xrow[idx];
  }
  float4 v[kVecPer];
  const float ss = block_sum(load_row_sumsq(orow, n4, v));
  const float inv = rsqrtf(ss / float(n) + eps);
  float ss2 = 0.f;
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    if (idx < n4) {
      const float4 wv = wa[i], xv = xa[i];
      // The same operations in the same order as add_rms_norm followed by scale.
      float4 y = make_float4(xv.x + v[i].x * inv * wv.x, xv.y + v[i].y * inv * wv.y, xv.z + v[i].z * inv * wv.z,
                             xv.w + v[i].w * inv * wv.w);
      if (s != 1.f) y = make_float4(y.x * s, y.y * s, y.z * s, y.w * s);
      xrow[idx] = y;
      v[i] = y;
      ss2 = fmaf(y.x, y.x, ss2);
      ss2 = fmaf(y.y, y.y, ss2);
      ss2 = fmaf(y.z, y.z, ss2);
      ss2 = fmaf(y.w, y.w, ss2);
      wa[i] = w2v[idx];  // in flight during the reduction
    }
  }
  ss2 = block_sum(ss2);
  const float inv2 = rsqrtf(ss2 / float(n) + eps);
  float4* orow2 = reinterpret_cast<float4*>(out + r * n);
  float2* xd = kQx ? x_scales(xq, nch_pad, gridDim.x) : nullptr;
#pragma unroll
  for (int i = 0; i < kVecPer; ++i) {
    const int idx = threadIdx.x + i * blockDim.x;
    float4 y = make_float4(0.f, 0.f, 0.f, 0.f);
    if (idx < n4) {
      y = make_float4(v[i].x * inv2 * wa[i].x, v[i].y * inv2 * wa[i].y, v[i].z * inv2 * wa[i].z,
                      v[i].w * inv2 * wa[i].w);
      orow2[idx] = y;
    }
    if (kQx && i * int(blockDim.x) < n4) {  // (the whole warp: blockDim and n4 are multiples of 8)
      const int c = idx >> 3;  // chunk: 8 float4s, 8 lanes
      quantize_chunk_lanes(y, idx < n4, x_slot(xq, nch_pad, r, c), xd + r * nch_pad + c);
    }
  }
  if (kQx) {  // the padding chunks past n / 32
    for (int c = n / 32 + int(threadIdx.x); c < nch_pad; c += int(blockDim.x)) zero_chunk(xq, xd, nch_pad, r, c);
  }
}

// Per-head norm (+ weight) and RoPE for q, k and v in one launch. Heads [0, Hq) are q (in place), [Hq, Hq +
// Hkv) k, then v (no weight, no rotation); the pair (i, i + D / 2) is what RoPE rotates. Two layouts with the
// same arithmetic, bit for bit (the row's sum of squares: per 32 pairs a warp's butterfly, then those sums
// in order): few rows (decode, a verify) take a block of D / 2 threads a row, a thread a pair, so that each
// thread computes one f64 sincos; many rows (prefill) a warp a row, kQkvRows a block, lane l the pairs l + 32 j,
// with no block barriers (the block layout took 159 us a layer of a 2,048-token prefill on the H200: 10 ms of
// its ~290; the warp layout made a decode step 2% slower: four sincos in a row on each lane).
constexpr int kQkvRows = 8, kQkvPerLane = 8;  // head dims up to 512
constexpr int64_t kQkvWarpMinRows = 64;       // rows (tokens) from which the warp layout runs

struct QkvRow {
  const float* in;
  float* out;
  const float* w;  // null: no weight
  bool rot;
  int64_t pos;
};

__device__ __forceinline__ QkvRow qkv_row(float* q, const float* k_raw, const float* v_raw, const float* wq,
                                          const float* wk, int Hq, int Hkv, int D, const SeqTable& st, int h,
                                          int64_t t, float* k, float* v) {
  int64_t p0;
  const int64_t row0 = entry_of(st, t, &p0).row0;
  const int64_t pos = p0 + t - row0;
  if (h < Hq) return {q + (t * Hq + h) * D, q + (t * Hq + h) * D, wq, true, pos};
  if (h < Hq + Hkv) return {k_raw + (t * Hkv + h - Hq) * D, k + (t * Hkv + h - Hq) * D, wk, true, pos};
  return {v_raw + (t * Hkv + h - Hq - Hkv) * D, v + (t * Hkv + h - Hq - Hkv) * D, nullptr, false, pos};
}

// Pair i of the row, its sum of squares' 1 / rms known: weighted, rotated, stored.
__device__ __forceinline__ void qkv_pair_out(const QkvRow& r, int i, int half, float a, float b, float inv,
                                             const float* inv_freq, int pairs) {
  float na = a * inv * (r.w ? r.w[i] : 1.f), nb = b * inv * (r.w ? r.w[i + half] : 1.f);
  if (r.rot && i < pairs) {
    const float ang = float(r.pos) * inv_freq[i];
    double sd, cd;
    sincos(double(ang), &sd, &cd);
    const float c = float(cd), sn = float(sd);
    const float ra = na * c - nb * sn, rb = nb * c + na * sn;
    na = ra, nb = rb;
  }
  r.out[i] = na;
  r.out[i + half] = nb;
}

// grid (Hq + 2 Hkv, T), D / 2 threads.
__global__ void qkv_norm_rope_kernel(float* q, const float* k_raw, const float* v_raw, const float* __restrict__ wq,
                                     const float* __restrict__ wk, float eps, int Hq, int Hkv, int D, SeqTable st,
                                     const float* __restrict__ inv_freq, int pairs, float* __restrict__ k,
                                     float* __restrict__ v) {
  grid_dependency_sync();
  const int i = threadIdx.x, half = D / 2;
  const QkvRow r = qkv_row(q, k_raw, v_raw, wq, wk, Hq, Hkv, D, st, blockIdx.x, blockIdx.y, k, v);
  const float a = r.in[i], b = r.in[i + half];
  const float ss = block_sum(fmaf(a, a, b * b));
  qkv_pair_out(r, i, half, a, b, rsqrtf(ss / float(D) + eps), inv_freq, pairs);
}

// grid (ceil((Hq + 2 Hkv) / kQkvRows), T), kQkvRows warps.
__global__ void __launch_bounds__(kQkvRows * 32) qkv_norm_rope_warp_kernel(
    float* q, const float* k_raw, const float* v_raw, const float* __restrict__ wq, const float* __restrict__ wk,
    float eps, int Hq, int Hkv, int D, SeqTable st, const float* __restrict__ inv_freq, int pairs,
    float* __restrict__ k, float* __restrict__ v) {
  grid_dependency_sync();
  const int lane = threadIdx.x & 31, h = blockIdx.x * kQkvRows + (threadIdx.x >> 5), half = D / 2, per = D / 64;
  if (h >= Hq + 2 * Hkv) return;
  const QkvRow r = qkv_row(q, k_raw, v_raw, wq, wk, Hq, Hkv, D, st, h, blockIdx.y, k, v);
  float a[kQkvPerLane], b[kQkvPerLane], ss = 0.f;
#pragma unroll
  for (int j = 0; j < kQkvPerLane; ++j) {
    if (j < per) {
      const int i = lane + 32 * j;
      a[j] = r.in[i], b[j] = r.in[i + half];
      ss += warp_sum(fmaf(a[j], a[j], b[j] * b[j]));  // as block_sum: the warps' sums added in order
    }
  }
  const float inv = rsqrtf(ss / float(D) + eps);
#pragma unroll
  for (int j = 0; j < kQkvPerLane; ++j)
    if (j < per) qkv_pair_out(r, lane + 32 * j, half, a[j], b[j], inv, inv_freq, pairs);
}

template <class OT>
void round_as(const float* x, int64_t n, void* out, cudaStream_t s) {
  if (round8_suits(x, n, out))
    launch(round8_kernel<OT>, grid_for(n / 8, 256), 256, 0, s, reinterpret_cast<const float4*>(x), n / 8, static_cast<uint4*>(out));
  else
    launch(round_kernel<OT>, grid_for(n, 256), 256, 0, s, x, n, static_cast<OT*>(out));
  G4_CUDA_LAUNCHED();
}

}  // namespace

void f32_to_bf16(const float* x, int64_t n, void* out, cudaStream_t s) { round_as<__nv_bfloat16>(x, n, out, s); }

void f32_to_f16(const float* x, int64_t n, void* out, cudaStream_t s) { round_as<__half>(x, n, out, s); }

void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* y, cudaStream_t s) {
  if (knocked_out(Knock::kNorm)) return;
  if (rows == 0) return;
  if (const int th = vec_threads(n, x, w, y)) {
    launch(rms_norm_vec_kernel<false>, unsigned(rows), th, 0, s, x, w, eps, int(n), y);
    G4_CUDA_LAUNCHED();
    return;
  }
  launch(rms_norm_kernel<false>, unsigned(rows), kNormThreads, 0, s, x, w, eps, n, y);
  G4_CUDA_LAUNCHED();
}

void add_rms_norm(float* x, const float* o, const float* w, float eps, int64_t rows, int64_t n, cudaStream_t s) {
  if (knocked_out(Knock::kNorm)) return;
  if (rows == 0) return;
  if (const int th = vec_threads(n, x, w, o)) {
    launch(rms_norm_vec_kernel<true>, unsigned(rows), th, 0, s, o, w, eps, int(n), x);
    G4_CUDA_LAUNCHED();
    return;
  }
  launch(rms_norm_kernel<true>, unsigned(rows), kNormThreads, 0, s, o, w, eps, n, x);
  G4_CUDA_LAUNCHED();
}

bool add_norm_scale_norm(float* x, const float* o, const float* w1, float sc, const float* w2, float eps, int64_t rows,
                         int64_t n, float* out, cudaStream_t s, void* xq) {
  if (knocked_out(Knock::kNorm)) return true;
  const int th = vec_threads(n, x, o, out);
  const int th2 = vec_threads(n, w1, w2, x);
  if (rows == 0 || th == 0 || th2 == 0) return rows == 0;
  G4_CHECK(xq == nullptr || (n % 32 == 0 && rows <= kGemvQ8MaxT),
           "add_norm_scale_norm: an int8 copy needs 32-value chunks and at most 8 rows");
  const int nch_pad = x_chunks_padded(n);
  // (an instance apart, so the plain one carries none of the rounding's registers: one kernel with a runtime
  // switch spilled 8 bytes at its 64-register bound)
  launch(xq ? add_norm_scale_norm_kernel<true> : add_norm_scale_norm_kernel<false>, unsigned(rows), th, 0, s, x, o, w1,
         sc, w2, eps, int(n), out, static_cast<uint4*>(xq), nch_pad, early_gemv_launch());
  G4_CUDA_LAUNCHED();
  return true;
}

bool qkv_norm_rope(float* q, const float* k_raw, const float* v_raw, const float* wq, const float* wk, float eps,
                   int64_t T, int Hq, int Hkv, int D, const SeqTable& seqs, const float* inv_freq, int pairs, float* k,
                   float* v, cudaStream_t s) {
  if (knocked_out(Knock::kQkvRope)) return true;
  if (D % 64 != 0 || D / 2 > 1024 || T > 65535) return false;
  if (T == 0) return true;
  // G4_CUDA_QKV_WARP_ROWS: the rows from which the warp layout runs instead (comparisons; the same sums).
  static const int64_t warp_rows = env_int("G4_CUDA_QKV_WARP_ROWS", int(kQkvWarpMinRows));
  if (T >= warp_rows && D / 64 <= kQkvPerLane)
    launch(qkv_norm_rope_warp_kernel, dim3(unsigned((Hq + 2 * Hkv + kQkvRows - 1) / kQkvRows), unsigned(T)),
           unsigned(kQkvRows * 32), 0, s, q, k_raw, v_raw, wq, wk, eps, Hq, Hkv, D, seqs, inv_freq, pairs, k, v);
  else
    launch(qkv_norm_rope_kernel, dim3(unsigned(Hq + 2 * Hkv), unsigned(T)), unsigned(D / 2), 0, s,
           q, k_raw, v_raw, wq, wk, eps, Hq, Hkv, D, seqs, inv_freq, pairs, k, v);
  G4_CUDA_LAUNCHED();
  return true;
}

void scale(float* x, int64_t n, float sc, cudaStream_t s) {
  launch(scale_kernel, grid_for(n, 256), 256, 0, s, x, n, sc);
  G4_CUDA_LAUNCHED();
}

void gather_rows(const float* x, const int64_t* rows, int64_t n, int64_t C, float* y, cudaStream_t s) {
  if (n == 0 || C == 0) return;
  launch(gather_rows_kernel, grid_for(n * C, 256), 256, 0, s, x, rows, n, C, y);
  G4_CUDA_LAUNCHED();
}

void softcap(float* x, int64_t n, float cap, cudaStream_t s) {
  launch(softcap_kernel, grid_for(n, 256), 256, 0, s, x, n, cap);
  G4_CUDA_LAUNCHED();
}

void gelu_mul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t s) {
  if (knocked_out(Knock::kGelu)) return;
  launch(gelu_mul_kernel, grid_for(n, 256), 256, 0, s, gate, up, n, out);
  G4_CUDA_LAUNCHED();
}

bool gelu_mul_q8(const float* gate, const float* up, int64_t rows, int64_t n, float* out, void* xq, cudaStream_t s) {
  auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  if (n % 32 != 0 || n > (int64_t(1) << 27) || rows < 1 || rows > kGemvQ8MaxT || !aligned(gate) || !aligned(up) ||
      !aligned(out) || !aligned(xq))
    return false;
  if (knocked_out(Knock::kGelu)) return true;
  const int nch_pad = x_chunks_padded(n);
  const int64_t threads = std::max(rows * n / 4, rows * (nch_pad - n / 32));
  // Blocks of one warp: H100, Q4_0, against 64 threads a block, a verify of 4 at depth 512 1.109-1.112 ->
  // 1.103-1.104 one-token steps, of 2 1.061 -> 1.053, one sequence +0.2%, four +0.4% (128 and 256 threads:
  // level with 64). G4_CUDA_GELU_BLOCK: another multiple of 32, for comparisons.
  static const int bt = std::clamp(env_int("G4_CUDA_GELU_BLOCK", 32) / 32 * 32, 32, 1024);
  launch(gelu_mul_q8_kernel, unsigned((threads + bt - 1) / bt), unsigned(bt), 0, s, gate, up, rows, int(n), out,
         static_cast<uint4*>(xq), nch_pad, early_gemv_launch());
  G4_CUDA_LAUNCHED();
  return true;
}

void rope(float* x, int64_t T, int64_t H, int64_t D, const SeqTable& seqs, const float* inv_freq, int pairs,
          cudaStream_t s) {
  if (pairs == 0 || T == 0) return;
  launch(rope_kernel, grid_for(T * H * pairs, 256), 256, 0, s, x, T, H, D, seqs, inv_freq, pairs);
  G4_CUDA_LAUNCHED();
}

void kv_write(const SeqTable& seqs, const float* k, const float* v, int64_t T, int64_t row, int64_t capacity, bool ring,
              bool bf16, cudaStream_t s) {
  if (knocked_out(Knock::kKv)) return;
  if (T == 0) return;
  G4_CHECK(T * row < (int64_t(1) << 31) && capacity < (int64_t(1) << 31),
           "cuda kv_write: a launch's rows and the cache's capacity are indexed in 32 bits");
  const dim3 grid = grid_for(T * row, 256);
  if (bf16) launch(kv_write_kernel<__nv_bfloat16>, grid, 256, 0, s, seqs, k, v, T, row, capacity, ring);
  else launch(kv_write_kernel<float>, grid, 256, 0, s, seqs, k, v, T, row, capacity, ring);
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
