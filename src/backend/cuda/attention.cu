// Attention kernels. Decode (few queries): split-K flash-decoding. Each block owns one query, one KV
// head (so its GQA group of query heads shares every K/V row read) and one slice of the visible keys,
// keeps an online softmax per head and writes (max, sum, unnormalised output); a second kernel merges
// the slices. Prefill uses cuBLAS GEMMs around gather_kv and masked_softmax (cuda_backend.cu).
// Key position pk lives in the new k/v when pk >= p0, else in cache slot pk (flat) or pk % capacity (ring).
// The cache holds CT (float or bf16); new keys and values are f32 and are read rounded to CT, as the cache
// will hold them, so a result does not depend on how a prompt was cut into chunks. A tile's rows are
// resolved once into pointers and a flag per row (fresh f32 or cached CT).
#include <algorithm>
#include <cfloat>
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace g4::cuda {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32, kTile = 64, kMaxElems = 16;  // group * D <= 4096
constexpr int kMaxD = 512;

template <class CT>
__device__ __forceinline__ const void* key_row(const AttnArgs& a, const float* fresh, const void* cache, int64_t pk,
                                               int64_t g) {
  if (pk >= a.p0) return fresh + ((pk - a.p0) * a.Hkv + g) * a.D;
  const int64_t slot = a.ring ? pk % a.capacity : pk;
  return static_cast<const CT*>(cache) + (slot * a.Hkv + g) * a.D;
}

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// Element i of a row that is f32 when fresh (rounded to CT), else CT.
template <class CT>
__device__ __forceinline__ float row_at(const void* row, bool fresh, int64_t i) {
  return fresh ? to_f32(CT(static_cast<const float*>(row)[i])) : to_f32(static_cast<const CT*>(row)[i]);
}

__device__ __forceinline__ void key_range(const AttnArgs& a, int64_t t, int64_t* lo, int64_t* hi) {
  const int64_t pq = a.p0 + t;
  *lo = a.window > 0 ? max(int64_t(0), pq - a.window + 1) : 0;
  *hi = pq + 1;
}

// grid (Hkv, T, n_split). Scratch: part [T, Hq, n_split, D], ml [T, Hq, n_split, 2].
template <class CT>
__global__ void __launch_bounds__(kThreads) decode_kernel(AttnArgs a, int n_split, float* part, float* ml) {
  extern __shared__ float sm[];
  if (a.dpos) a.p0 = *a.dpos;
  const int64_t g = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const int group = int(a.Hq / a.Hkv), D = int(a.D);
  float* qs = sm;                       // [group, D]
  float* sc = qs + group * D;           // [group, kTile]
  float* mrow = sc + group * kTile;     // [group] running max
  float* lrow = mrow + group;           // [group] running sum
  float* frow = lrow + group;           // [group] rescale factor of this tile
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  int64_t lo, hi;
  key_range(a, t, &lo, &hi);
  const int64_t per = (hi - lo + n_split - 1) / n_split;
  const int64_t ks = lo + split * per, ke = min(hi, ks + per);

  for (int i = tid; i < group * D; i += kThreads) qs[i] = a.q[(t * a.Hq + g * group) * D + i];
  for (int j = tid; j < group; j += kThreads) mrow[j] = -FLT_MAX, lrow[j] = 0.f;
  float acc[kMaxElems];
#pragma unroll
  for (int i = 0; i < kMaxElems; ++i) acc[i] = 0.f;
  __syncthreads();

  // Row addresses of the tile's keys and values, resolved once per tile (the ring's modulo is costly).
  __shared__ const void* krow[kTile];
  __shared__ const void* vrow[kTile];
  __shared__ bool fresh[kTile];
  for (int64_t k0 = ks; k0 < ke; k0 += kTile) {
    const int nk = int(min(int64_t(kTile), ke - k0));
    if (tid < nk) {
      krow[tid] = key_row<CT>(a, a.k, a.ck, k0 + tid, g);
      vrow[tid] = key_row<CT>(a, a.v, a.cv, k0 + tid, g);
      fresh[tid] = k0 + tid >= a.p0;
    }
    __syncthreads();
    // Scores: a warp per key, the key row held in registers (lanes over D), reused by the group's heads.
    for (int kk = warp; kk < nk; kk += kWarps) {
      const void* kr = krow[kk];
      const bool kf = fresh[kk];
      float kv[kMaxD / 32];
#pragma unroll
      for (int i = 0; i < kMaxD / 32; ++i) kv[i] = (lane + i * 32 < D) ? row_at<CT>(kr, kf, lane + i * 32) : 0.f;
      for (int j = 0; j < group; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < kMaxD / 32; ++i)
          if (lane + i * 32 < D) s = fmaf(qs[j * D + lane + i * 32], kv[i], s);
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) sc[j * kTile + kk] = s;
      }
    }
    __syncthreads();
    // Online softmax per head: a warp per head.
    for (int j = warp; j < group; j += kWarps) {
      float mx = -FLT_MAX;
      for (int kk = lane; kk < nk; kk += 32) mx = fmaxf(mx, sc[j * kTile + kk]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_new = fmaxf(mrow[j], mx);
      float sum = 0.f;
      for (int kk = lane; kk < nk; kk += 32) {
        const float p = __expf(sc[j * kTile + kk] - m_new);
        sc[j * kTile + kk] = p;
        sum += p;
      }
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      __syncwarp();
      if (lane == 0) {
        const float f = __expf(mrow[j] - m_new);
        frow[j] = f;
        lrow[j] = lrow[j] * f + sum;
        mrow[j] = m_new;
      }
    }
    __syncthreads();
    // Output accumulation: thread-owned (head, dim) elements, V rows read coalesced. The tile's cached rows
    // come first and its fresh rows (positions >= p0) last, so each part is a loop of its own type.
    const int nc = int(max(int64_t(0), min(int64_t(nk), a.p0 - k0)));
#pragma unroll
    for (int i = 0; i < kMaxElems; ++i) {
      const int e = tid + i * kThreads;
      if (e < group * D) {
        const int j = e / D, d = e % D;
        float v = acc[i] * frow[j];
#pragma unroll 8
        for (int kk = 0; kk < nc; ++kk) v = fmaf(sc[j * kTile + kk], to_f32(static_cast<const CT*>(vrow[kk])[d]), v);
        for (int kk = nc; kk < nk; ++kk) v = fmaf(sc[j * kTile + kk], row_at<CT>(vrow[kk], true, d), v);
        acc[i] = v;
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kMaxElems; ++i) {
    const int e = tid + i * kThreads;
    if (e < group * D) {
      const int j = e / D, d = e % D;
      part[(((t * a.Hq) + g * group + j) * n_split + split) * D + d] = acc[i];
    }
  }
  for (int j = tid; j < group; j += kThreads) {
    float* o = ml + (((t * a.Hq) + g * group + j) * n_split + split) * 2;
    o[0] = ks < ke ? mrow[j] : -FLT_MAX;
    o[1] = lrow[j];
  }
}

// grid (T * Hq), block over D (one thread per element when D <= 1024). The per-split weights
// exp(m_s - M) / L are computed once into shared memory; the loop over splits is unrolled so that many
// independent loads of the partial outputs are in flight (a plain loop waited for each in turn: with
// 132 splits that was ~190 us per full-attention layer on an H100).
constexpr int kMaxSplit = 1024;
__global__ void combine_kernel(AttnArgs a, int n_split, const float* __restrict__ part, const float* __restrict__ ml) {
  __shared__ float wgt[kMaxSplit];
  __shared__ float red[32];
  const int64_t th = blockIdx.x;
  const float* m = ml + th * n_split * 2;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = int(blockDim.x + 31) >> 5;
  float M = -FLT_MAX;
  for (int s = threadIdx.x; s < n_split; s += blockDim.x) M = fmaxf(M, m[2 * s]);
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  if (lane == 0) red[warp] = M;
  __syncthreads();
  M = -FLT_MAX;
  for (int i = 0; i < nw; ++i) M = fmaxf(M, red[i]);
  __syncthreads();
  float L = 0.f;
  for (int s = threadIdx.x; s < n_split; s += blockDim.x) {
    const float w = __expf(m[2 * s] - M);
    wgt[s] = w;
    L += m[2 * s + 1] * w;
  }
  for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
  if (lane == 0) red[warp] = L;
  __syncthreads();
  L = 0.f;
  for (int i = 0; i < nw; ++i) L += red[i];
  const float inv = 1.f / L;
  const float* pr = part + th * n_split * a.D;
  for (int d = threadIdx.x; d < a.D; d += blockDim.x) {
    float o0 = 0.f, o1 = 0.f;
    int s = 0;
#pragma unroll 8
    for (; s + 1 < n_split; s += 2) {
      o0 = fmaf(pr[int64_t(s) * a.D + d], wgt[s], o0);
      o1 = fmaf(pr[int64_t(s + 1) * a.D + d], wgt[s + 1], o1);
    }
    if (s < n_split) o0 = fmaf(pr[int64_t(s) * a.D + d], wgt[s], o0);
    a.out[th * a.D + d] = (o0 + o1) * inv;
  }
}

template <class CT>
__global__ void gather_kernel(AttnArgs a, int64_t lo, int64_t n, float* kc, float* vc) {
  const int64_t row = a.Hkv * a.D, total = n * row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pk = lo + i / row, e = i % row;
    if (pk >= a.p0) {
      kc[i] = to_f32(CT(a.k[(pk - a.p0) * row + e]));
      vc[i] = to_f32(CT(a.v[(pk - a.p0) * row + e]));
    } else {
      const int64_t slot = a.ring ? pk % a.capacity : pk;
      kc[i] = to_f32(static_cast<const CT*>(a.ck)[slot * row + e]);
      vc[i] = to_f32(static_cast<const CT*>(a.cv)[slot * row + e]);
    }
  }
}

// One block per score row [h, t, :].
__global__ void masked_softmax_kernel(float* scores, int64_t Tq, int64_t n, int64_t pq0, int64_t lo, int window) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x, t = r % Tq, pq = pq0 + t;
  float* row = scores + r * n;
  const int64_t first = window > 0 ? max(lo, pq - window + 1) : lo;  // visible keys: first <= pk <= pq
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const int64_t pk = lo + j;
    if (pk >= first && pk <= pq) mx = fmaxf(mx, row[j]);
  }
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  mx = -FLT_MAX;
  for (int i = 0; i < nw; ++i) mx = fmaxf(mx, red[i]);
  __syncthreads();
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const int64_t pk = lo + j;
    const float p = (pk >= first && pk <= pq) ? __expf(row[j] - mx) : 0.f;
    row[j] = p;
    sum += p;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) red[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int i = 0; i < nw; ++i) sum += red[i];
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] *= inv;
}

