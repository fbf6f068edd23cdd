// Decode GEMV on packed weights: one warp per output row, each lane streaming 16-byte chunks of the
// row (coalesced 512 bytes per warp per load, read once, not kept in L1). The activation is first
// permuted (permute_x) so that the x values a lane needs for its chunk sit at lane-consecutive 16-byte
// slots: reading them is conflict-free and hits L1. int4/int8 codes are turned into f16 pairs with
// the 0x6400 exponent trick and multiplied in f16x2 within one 16-byte chunk (at most 32 products,
// one group since group sizes are multiples of the chunk), then scaled and summed in f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/pack2.cuh"
#include "backend/cuda/reduce.cuh"

namespace g4::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

// Values per 16-byte chunk of codes, and 16-byte x slots per chunk.
__host__ __device__ constexpr int values_per_chunk(WFmt f) { return f == WFmt::kInt4 ? 32 : f == WFmt::kInt8 ? 16 : 8; }
__host__ __device__ constexpr int xslots_per_chunk(WFmt f) { return f == WFmt::kInt4 ? 4 : 2; }

int64_t n_chunks(const WeightDesc& w) { return w.cols / values_per_chunk(w.fmt); }
int64_t xp_slots_per_token(const WeightDesc& w) {
  return (n_chunks(w) + 31) / 32 * 32 * xslots_per_chunk(w.fmt);
}

__device__ __forceinline__ __half2 u2h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// x [T, K] f32 -> xp: per token, slot u = (blk * M + m) * 32 + lane holds what chunk c = blk*32 + lane
// needs for its m-th 16 bytes of x (see the file comment); slots past the last chunk are zero.
__global__ void permute_x_kernel(WFmt fmt, const float* __restrict__ x, int64_t K, int64_t slots, int T,
                                 uint4* __restrict__ xp) {
  grid_dependency_sync();
  const int64_t total = slots * T;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / slots, u = i % slots;
    const int M = xslots_per_chunk(fmt), VC = values_per_chunk(fmt);
    const int lane = int(u & 31), m = int((u >> 5) % M);
    const int64_t c = (u >> 5) / M * 32 + lane;
    const float* xr = x + t * K;
    uint4 o = make_uint4(0, 0, 0, 0);
    if ((c + 1) * VC <= K) {
      const float* xc = xr + c * VC;
      if (fmt == WFmt::kBF16) {
        const float4 f = *reinterpret_cast<const float4*>(xc + 4 * m);
        o = *reinterpret_cast<const uint4*>(&f);
      } else if (fmt == WFmt::kInt4) {  // half2 s = 0..3: (x[8m+s], x[8m+s+4])
        const float* b = xc + 8 * m;
        o.x = pack2<__half>(b[0], b[4]);
        o.y = pack2<__half>(b[1], b[5]);
        o.z = pack2<__half>(b[2], b[6]);
        o.w = pack2<__half>(b[3], b[7]);
      } else {  // int8: words 2m, 2m+1; per word (x[4w], x[4w+2]), (x[4w+1], x[4w+3])
        const float* b = xc + 8 * m;
        o.x = pack2<__half>(b[0], b[2]);
        o.y = pack2<__half>(b[1], b[3]);
        o.z = pack2<__half>(b[4], b[6]);
        o.w = pack2<__half>(b[5], b[7]);
      }
    }
    xp[i] = o;
  }
}

