// Row and elementwise kernels: RMSNorm (plain and residual-add), scale, softcap, GELU-tanh gating,
// RoPE with host-computed inverse frequencies (bit-identical to the ref backend's), and KV-cache
// writes with the ring-slot rule of backend.h. Reductions accumulate in f32 in a fixed order.
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace g4::cuda {

namespace {

unsigned grid_for(int64_t n, int block) { return unsigned(std::max<int64_t>(1, std::min<int64_t>((n + block - 1) / block, 65536))); }

constexpr int kNormThreads = 256;

// Block-wide sum, result broadcast to all threads.
__device__ float block_sum(float v) {
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float t = 0.f;
  for (int i = 0; i < int(blockDim.x >> 5); ++i) t += part[i];
  return t;
}

// One block per row. add: x += norm(o) (y unused); else y = norm(x).
template <bool kAdd>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const float* __restrict__ in, const float* __restrict__ w,
                                                              float eps, int64_t n, float* out) {
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

__global__ void scale_kernel(float* x, int64_t n, float s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] *= s;
}

__global__ void softcap_kernel(float* x, int64_t n, float cap) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
}

__global__ void gelu_mul_kernel(const float* gate, const float* up, int64_t n, float* out) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.f + tanhf(k * (g + 0.044715f * g * g * g))) * up[i];
  }
}

__global__ void to_bf16_kernel(const float* x, int64_t n, __nv_bfloat16* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

// Thread per (t, h, d < pairs). Angles in f32 as the reference, cos/sin in f64 as the reference.
__global__ void rope_kernel(float* x, int64_t T, int64_t H, int64_t D, int64_t p0, const float* inv_freq, int pairs) {
  const int64_t n = T * H * pairs;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int d = int(i % pairs);
    const int64_t th = i / pairs, t = th / H;
    const float ang = float(p0 + t) * inv_freq[d];
    double sd, cd;
    sincos(double(ang), &sd, &cd);
    const float c = float(cd), s = float(sd);
    float* v = x + th * D;
    const float a = v[d], b = v[d + D / 2];
    v[d] = a * c - b * s;
    v[d + D / 2] = b * c + a * s;
  }
}

__global__ void kv_write_kernel(float* ck, float* cv, const float* k, const float* v, int64_t first, int64_t n_rows,
                                int64_t row, int64_t p0, int64_t capacity, bool ring) {
  const int64_t n = n_rows * row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = first + i / row, e = i % row;
    const int64_t pos = p0 + t, slot = ring ? pos % capacity : pos;
    ck[slot * row + e] = k[t * row + e];
    cv[slot * row + e] = v[t * row + e];
  }
}

}  // namespace

void f32_to_bf16(const float* x, int64_t n, void* out, cudaStream_t s) {
  to_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, n, static_cast<__nv_bfloat16*>(out));
  G4_CUDA_LAUNCHED();
}

void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* y, cudaStream_t s) {
  if (rows == 0) return;
  rms_norm_kernel<false><<<unsigned(rows), kNormThreads, 0, s>>>(x, w, eps, n, y);
  G4_CUDA_LAUNCHED();
}

void add_rms_norm(float* x, const float* o, const float* w, float eps, int64_t rows, int64_t n, cudaStream_t s) {
  if (rows == 0) return;
  rms_norm_kernel<true><<<unsigned(rows), kNormThreads, 0, s>>>(o, w, eps, n, x);
  G4_CUDA_LAUNCHED();
}

void scale(float* x, int64_t n, float sc, cudaStream_t s) {
  scale_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, n, sc);
  G4_CUDA_LAUNCHED();
}

void softcap(float* x, int64_t n, float cap, cudaStream_t s) {
  softcap_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, n, cap);
  G4_CUDA_LAUNCHED();
}

void gelu_mul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t s) {
  gelu_mul_kernel<<<grid_for(n, 256), 256, 0, s>>>(gate, up, n, out);
  G4_CUDA_LAUNCHED();
}

void rope(float* x, int64_t T, int64_t H, int64_t D, int64_t p0, const float* inv_freq, int pairs, cudaStream_t s) {
  if (pairs == 0 || T == 0) return;
  rope_kernel<<<grid_for(T * H * pairs, 256), 256, 0, s>>>(x, T, H, D, p0, inv_freq, pairs);
  G4_CUDA_LAUNCHED();
}

void kv_write(float* ck, float* cv, const float* k, const float* v, int64_t T, int64_t first, int64_t row, int64_t p0,
              int64_t capacity, bool ring, cudaStream_t s) {
  if (T <= first) return;
  kv_write_kernel<<<grid_for((T - first) * row, 256), 256, 0, s>>>(ck, cv, k, v, first, T - first, row, p0, capacity, ring);
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
