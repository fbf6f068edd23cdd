// Prefill attention without a score matrix: one pass over the keys per block of query rows with an online
// softmax (the flash-attention scheme), f16 tensor-core products (mma.m16n8k16) with f32 sums.
//
// A block takes one KV head g and 64 rows: row r is query token t0 + r / G and query head g G + r % G (the
// G heads of the GQA group that share the KV head), so each key/value tile read serves the whole group.
// It walks the keys its rows can see in tiles of 64 (cp.async into shared memory; rows of D + 8 halves so
// that ldmatrix's 8 rows fall in different banks). 8 warps: warp w owns rows 16 (w & 3) .. + 15 and,
// for the scores, keys 32 (w >> 2) .. + 31 of the tile, for the output, dims (D / 2) (w >> 2) .. of it: the
// pair of warps with the same rows swaps its row maxima and sums through shared memory and writes its
// probabilities there as f16 for both. So a warp holds 16 x D / 2 output values (D = 512: 128 registers a
// lane), never the whole row. f16 holds the inputs: Gemma 4's queries, keys and values come out of RMS norms
// (|x| <= sqrt(D) times the norm weight), far inside f16's range, and the probabilities lie in [0, 1].
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pack2.cuh"
#include "backend/cuda/smem_async.cuh"

namespace g4::cuda {
namespace {

constexpr int kRows = 64, kKeys = 64, kThreads = 256;

// c += a (16 x 16 f16, row) * b (16 x 8 f16, col), f32.
__device__ __forceinline__ void mma_f16(float (&c)[4], const uint4& a, uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

struct PrefillArgs {
  const float* q;      // [T, Hq, D], f32
  const __half* k;     // [n, Hkv, D]: keys of positions lo .. lo + n - 1
  const __half* v;
  float* out;          // [T, Hq, D]
  int64_t T, Hq, Hkv, p0, lo, n;
  int G, window;       // G = Hq / Hkv; window 0 = unlimited
};

template <int D>
__global__ void __launch_bounds__(kThreads, D <= 256 ? 2 : 1) flash_prefill_kernel(PrefillArgs a) {
  constexpr int kLd = D + 8;         // halves a shared row
  constexpr int kHalfD = D / 2;      // output dims a warp
  constexpr int kOutTiles = kHalfD / 8;
  static_assert(D % 32 == 0, "head dim a multiple of 32");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* qs = reinterpret_cast<__half*>(smem_raw);  // [kRows][kLd]
  __half* ks = qs + kRows * kLd;                     // [kKeys][kLd]
  __half* vs = ks + kKeys * kLd;                     // [kKeys][kLd]
  __half* ps = vs + kKeys * kLd;                     // [kRows][kKeys + 8]
  float* red = reinterpret_cast<float*>(ps + kRows * (kKeys + 8));  // [2 maxima, 2 sums][2 halves][kRows]
  constexpr int kLdP = kKeys + 8;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, qd = lane & 3;
  const int rb = warp & 3, hf = warp >> 2;
  const int G = a.G, per_block = kRows / G;  // query tokens a block
  const int64_t t0 = int64_t(blockIdx.x) * per_block;
  const int kvh = int(blockIdx.y);
  const int rows_used = per_block * G;
  grid_dependency_sync();

  // Queries of the block, as f16 (rows past the end or the tokens: zero).
  for (int i = tid; i < kRows * (D / 8); i += kThreads) {
    const int r = i / (D / 8), c = (i % (D / 8)) * 8;
    const int64_t t = t0 + r / G;
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (r < rows_used && t < a.T) {
      const float* src = a.q + (t * a.Hq + int64_t(kvh) * G + r % G) * D + c;
      const float4 x0 = *reinterpret_cast<const float4*>(src), x1 = *reinterpret_cast<const float4*>(src + 4);
      packed = make_uint4(pack2<__half>(x0.x, x0.y), pack2<__half>(x0.z, x0.w), pack2<__half>(x1.x, x1.y), pack2<__half>(x1.z, x1.w));
    }
    *reinterpret_cast<uint4*>(qs + r * kLd + c) = packed;
  }

  // This lane's two rows (g and g + 8 of the warp's 16) and their query positions.
  int64_t pq[2];
  bool row_ok[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = 16 * rb + g + 8 * i;
    const int64_t t = t0 + r / G;
    row_ok[i] = r < rows_used && t < a.T;
    pq[i] = a.p0 + (row_ok[i] ? t : t0);
  }
  // Keys the block's rows can see: positions [first, last], as indices into k/v (position lo + j).
  const int64_t t_last = min(t0 + per_block - 1, a.T - 1);
  const int64_t last = a.p0 + t_last - a.lo;
  const int64_t window_first = a.window > 0 ? a.p0 + t0 - a.window + 1 - a.lo : 0;  // of the first row
  const int64_t first = window_first > 0 ? window_first - window_first % kKeys : 0;

  float o[kOutTiles][4];
#pragma unroll
  for (int j = 0; j < kOutTiles; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m_run[2] = {-FLT_MAX, -FLT_MAX}, l_run[2] = {0.f, 0.f};

  const uint32_t qs_a = smem_addr(qs), ks_a = smem_addr(ks), vs_a = smem_addr(vs), ps_a = smem_addr(ps);
  // cp.async of the tile of keys (or values) from index kt into buf, one commit group; past the keys: zeros.
  auto load_tile = [&](const __half* src_base, uint32_t buf, int64_t kt) {
    for (int i = tid; i < kKeys * (D / 8); i += kThreads) {
      const int r = i / (D / 8), c = (i % (D / 8)) * 8;
      const bool ok = kt + r < a.n;
      const int64_t src = ((ok ? kt + r : 0) * a.Hkv + kvh) * D + c;
      cp_async16_or_zero(buf + uint32_t(r * kLd + c) * 2, src_base + src, ok);
    }
    cp_async_commit();
  };
  // The loads run one step ahead: the next tile's keys while this tile's softmax and values run, the next
  // tile's values while its scores run. Groups in flight, oldest first: keys(kt), values(kt), then keys(kt + 1)
  // once the scores are done, values(kt + 1) once the values are done.
  if (first <= last) {
    load_tile(a.k, ks_a, first);
    load_tile(a.v, vs_a, first);
  }
  for (int64_t kt = first; kt <= last; kt += kKeys) {
    const bool more = kt + kKeys <= last;
    cp_async_wait<1>();  // keys(kt) landed (values(kt) may not have)
    __syncthreads();     // for every thread (and the queries, first time)

    // Scores of rows 16 rb .. (this warp) against keys 32 hf .. + 31 of the tile: 4 tiles of 8 keys.
    float s[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 4
    for (int k0 = 0; k0 < D; k0 += 16) {
      const uint4 qa = ldmatrix_x4(qs_a + uint32_t((16 * rb + (lane & 15)) * kLd + k0 + 8 * (lane >> 4)) * 2);
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        const int key = 32 * hf + 8 * j + (lane & 7) + 8 * (lane >> 4);
        const uint4 kb = ldmatrix_x4(ks_a + uint32_t(key * kLd + k0 + 8 * ((lane >> 3) & 1)) * 2);
        mma_f16(s[j], qa, kb.x, kb.y);
        mma_f16(s[j + 1], qa, kb.z, kb.w);
      }
    }
    // Mask (causal, window, past the keys) and this warp's row maxima over its 32 keys.
    float mx[2] = {-FLT_MAX, -FLT_MAX};
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1;
        const int64_t key = kt + 32 * hf + 8 * j + 2 * qd + (e & 1), pk = a.lo + key;
        const bool ok = row_ok[i] && key < a.n && pk <= pq[i] && (a.window <= 0 || pk > pq[i] - a.window);
        s[j][e] = ok ? s[j][e] : -FLT_MAX;
        mx[i] = fmaxf(mx[i], s[j][e]);
      }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      if (qd == 0) red[(0 * 2 + hf) * kRows + 16 * rb + g + 8 * i] = mx[i];
    }
    __syncthreads();  // every warp's maxima written and its scores done with the keys
    if (more) load_tile(a.k, ks_a, kt + kKeys);
    float m_new[2], alpha[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = 16 * rb + g + 8 * i;
      m_new[i] = fmaxf(m_run[i], fmaxf(red[0 * kRows + r], red[1 * kRows + r]));
      // No visible key yet (m_new still -FLT_MAX): probabilities 0, nothing to rescale.
      const bool none = m_new[i] == -FLT_MAX;
      alpha[i] = none ? 1.f : __expf(m_run[i] - m_new[i]);
      m_run[i] = m_new[i];
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1;
        p[e] = s[j][e] == -FLT_MAX ? 0.f : __expf(s[j][e] - m_new[i]);
        sum[i] += p[e];
      }
      const int key = 32 * hf + 8 * j + 2 * qd, r = 16 * rb + g;
      *reinterpret_cast<uint32_t*>(ps + r * kLdP + key) = pack2<__half>(p[0], p[1]);
      *reinterpret_cast<uint32_t*>(ps + (r + 8) * kLdP + key) = pack2<__half>(p[2], p[3]);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 1);
      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 2);
      if (qd == 0) red[(2 + hf) * kRows + 16 * rb + g + 8 * i] = sum[i];
    }
    if (more) cp_async_wait<1>();  // values(kt) landed (keys(kt + 1) may not have)
    else cp_async_wait<0>();
    __syncthreads();  // values, probabilities and both halves' sums in shared memory
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = 16 * rb + g + 8 * i;
      l_run[i] = l_run[i] * alpha[i] + (red[2 * kRows + r] + red[3 * kRows + r]);
    }