// Dot product of one 16-byte chunk with its x slots; returns the unscaled sum for int formats.
// Nibble pairs of a 32-bit word (v_s, v_s+4) come out as f16 by masking into the mantissa of 1024
// (0x6400): nibbles 0/4 give 1024 + q, nibbles 1/5 (not shifted down) give 1024 + 16 q, undone by one
// fma with 1/16; the word is shifted by 8 once for nibbles 2/6 and 3/7. All steps are exact in f16.
template <bool kAsym>
__device__ __forceinline__ float dot_int4(const uint4& w, const uint4* xs, float z) {
  const __half2 zz = __float2half2_rn(kAsym ? z : 8.0f);
  // Symmetric: subtract 1024 + 8 (resp. 64 + 8 after the 1/16) directly; asymmetric: the exact integer
  // q first, then the (possibly non-integer) zero point, as the reference does.
  const __half2 lo_off = kAsym ? u2h2(0x64006400u) : __hadd2(u2h2(0x64006400u), zz);
  const __half2 hi_off = __hneg2(kAsym ? __float2half2_rn(64.f) : __hadd2(__float2half2_rn(64.f), zz));
  const __half2 sixteenth = __float2half2_rn(0.0625f);
  __half2 acc0 = __float2half2_rn(0.f), acc1 = __float2half2_rn(0.f);
  const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int m = 0; m < 4; ++m) {
    const uint32_t xw[4] = {xs[m].x, xs[m].y, xs[m].z, xs[m].w};
    const uint32_t a = ws[m], b = ws[m] >> 8;
    __half2 q0 = __hsub2(u2h2((a & 0x000F000Fu) | 0x64006400u), lo_off);
    __half2 q1 = __hfma2(u2h2((a & 0x00F000F0u) | 0x64006400u), sixteenth, hi_off);
    __half2 q2 = __hsub2(u2h2((b & 0x000F000Fu) | 0x64006400u), lo_off);
    __half2 q3 = __hfma2(u2h2((b & 0x00F000F0u) | 0x64006400u), sixteenth, hi_off);
    if (kAsym) q0 = __hsub2(q0, zz), q1 = __hsub2(q1, zz), q2 = __hsub2(q2, zz), q3 = __hsub2(q3, zz);
    acc0 = __hfma2(q0, u2h2(xw[0]), acc0);
    acc1 = __hfma2(q1, u2h2(xw[1]), acc1);
    acc0 = __hfma2(q2, u2h2(xw[2]), acc0);
    acc1 = __hfma2(q3, u2h2(xw[3]), acc1);
  }
  const float2 a = __half22float2(acc0), b = __half22float2(acc1);
  return (a.x + a.y) + (b.x + b.y);
}

template <bool kAsym>
__device__ __forceinline__ float dot_int8(const uint4& w, const uint4* xs, float z) {
  // signed byte b: ((b ^ 0x80) | 0x6400) = 1024 + 128 + b in f16.
  const __half2 k1152 = __float2half2_rn(1152.0f);
  const __half2 zz = __float2half2_rn(kAsym ? z : 0.0f);
  __half2 acc0 = __float2half2_rn(0.f), acc1 = __float2half2_rn(0.f);
  const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int m = 0; m < 2; ++m) {
    const uint32_t xw[4] = {xs[m].x, xs[m].y, xs[m].z, xs[m].w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t word = ws[2 * m + j / 2] ^ 0x80808080u;
      __half2 q = __hsub2(u2h2(((word >> (8 * (j & 1))) & 0x00FF00FFu) | 0x64006400u), k1152);
      if (kAsym) q = __hsub2(q, zz);
      if (j & 1) acc1 = __hfma2(q, u2h2(xw[j]), acc1);
      else acc0 = __hfma2(q, u2h2(xw[j]), acc0);
    }
  }
  const float2 a = __half22float2(acc0), b = __half22float2(acc1);
  return (a.x + a.y) + (b.x + b.y);
}

__device__ __forceinline__ float dot_bf16(const uint4& w, const uint4* xs) {
  const float4 a = *reinterpret_cast<const float4*>(&xs[0]);
  const float4 b = *reinterpret_cast<const float4*>(&xs[1]);
  auto lo = [](uint32_t u) { return __uint_as_float(u << 16); };
  auto hi = [](uint32_t u) { return __uint_as_float(u & 0xFFFF0000u); };
  float r = lo(w.x) * a.x;
  r = fmaf(hi(w.x), a.y, r);
  r = fmaf(lo(w.y), a.z, r);
  r = fmaf(hi(w.y), a.w, r);
  r = fmaf(lo(w.z), b.x, r);
  r = fmaf(hi(w.z), b.y, r);
  r = fmaf(lo(w.w), b.z, r);
  r = fmaf(hi(w.w), b.w, r);
  return r;
}

