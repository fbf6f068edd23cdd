// Decode GEMV on packed weights: one warp per output row, each lane streaming 16-byte chunks of the
// row (coalesced 512 bytes per warp per load, read once, not kept in L1). The activation is first
// permuted (permute_x) so that the x values a lane needs for its chunk sit at lane-consecutive 16-byte
// slots: reading them is conflict-free and hits L1. int4/int8 codes are turned into f16 pairs with
// the 0x6400 exponent trick and multiplied in f16x2 within one 16-byte chunk (at most 32 products,
// one group since group sizes are multiples of the chunk), then scaled and summed in f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

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

template <class S>
__device__ __forceinline__ float ld_scale(const void* p, int64_t i) {
  if constexpr (sizeof(S) == 4) return __ldg(static_cast<const float*>(p) + i);
  else if constexpr (std::is_same_v<S, __half>) return __half2float(static_cast<const __half*>(p)[i]);
  else return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}

__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

__device__ __forceinline__ __half2 u2h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }
__device__ __forceinline__ uint32_t h22u(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }

// x [T, K] f32 -> xp: per token, slot u = (blk * M + m) * 32 + lane holds what chunk c = blk*32 + lane
// needs for its m-th 16 bytes of x (see the file comment); slots past the last chunk are zero.
__global__ void permute_x_kernel(WFmt fmt, const float* __restrict__ x, int64_t K, int64_t slots, int T,
                                 uint4* __restrict__ xp) {
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
        o.x = h22u(__floats2half2_rn(b[0], b[4]));
        o.y = h22u(__floats2half2_rn(b[1], b[5]));
        o.z = h22u(__floats2half2_rn(b[2], b[6]));
        o.w = h22u(__floats2half2_rn(b[3], b[7]));
      } else {  // int8: words 2m, 2m+1; per word (x[4w], x[4w+2]), (x[4w+1], x[4w+3])
        const float* b = xc + 8 * m;
        o.x = h22u(__floats2half2_rn(b[0], b[2]));
        o.y = h22u(__floats2half2_rn(b[1], b[3]));
        o.z = h22u(__floats2half2_rn(b[4], b[6]));
        o.w = h22u(__floats2half2_rn(b[5], b[7]));
      }
    }
    xp[i] = o;
  }
}

// Dot product of one 16-byte chunk with its x slots; returns the unscaled sum for int formats.
template <bool kAsym>
__device__ __forceinline__ float dot_int4(const uint4& w, const uint4* xs, float z) {
  // (1024 + q) - (1024 + z) is exact in f16 for integer z; non-integer z is subtracted separately.
  const __half2 k1024 = u2h2(0x64006400u);
  const __half2 zz = __float2half2_rn(kAsym ? z : 8.0f);
  const __half2 off = kAsym ? k1024 : __hadd2(k1024, zz);
  __half2 acc0 = __float2half2_rn(0.f), acc1 = __float2half2_rn(0.f);
  const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int m = 0; m < 4; ++m) {
    const uint32_t xw[4] = {xs[m].x, xs[m].y, xs[m].z, xs[m].w};
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      __half2 q = __hsub2(u2h2(((ws[m] >> (4 * s)) & 0x000F000Fu) | 0x64006400u), off);
      if (kAsym) q = __hsub2(q, zz);
      if (s & 1) acc1 = __hfma2(q, u2h2(xw[s]), acc1);
      else acc0 = __hfma2(q, u2h2(xw[s]), acc0);
    }
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