#pragma unroll
    for (int j = 0; j < kOutTiles; ++j) {
      o[j][0] *= alpha[0], o[j][1] *= alpha[0], o[j][2] *= alpha[1], o[j][3] *= alpha[1];
    }
    // o (16 rows x this warp's D / 2 dims) += p (16 x 64 keys) v (64 keys x D / 2).
#pragma unroll
    for (int k0 = 0; k0 < kKeys; k0 += 16) {
      const uint4 pa = ldmatrix_x4(ps_a + uint32_t((16 * rb + (lane & 15)) * kLdP + k0 + 8 * (lane >> 4)) * 2);
#pragma unroll
      for (int j = 0; j < kOutTiles; j += 2) {
        const int key = k0 + (lane & 7) + 8 * ((lane >> 3) & 1);
        const int col = kHalfD * hf + 8 * j + 8 * (lane >> 4);
        const uint4 vb = ldmatrix_x4<true>(vs_a + uint32_t(key * kLd + col) * 2);
        mma_f16(o[j], pa, vb.x, vb.y);
        mma_f16(o[j + 1], pa, vb.z, vb.w);
      }
    }
    __syncthreads();  // every warp done with the values, the probabilities and the sums
    if (more) load_tile(a.v, vs_a, kt + kKeys);
  }
  // out = o / l for the rows that are queries.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (!row_ok[i]) continue;
    const int r = 16 * rb + g + 8 * i;
    const int64_t t = t0 + r / G;
    const float inv = l_run[i] > 0.f ? 1.f / l_run[i] : 0.f;
    float* dst = a.out + (t * a.Hq + int64_t(kvh) * G + r % G) * D + kHalfD * hf + 2 * qd;