// R rows per warp, U chunks per lane and row in flight: all U*R weight loads (and their scales) are
// issued before any arithmetic, and each x chunk read from L1 serves R rows. Rows past the end are
// clamped to the last row (loaded, never stored) so the loop has no row predicates.
template <WFmt kFmt, class S, bool kAsym, int NT, int R, int U>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_rows_kernel(WeightDesc w, const uint4* __restrict__ xp,
                                                                        int64_t slots, int cpg_shift, int cpg,
                                                                        float* __restrict__ y) {
  grid_dependency_sync();
  constexpr int M = xslots_per_chunk(kFmt);
  constexpr bool kQuant = kFmt != WFmt::kBF16;
  const int lane = threadIdx.x & 31;
  const int nch = int(w.cols / values_per_chunk(kFmt));
  const int64_t G = kQuant ? w.cols / w.group_size : 1;
  // Grid-stride over row groups: the grid is at most one resident wave, so a matrix of a few waves'
  // worth of rows does not end in a mostly idle partial wave.
  for (int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5)) * R; row0 < w.rows;
       row0 += int64_t(gridDim.x) * kWarpsPerBlock * R) {
  const uint4* wr[R];
  int64_t grow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = min(row0 + r, w.rows - 1);
    wr[r] = static_cast<const uint4*>(w.codes) + row * nch;
    grow[r] = row * G;
  }
  float acc[R][NT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0.f;

  for (int c0 = lane; c0 < nch; c0 += 32 * U) {
    uint4 wv[U][R];
    float sc[U][R], zp[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + 32 * u;
      if (c < nch) {
        const int gc = cpg_shift >= 0 ? c >> cpg_shift : c / cpg;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          wv[u][r] = ld_stream(wr[r] + c);
          if constexpr (kQuant) {
            sc[u][r] = ld_scale<S>(w.scales, grow[r] + gc);
            zp[u][r] = kAsym ? ld_scale<S>(w.zeros, grow[r] + gc) : 0.f;
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + 32 * u;
      if (c < nch) {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          uint4 xs[M];
          const uint4* xb = xp + t * slots + (c >> 5) * (M * 32) + lane;
#pragma unroll
          for (int m = 0; m < M; ++m) xs[m] = __ldg(xb + m * 32);
#pragma unroll
          for (int r = 0; r < R; ++r) {
            if constexpr (kFmt == WFmt::kInt4) acc[r][t] = fmaf(sc[u][r], dot_int4<kAsym>(wv[u][r], xs, zp[u][r]), acc[r][t]);
            else if constexpr (kFmt == WFmt::kInt8) acc[r][t] = fmaf(sc[u][r], dot_int8<kAsym>(wv[u][r], xs, zp[u][r]), acc[r][t]);
            else acc[r][t] += dot_bf16(wv[u][r], xs);
          }
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float v = warp_sum(acc[r][t]);
      if (lane == 0 && row0 + r < w.rows) y[t * w.rows + row0 + r] = v;
    }
  }
}

template <WFmt kFmt, class S, bool kAsym, int NT>
void launch_rows_nt(const WeightDesc& w, const uint4* xp, int64_t slots, int R, int U, float* y, cudaStream_t s) {
  int cpg = 1, cpg_shift = 0;
  if (kFmt != WFmt::kBF16) {
    cpg = int(w.group_size / values_per_chunk(kFmt));
    cpg_shift = (cpg & (cpg - 1)) == 0 ? __builtin_ctz(unsigned(cpg)) : -1;
  }
  auto go = [&](auto kernel, int rows_per_warp) {
    // Blocks resident at once, asked once per kernel instantiation.
    static const int64_t resident = resident_blocks(kernel, kWarpsPerBlock * 32);
    const int64_t per_block = int64_t(kWarpsPerBlock) * rows_per_warp;
    const int64_t blocks = std::min(resident, (w.rows + per_block - 1) / per_block);
    launch(kernel, unsigned(blocks), kWarpsPerBlock * 32, 0, s, w, xp, slots, cpg_shift, cpg, y);
  };
  (void)U;
  // The variants are compiled only for the layouts the benchmarks sweep (bf16 weights; bf16 symmetric
  // scales); others always take the default, to bound compile time.
  constexpr bool kSweep = kFmt == WFmt::kBF16 || (std::is_same_v<S, __nv_bfloat16> && !kAsym);
  if constexpr (kSweep) {
    if (R == 1) return go(gemv_rows_kernel<kFmt, S, kAsym, NT, 1, 8>, 1);
    if (R == 4) return go(gemv_rows_kernel<kFmt, S, kAsym, NT, 4, 2>, 4);
  }
  if constexpr (kFmt == WFmt::kBF16 || kSweep) {
    if (U == 4) return go(gemv_rows_kernel<kFmt, S, kAsym, NT, 2, 4>, 2);
  }
  go(gemv_rows_kernel<kFmt, S, kAsym, NT, 2, 2>, 2);
}

// tune.rows_per_warp: 1, 2 or 4; tune.unroll 2 or 4
// (used with 2 rows; 1 row unrolls 8, 4 rows unroll 2).
template <WFmt kFmt, class S, bool kAsym>
void launch_gemv_t(const WeightDesc& w, const uint4* xp, int64_t slots, int T, float* y, GemvTuning tune,
                   cudaStream_t s) {
  // Defaults from cuda_gemv_bench on an H100 (docs/PERF.md): int4/int8 2 rows x 2 deep, bf16 2 x 4.
  const int R = tune.rows_per_warp == 0 ? 2 : tune.rows_per_warp;
  const int U = tune.unroll != 0 ? tune.unroll : kFmt == WFmt::kBF16 ? 4 : 2;
  switch (T) {
    case 1: launch_rows_nt<kFmt, S, kAsym, 1>(w, xp, slots, R, U, y, s); break;
    case 2: launch_rows_nt<kFmt, S, kAsym, 2>(w, xp, slots, R, U, y, s); break;
    case 3: launch_rows_nt<kFmt, S, kAsym, 3>(w, xp, slots, R, U, y, s); break;
    default: launch_rows_nt<kFmt, S, kAsym, 4>(w, xp, slots, R, U, y, s); break;
  }
}

template <WFmt kFmt>
void launch_gemv_fmt(const WeightDesc& w, const uint4* xp, int64_t slots, int T, float* y, GemvTuning tu,
                     cudaStream_t s) {
  with_scale_layout(w, [&](auto L) {
    launch_gemv_t<kFmt, typename decltype(L)::Scale, decltype(L)::asym>(w, xp, slots, T, y, tu, s);
  });
}

// --- dequantisation for the tensor-core path and the embedding ---

// 8 values from their codes: raw holds 8 bf16 values (kBF16), one word of 8 nibbles (kInt4, in .x) or two
// words of 8 bytes (kInt8, in .x and .y); sc and z are their group's scale and zero point.
__device__ __forceinline__ void decode8(WFmt fmt, const uint4& raw, float sc, float z, float v[8]) {
  if (fmt == WFmt::kBF16) {
    const uint32_t q[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) v[2 * j] = __uint_as_float(q[j] << 16), v[2 * j + 1] = __uint_as_float(q[j] & 0xFFFF0000u);
  } else if (fmt == WFmt::kInt4) {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = (float((raw.x >> (4 * j)) & 15u) - z) * sc;
  } else {
    const uint32_t q[2] = {raw.x, raw.y};
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = (float(int8_t(q[j / 4] >> (8 * (j % 4)))) - z) * sc;
  }
}

// Values k .. k + 7 of row r.
template <class S>
__device__ __forceinline__ void dequant8(const WeightDesc& w, int64_t r, int64_t k, float out[8]) {
  uint4 raw = make_uint4(0u, 0u, 0u, 0u);
  float sc = 1.f, z = 0.f;
  if (w.fmt == WFmt::kBF16) {
    raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.codes) + r * w.cols + k);
  } else {
    const int64_t g = r * (w.cols / w.group_size) + k / w.group_size;
    sc = ld_scale<S>(w.scales, g);
    z = w.zeros ? ld_scale<S>(w.zeros, g) : (w.fmt == WFmt::kInt4 ? 8.f : 0.f);
    if (w.fmt == WFmt::kInt4) {
      raw.x = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(w.codes) + r * (w.cols / 2) + k / 2);
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(static_cast<const int8_t*>(w.codes) + r * w.cols + k);
      raw.x = v.x, raw.y = v.y;
    }
  }
  decode8(w.fmt, raw, sc, z, out);
}