template <WFmt kFmt, class S, bool kAsym, int NT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_kernel(WeightDesc w, const uint4* __restrict__ xp,
                                                                   int64_t slots, float* __restrict__ y) {
  constexpr int VC = values_per_chunk(kFmt), M = xslots_per_chunk(kFmt);
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= w.rows) return;
  const int64_t nch = w.cols / VC, G = kFmt == WFmt::kBF16 ? 1 : w.cols / w.group_size;
  const uint4* wr = static_cast<const uint4*>(w.codes) + row * nch;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;

  auto chunk = [&](int64_t c, const uint4& wv) {
    float sc = 1.f, z = 0.f;
    if constexpr (kFmt != WFmt::kBF16) {
      const int64_t g = row * G + c * VC / w.group_size;
      sc = ld_scale<S>(w.scales, g);
      if (kAsym) z = ld_scale<S>(w.zeros, g);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      uint4 xs[M];
      const uint4* xb = xp + t * slots + (c >> 5) * (M * 32) + lane;
#pragma unroll
      for (int m = 0; m < M; ++m) xs[m] = __ldg(xb + m * 32);
      if constexpr (kFmt == WFmt::kInt4) acc[t] = fmaf(sc, dot_int4<kAsym>(wv, xs, z), acc[t]);
      else if constexpr (kFmt == WFmt::kInt8) acc[t] = fmaf(sc, dot_int8<kAsym>(wv, xs, z), acc[t]);
      else acc[t] += dot_bf16(wv, xs);
    }
  };

  // Two chunks per lane in flight before use.
  int64_t c = lane;
  for (; c + 32 < nch; c += 64) {
    const uint4 w0 = ld_stream(wr + c), w1 = ld_stream(wr + c + 32);
    chunk(c, w0);
    chunk(c + 32, w1);
  }
  if (c < nch) chunk(c, ld_stream(wr + c));

#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float v = acc[t];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) y[t * w.rows + row] = v;
  }
}

template <WFmt kFmt, class S, bool kAsym>
void launch_gemv_t(const WeightDesc& w, const uint4* xp, int64_t slots, int T, float* y, cudaStream_t s) {
  const dim3 grid(unsigned((w.rows + kWarpsPerBlock - 1) / kWarpsPerBlock)), block(kWarpsPerBlock * 32);
  switch (T) {
    case 1: gemv_kernel<kFmt, S, kAsym, 1><<<grid, block, 0, s>>>(w, xp, slots, y); break;
    case 2: gemv_kernel<kFmt, S, kAsym, 2><<<grid, block, 0, s>>>(w, xp, slots, y); break;
    case 3: gemv_kernel<kFmt, S, kAsym, 3><<<grid, block, 0, s>>>(w, xp, slots, y); break;
    default: gemv_kernel<kFmt, S, kAsym, 4><<<grid, block, 0, s>>>(w, xp, slots, y); break;
  }
}

template <WFmt kFmt>
void launch_gemv_fmt(const WeightDesc& w, const uint4* xp, int64_t slots, int T, float* y, cudaStream_t s) {
  const bool asym = w.zeros != nullptr;
  switch (w.stype) {
    case SType::kF32:
      asym ? launch_gemv_t<kFmt, float, true>(w, xp, slots, T, y, s) : launch_gemv_t<kFmt, float, false>(w, xp, slots, T, y, s);
      break;
    case SType::kF16:
      asym ? launch_gemv_t<kFmt, __half, true>(w, xp, slots, T, y, s) : launch_gemv_t<kFmt, __half, false>(w, xp, slots, T, y, s);
      break;
    case SType::kBF16:
      asym ? launch_gemv_t<kFmt, __nv_bfloat16, true>(w, xp, slots, T, y, s)
           : launch_gemv_t<kFmt, __nv_bfloat16, false>(w, xp, slots, T, y, s);
      break;
  }
}

// --- dequantisation for the tensor-core path and the embedding ---

template <class S>
__device__ __forceinline__ void dequant8(const WeightDesc& w, int64_t r, int64_t k, float out[8]) {
  if (w.fmt == WFmt::kBF16) {
    const uint4 v = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.codes) + r * w.cols + k);
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(u[i] << 16);
      out[2 * i + 1] = __uint_as_float(u[i] & 0xFFFF0000u);
    }
    return;
  }
  const int64_t g = r * (w.cols / w.group_size) + k / w.group_size;
  const float sc = ld_scale<S>(w.scales, g);
  const bool i4 = w.fmt == WFmt::kInt4;
  const float z = w.zeros ? ld_scale<S>(w.zeros, g) : (i4 ? 8.f : 0.f);
  if (i4) {
    const uint32_t word = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(w.codes) + r * (w.cols / 2) + k / 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = (float((word >> (4 * i)) & 15u) - z) * sc;
  } else {
    const int8_t* p = static_cast<const int8_t*>(w.codes) + r * w.cols + k;
    const int2 v = *reinterpret_cast<const int2*>(p);
    const int8_t* b = reinterpret_cast<const int8_t*>(&v);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = (float(b[i]) - z) * sc;
  }
}