#pragma unroll
    for (int j = 0; j < kOutTiles; ++j)
      *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2 * i] * inv, o[j][2 * i + 1] * inv);
  }
}

template <int D>
void launch_flash(const PrefillArgs& a, cudaStream_t s) {
  constexpr size_t smem = size_t(kRows + 2 * kKeys) * (D + 8) * 2 + size_t(kRows) * (kKeys + 8) * 2 + 4 * kRows * sizeof(float);
  static const bool attr = [] {
    G4_CUDA(cudaFuncSetAttribute(flash_prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    return true;
  }();
  (void)attr;
  const int per_block = kRows / a.G;
  const dim3 grid(unsigned((a.T + per_block - 1) / per_block), unsigned(a.Hkv));
  launch(flash_prefill_kernel<D>, grid, kThreads, smem, s, a);
}

}  // namespace

bool attn_prefill_f16_supports(int64_t D, int64_t group) {
  return (D == 32 || D == 64 || D == 128 || D == 256 || D == 512) && group >= 1 && group <= kRows;
}

void attn_prefill_f16(const float* q, const void* k, const void* v, float* out, int64_t T, int64_t Hq, int64_t Hkv,
                      int64_t D, int64_t p0, int64_t lo, int64_t n, int window, cudaStream_t s) {
  const PrefillArgs a{q, static_cast<const __half*>(k), static_cast<const __half*>(v), out, T, Hq, Hkv, p0, lo, n,
                      int(Hq / Hkv), window};
  switch (D) {
    case 32: launch_flash<32>(a, s); break;
    case 64: launch_flash<64>(a, s); break;
    case 128: launch_flash<128>(a, s); break;
    case 256: launch_flash<256>(a, s); break;
    case 512: launch_flash<512>(a, s); break;
    default: throw Error("cuda attention: no f16 prefill kernel for head_dim " + std::to_string(D));
  }
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
