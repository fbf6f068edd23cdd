// The merge of a query head's split results (decode attention's split-K), as one warp computes it for 32
// consecutive head dims, lane l dim l, when at most 32 splits hold keys: the weights exp(m_s - M) of the
// splits' (m_s, l_s) pairs with M their maximum and L = sum l_s exp(m_s - M), then kMergeGroups group sums
// (group g: splits g, g + 8, g + 16, g + 24 below `live`, one fmaf each in that order), the groups added in
// order from 0 and divided by L. attention.cu's merge kernel spreads the groups over its warps; the
// tensor-core split kernel's cluster merge (attn_decode_tc.cu) adds them in one lane. The operations and
// their order are the same, so the two give every output bit for bit and a launch may take either: a step,
// a verify and a batch sum each query's keys exactly alike whichever merge they take.
#pragma once

#include <cfloat>
#include <cuda_runtime.h>

#include "backend/cuda/reduce.cuh"

namespace g4::cuda {

constexpr int kMergeGroups = 8, kMergeHeld = 4;  // groups, and splits a group: 32 splits at most this way

struct MergeWeights {
  float w;  // this lane's split's weight (lane s: split s; zero past `live`)
  float L;  // every lane: the sum of the live splits' l_s times their weights
};

// pl: lane s's split's (m_s, l_s), read for s < live.
__device__ __forceinline__ MergeWeights merge_weights(float2 pl, int live) {
  const int lane = threadIdx.x & 31;
  const float m = lane < live ? pl.x : -FLT_MAX;
  const float M = warp_max(m);
  const float w = lane < live ? __expf(m - M) : 0.f;
  const float L = warp_sum(lane < live ? __fmul_rn(pl.y, w) : 0.f);
  return {w, L};
}

// Group g's sum at this lane's dim: part(k) = split g + kMergeGroups k's partial output (read only below
// `live`), its weight shuffled from that split's lane (every lane of the warp calls this with the same g).
template <class Part>
__device__ __forceinline__ float merge_group(int g, int live, float w, Part part) {
  float o = 0.f;
#pragma unroll
  for (int k = 0; k < kMergeHeld; ++k) {
    const int sp = g + k * kMergeGroups;
    const float wk = __shfl_sync(0xffffffffu, w, sp);
    if (sp < live) o = fmaf(part(k), wk, o);
  }
  return o;
}

}  // namespace g4::cuda