template <class S>
__global__ void dequant_kernel(WeightDesc w, int64_t r0, int64_t n, void* out, bool to_f32) {
  const int64_t per_row = w.cols / 8, total = n * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / per_row, k = (i % per_row) * 8;
    float v[8];
    dequant8<S>(w, r0 + r, k, v);
    if (to_f32) {
      float4* o = reinterpret_cast<float4*>(static_cast<float*>(out) + r * w.cols + k);
      o[0] = make_float4(v[0], v[1], v[2], v[3]);
      o[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      uint4 o;
      uint32_t* u = &o.x;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * j], v[2 * j + 1]);
        u[j] = *reinterpret_cast<uint32_t*>(&h);
      }
      *reinterpret_cast<uint4*>(static_cast<__nv_bfloat16*>(out) + r * w.cols + k) = o;
    }
  }
}

template <class S>
__global__ void embed_kernel(WeightDesc w, const int32_t* __restrict__ tokens, int T, float scale, float* out) {
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

size_t gemv_x_bytes(const WeightDesc& w, int T) { return size_t(xp_slots_per_token(w)) * 16 * size_t(T); }

void gemv(const WeightDesc& w, const float* x, int T, void* xp, float* y, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kGemvMaxT, "gemv token count");
  const int64_t slots = xp_slots_per_token(w);
  permute_x_kernel<<<grid_for(slots * T, 256), 256, 0, s>>>(w.fmt, x, w.cols, slots, T, static_cast<uint4*>(xp));
  G4_CUDA_LAUNCHED();
  const uint4* xq = static_cast<const uint4*>(xp);
  switch (w.fmt) {
    case WFmt::kInt4: launch_gemv_fmt<WFmt::kInt4>(w, xq, slots, T, y, s); break;
    case WFmt::kInt8: launch_gemv_fmt<WFmt::kInt8>(w, xq, slots, T, y, s); break;
    case WFmt::kBF16: launch_gemv_t<WFmt::kBF16, float, false>(w, xq, slots, T, y, s); break;
  }
  G4_CUDA_LAUNCHED();
}

void dequant_rows(const WeightDesc& w, int64_t r0, int64_t n, void* out, bool to_f32, cudaStream_t s) {
  const unsigned grid = grid_for(n * (w.cols / 8), 256);
  switch (w.stype) {
    case SType::kF32: dequant_kernel<float><<<grid, 256, 0, s>>>(w, r0, n, out, to_f32); break;
    case SType::kF16: dequant_kernel<__half><<<grid, 256, 0, s>>>(w, r0, n, out, to_f32); break;
    case SType::kBF16: dequant_kernel<__nv_bfloat16><<<grid, 256, 0, s>>>(w, r0, n, out, to_f32); break;
  }
  G4_CUDA_LAUNCHED();
}

void embed_rows(const WeightDesc& w, const int32_t* tokens, int T, float scale, float* out, cudaStream_t s) {
  const unsigned grid = grid_for(int64_t(T) * (w.cols / 8), 256);
  switch (w.stype) {
    case SType::kF32: embed_kernel<float><<<grid, 256, 0, s>>>(w, tokens, T, scale, out); break;
    case SType::kF16: embed_kernel<__half><<<grid, 256, 0, s>>>(w, tokens, T, scale, out); break;
    case SType::kBF16: embed_kernel<__nv_bfloat16><<<grid, 256, 0, s>>>(w, tokens, T, scale, out); break;
  }
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