// Rows [r0, r0 + n) of w, dequantized: 8 values a thread and step (one coalesced code load, one 16-byte store
// of bf16 or two of f32), kDequantUnroll steps' loads issued before any value is formed. The weight is one
// flat run of values (rows are whole groups), so value f's code word, group (f >> gshift, or f / group_size
// when that is not a power of two) and output slot need no row arithmetic; decode8 forms the values, as for dequant8.
// (A thread per 8 values with three 64-bit divisions each ran at 44% of the H200's copy bandwidth: 40 ms of a
// 2,048-token prefill.)
constexpr int kDequantUnroll = 4;
template <class S, bool kToF32>
__global__ void dequant_kernel(WeightDesc w, int64_t f0, int64_t units, int gshift, void* out) {
  grid_dependency_sync();
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i0 < units; i0 += kDequantUnroll * stride) {
    uint4 raw[kDequantUnroll];
    float sc[kDequantUnroll], z[kDequantUnroll];
#pragma unroll
    for (int u = 0; u < kDequantUnroll; ++u) {
      const int64_t i = i0 + u * stride, f = f0 + 8 * i;
      if (i >= units) break;
      if (w.fmt == WFmt::kBF16) {
        raw[u] = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.codes) + f));
        continue;
      }
      if (w.fmt == WFmt::kInt4) raw[u].x = __ldg(reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(w.codes) + f / 2));
      else {
        const uint2 v = __ldg(reinterpret_cast<const uint2*>(static_cast<const int8_t*>(w.codes) + f));
        raw[u].x = v.x, raw[u].y = v.y;
      }
      const int64_t g = gshift >= 0 ? f >> gshift : f / w.group_size;
      sc[u] = ld_scale<S>(w.scales, g);
      z[u] = w.zeros ? ld_scale<S>(w.zeros, g) : (w.fmt == WFmt::kInt4 ? 8.f : 0.f);
    }