int pick_split(const AttnArgs& a, int n_sm) {
  // Keys a query can see, bounded by what the cache holds plus the new ones (independent of p0).
  const int64_t max_keys = (a.window > 0 ? std::min<int64_t>(a.window, a.capacity) : a.capacity) + a.T;
  const int64_t want = (4 * int64_t(n_sm) + a.Hkv * a.T - 1) / (a.Hkv * a.T);
  return int(std::max<int64_t>(1, std::min<int64_t>({want, (max_keys + kTile - 1) / kTile, int64_t(kMaxSplit)})));
}

}  // namespace

size_t attn_decode_scratch_bytes(const AttnArgs& a, int n_sm) {
  const size_t ns = size_t(pick_split(a, n_sm));
  return size_t(a.T * a.Hq) * ns * size_t(a.D + 2) * sizeof(float);
}

void attn_decode(const AttnArgs& a, void* scratch, int n_sm, cudaStream_t s) {
  const int group = int(a.Hq / a.Hkv);
  if (a.D > kMaxD) throw Error("cuda attention: head_dim " + std::to_string(a.D) + " exceeds the decode kernel's 512");
  if (int64_t(group) * a.D > int64_t(kMaxElems) * kThreads)
    throw Error("cuda attention: GQA group " + std::to_string(group) + " x head_dim " + std::to_string(a.D) +
                " exceeds the decode kernel's 4096 elements");
  const int ns = pick_split(a, n_sm);
  float* part = static_cast<float*>(scratch);
  float* ml = part + size_t(a.T * a.Hq) * size_t(ns) * size_t(a.D);
  const size_t smem = size_t(group * a.D + group * kTile + 3 * group) * sizeof(float);
  const dim3 grid(unsigned(a.Hkv), unsigned(a.T), unsigned(ns));
  if (a.cache_bf16) {
    if (smem > 48 * 1024)
      G4_CUDA(cudaFuncSetAttribute(decode_kernel<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    decode_kernel<__nv_bfloat16><<<grid, kThreads, smem, s>>>(a, ns, part, ml);
  } else {
    if (smem > 48 * 1024) G4_CUDA(cudaFuncSetAttribute(decode_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    decode_kernel<float><<<grid, kThreads, smem, s>>>(a, ns, part, ml);
  }
  G4_CUDA_LAUNCHED();
  const int cthreads = int(std::min<int64_t>(1024, (a.D + 31) / 32 * 32));
  combine_kernel<<<unsigned(a.T * a.Hq), cthreads, 0, s>>>(a, ns, part, ml);
  G4_CUDA_LAUNCHED();
}

void gather_kv(const AttnArgs& a, int64_t lo, int64_t n, float* kc, float* vc, cudaStream_t s) {
  const int64_t total = n * a.Hkv * a.D;
  const unsigned blocks = unsigned(std::min<int64_t>((total + 255) / 256, 65536));
  if (a.cache_bf16) gather_kernel<__nv_bfloat16><<<blocks, 256, 0, s>>>(a, lo, n, kc, vc);
  else gather_kernel<float><<<blocks, 256, 0, s>>>(a, lo, n, kc, vc);
  G4_CUDA_LAUNCHED();
}

void masked_softmax(float* scores, int64_t Hq, int64_t Tq, int64_t n, int64_t pq0, int64_t lo, int window,
                    cudaStream_t s) {
  masked_softmax_kernel<<<unsigned(Hq * Tq), 256, 0, s>>>(scores, Tq, n, pq0, lo, window);
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
