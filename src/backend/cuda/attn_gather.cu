// The prefill attention paths' helpers (cuda_backend.cc attention_prefill): every key and value of positions
// [lo, lo + n) gathered once from the cache or the new rows (rounded as the cache holds them; derived keys for
// K=V layers) as f32 or f16, for attn_prefill.cu's flash kernel or the cuBLAS GEMMs; and the GEMM path's masked
// softmax over a score matrix.
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/attn_rows.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/reduce.cuh"

namespace g4::cuda {

namespace {

__device__ __forceinline__ void store_as(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_as(__half* p, float v) { *p = __float2half_rn(v); }

template <class CT, class OT>
__global__ void gather_kernel(AttnArgs a, int64_t lo, int64_t n, OT* kc, OT* vc) {
  grid_dependency_sync();
  const int64_t row = a.Hkv * a.D, total = n * row, p0 = a.seqs.e[0].p0;
  const CT* ck = static_cast<const CT*>(a.seqs.e[0].ck);
  const CT* cv = static_cast<const CT*>(a.seqs.e[0].cv);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pk = lo + i / row, e = i % row;
    const bool fresh = pk >= p0;
    const int64_t slot = a.ring ? pk % a.capacity : pk;
    const float* fv = fresh ? a.v + (pk - p0) * row : nullptr;
    if (a.kw) {  // derived keys: from the value row (D values of one head) as the cache holds it
      const int64_t head = e - e % a.D;
      store_as(kc + i, derived_key_at<CT>(a, fresh ? static_cast<const void*>(fv + head) : cv + slot * row + head,
                                          fresh, pk, int(e % a.D)));
    } else {
      store_as(kc + i, fresh ? to_f32(CT(a.k[(pk - p0) * row + e])) : to_f32(ck[slot * row + e]));
    }
    store_as(vc + i, fresh ? to_f32(CT(fv[e])) : to_f32(cv[slot * row + e]));
  }
}

// One block per score row [h, t, :]. half_out: the probabilities written as f16 over the row's own first
// 2n bytes (row r's f16 values start at float r * n), a tile of blockDim values after the whole block read
// it: the f16 values of a tile land on floats of this or earlier tiles.
__global__ void masked_softmax_kernel(float* scores, int64_t Tq, int64_t n, int64_t pq0, int64_t lo, int window,
                                      bool half_out) {
  grid_dependency_sync();
  const int64_t r = blockIdx.x, t = r % Tq, pq = pq0 + t;
  float* row = scores + r * n;
  const int64_t first = window > 0 ? max(lo, pq - window + 1) : lo;  // visible keys: first <= pk <= pq
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const int64_t pk = lo + j;
    if (pk >= first && pk <= pq) mx = fmaxf(mx, row[j]);
  }
  mx = block_max(mx);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const int64_t pk = lo + j;
    const float p = (pk >= first && pk <= pq) ? __expf(row[j] - mx) : 0.f;
    row[j] = p;
    sum += p;
  }
  sum = block_sum(sum);
  const float inv = 1.f / sum;
  if (!half_out) {
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] *= inv;
    return;
  }
  __half* out = reinterpret_cast<__half*>(row);
  for (int64_t j0 = 0; j0 < n; j0 += blockDim.x) {
    const int64_t j = j0 + threadIdx.x;
    const float p = j < n ? row[j] * inv : 0.f;
    __syncthreads();
    if (j < n) out[j] = __float2half_rn(p);
  }
}

template <class OT>
void gather_kv_as(const AttnArgs& a, int64_t lo, int64_t n, OT* kc, OT* vc, cudaStream_t s) {
  const int64_t total = n * a.Hkv * a.D;
  const unsigned blocks = unsigned(std::min<int64_t>((total + 255) / 256, 65536));
  if (a.cache_bf16) launch(gather_kernel<__nv_bfloat16, OT>, blocks, 256, 0, s, a, lo, n, kc, vc);
  else launch(gather_kernel<float, OT>, blocks, 256, 0, s, a, lo, n, kc, vc);
  G4_CUDA_LAUNCHED();
}

}  // namespace

void gather_kv(const AttnArgs& a, int64_t lo, int64_t n, float* kc, float* vc, cudaStream_t s) {
  gather_kv_as(a, lo, n, kc, vc, s);
}

void gather_kv_f16(const AttnArgs& a, int64_t lo, int64_t n, void* kc, void* vc, cudaStream_t s) {
  gather_kv_as(a, lo, n, static_cast<__half*>(kc), static_cast<__half*>(vc), s);
}

void masked_softmax(float* scores, int64_t Hq, int64_t Tq, int64_t n, int64_t pq0, int64_t lo, int window,
                    bool half_out, cudaStream_t s) {
  launch(masked_softmax_kernel, unsigned(Hq * Tq), 256, 0, s, scores, Tq, n, pq0, lo, window, half_out);
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