#pragma unroll
    for (int u = 0; u < kDequantUnroll; ++u) {
      const int64_t i = i0 + u * stride;
      if (i >= units) break;
      float v[8];
      decode8(w.fmt, raw[u], sc[u], z[u], v);
      if constexpr (kToF32) {
        float4* o = reinterpret_cast<float4*>(static_cast<float*>(out) + 8 * i);
        o[0] = make_float4(v[0], v[1], v[2], v[3]);
        o[1] = make_float4(v[4], v[5], v[6], v[7]);
      } else {
        uint4 o;
        uint32_t* q = &o.x;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          q[j] = pack2<__nv_bfloat16>(v[2 * j], v[2 * j + 1]);
        }
        reinterpret_cast<uint4*>(out)[i] = o;
      }
    }
  }
}

template <class S>
__global__ void embed_kernel(WeightDesc w, const int32_t* __restrict__ tokens, int T, float scale, float* out) {
  grid_dependency_sync();
  const int64_t per_row = w.cols / 8, total = int64_t(T) * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / per_row, k = (i % per_row) * 8;
    float v[8];
    dequant8<S>(w, tokens[t], k, v);
    float* o = out + t * w.cols + k;
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = v[j] * scale;
  }
}

unsigned grid_for(int64_t n, int block) { return unsigned(std::min<int64_t>((n + block - 1) / block, 65536)); }

}  // namespace

size_t gemv_x_bytes(const WeightDesc& w, int T) {
  const size_t permuted = size_t(xp_slots_per_token(w)) * 16 * size_t(T);
  return gemv_q8_supported(w) ? std::max(permuted, gemv_q8_x_bytes(w, T)) : permuted;
}

bool gemv_takes_q8(const WeightDesc& w, GemvTuning tune) {
  return gemv_q8_supported(w) && (tune.dp4a > 0 || (tune.dp4a == 0 && gemv_q8_enabled()));
}

void gemv_permute_x(const WeightDesc& w, const float* x, int T, void* xp, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kGemvMaxT, "gemv token count");
  const int64_t slots = xp_slots_per_token(w);
  launch(permute_x_kernel, grid_for(slots * T, 256), 256, 0, s, w.fmt, x, w.cols, slots, T, static_cast<uint4*>(xp));
  G4_CUDA_LAUNCHED();
}

void gemv_permuted(const WeightDesc& w, const void* xp, int T, float* y, cudaStream_t s, GemvTuning tune) {
  G4_CHECK(T >= 1 && T <= kGemvMaxT, "gemv token count");
  const int64_t slots = xp_slots_per_token(w);
  const uint4* xq = static_cast<const uint4*>(xp);
  switch (w.fmt) {
    case WFmt::kInt4: launch_gemv_fmt<WFmt::kInt4>(w, xq, slots, T, y, tune, s); break;
    case WFmt::kInt8: launch_gemv_fmt<WFmt::kInt8>(w, xq, slots, T, y, tune, s); break;
    case WFmt::kBF16: launch_gemv_t<WFmt::kBF16, float, false>(w, xq, slots, T, y, tune, s); break;
  }
  G4_CUDA_LAUNCHED();
}

void gemv(const WeightDesc& w, const float* x, int T, void* xp, float* y, cudaStream_t s, GemvTuning tune) {
  if (gemv_takes_q8(w, tune)) {  // up to kGemvQ8MaxT tokens; the f16 kernels below up to kGemvMaxT
    gemv_q8_quantize_x(w, x, T, xp, s);
    return gemv_q8_quantized(w, xp, T, y, s, tune);
  }
  gemv_permute_x(w, x, T, xp, s);
  gemv_permuted(w, xp, T, y, s, tune);
}

void dequant_rows(const WeightDesc& w, int64_t r0, int64_t n, void* out, bool to_f32, cudaStream_t s) {
  // 8-value units (dequant8 takes the same), aligned for the loads above: rows of whole groups.
  G4_CHECK(w.cols % 8 == 0 && (w.fmt == WFmt::kBF16 || (w.group_size % 8 == 0 && w.cols % w.group_size == 0)),
           "dequant_rows: weight layout");
  const int64_t units = n * w.cols / 8;
  int gshift = -1;
  for (int b = 0; b < 31 && w.fmt != WFmt::kBF16; ++b)
    if (w.group_size == (int64_t(1) << b)) gshift = b;
  const unsigned grid = unsigned(std::min<int64_t>((units + 256 * kDequantUnroll - 1) / (256 * kDequantUnroll), 65536));
  auto go = [&](auto f32_kernel, auto bf16_kernel) {
    if (to_f32) launch(f32_kernel, grid, 256, 0, s, w, r0 * w.cols, units, gshift, out);
    else launch(bf16_kernel, grid, 256, 0, s, w, r0 * w.cols, units, gshift, out);
  };
  switch (w.stype) {
    case SType::kF32: go(dequant_kernel<float, true>, dequant_kernel<float, false>); break;
    case SType::kF16: go(dequant_kernel<__half, true>, dequant_kernel<__half, false>); break;
    case SType::kBF16: go(dequant_kernel<__nv_bfloat16, true>, dequant_kernel<__nv_bfloat16, false>); break;
  }
  G4_CUDA_LAUNCHED();
}

void embed_rows(const WeightDesc& w, const int32_t* tokens, int T, float scale, float* out, cudaStream_t s) {
  const unsigned grid = grid_for(int64_t(T) * (w.cols / 8), 256);
  switch (w.stype) {
    case SType::kF32: launch(embed_kernel<float>, grid, 256, 0, s, w, tokens, T, scale, out); break;
    case SType::kF16: launch(embed_kernel<__half>, grid, 256, 0, s, w, tokens, T, scale, out); break;
    case SType::kBF16: launch(embed_kernel<__nv_bfloat16>, grid, 256, 0, s, w, tokens, T, scale, out); break;
  }
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
