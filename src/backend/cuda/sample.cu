// Token choice on the device (Backend::sample_rows): the steps of backend/sampling.h choose_token on a
// logits row in device memory, so that only the chosen id crosses to the host.
//
//   greedy (temperature <= 0, or top-k 1): argmax over the (penalised) row, lowest id on ties: per-block
//     bests, then one block combines them (the order (value desc, id asc) is total, so the result does not
//     depend on how the row was split).
//   sampling: the row (penalised) is sorted by logit, descending, with CUB's stable radix sort over (logit,
//     id) pairs with ids ascending, which is the host's order (ties to the lower id; -0 and +0 equal). Then
//     over the first k = top-k (or V) sorted entries, in double as on the host:
//       1. per-block sums of e_i = exp((l_i - l_0) / T)                         -> S (summed in block order)
//       2. min-p (when on): per block the first i >= 1 with e_i / S < min_p / S, and the sum of e_i over the
//          entries that pass                                                    -> keep, E
//       3. one block walks the sorted entries in chunks with a block-wide prefix sum of e_i / S: top-p's cut
//          (first cumulative >= top_p: keep, total), then the draw: r = u * total, the first entry whose
//          cumulative exceeds r (the last kept one when rounding leaves none).
// The sums are in a different order from the host's sequential ones and CUDA's exp may differ from the
// host's by an ulp, so a choice differs from the host's only when r (or top-p, or the min-p threshold) lands
// within rounding distance of a boundary between two entries.
//
// Every kernel starts with grid_dependency_sync() (launch.cuh); CUB's sort kernels are launched plainly
// and so are ordinary stream neighbours.
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace g4::cuda {

namespace {

constexpr int kThreads = 256;      // the grid-wide passes
constexpr int kWalkThreads = 512;  // the one-block walk
constexpr int kMaxBlocks = 256;    // partial results per grid-wide pass

int blocks_for(int64_t n) { return int(std::min<int64_t>(kMaxBlocks, std::max<int64_t>(1, (n + 2047) / 2048))); }

// Scratch layout (byte offsets, each 256-aligned): keys, ids, sorted keys, sorted ids [V]; the per-block
// partials; CUB's temporary storage.
struct Layout {
  size_t keys, ids, skeys, sids, best_v, best_i, sum, mass, fail, cub, cub_bytes, total;
};

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

Layout layout(int64_t V) {
  size_t cub_bytes = 0;
  G4_CUDA(cub::DeviceRadixSort::SortPairsDescending(nullptr, cub_bytes, static_cast<const float*>(nullptr),
                                                    static_cast<float*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                    static_cast<int32_t*>(nullptr), int(V)));
  Layout l{};
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t p = at;
    at += align256(bytes);
    return p;
  };
  l.keys = take(size_t(V) * 4);
  l.ids = take(size_t(V) * 4);
  l.skeys = take(size_t(V) * 4);
  l.sids = take(size_t(V) * 4);
  l.best_v = take(kMaxBlocks * 4);
  l.best_i = take(kMaxBlocks * 4);
  l.sum = take(kMaxBlocks * 8);
  l.mass = take(kMaxBlocks * 8);
  l.fail = take(kMaxBlocks * 4);
  l.cub_bytes = cub_bytes;
  l.cub = take(cub_bytes);
  l.total = at;
  return l;
}

// The host's order: larger value first, then lower id. Total apart from NaN (never better than anything).
__device__ __forceinline__ bool better(float av, int32_t ai, float bv, int32_t bi) {
  return av > bv || (av == bv && ai < bi);
}

// Block-wide best (value, id); the result is valid in thread 0. blockDim.x a multiple of 32.
__device__ void block_best(float& v, int32_t& i) {
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_down_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_down_sync(0xffffffffu, i, o);
    if (better(ov, oi, v, i)) v = ov, i = oi;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = int(blockDim.x >> 5);
  __syncthreads();
  if (lane == 0) sv[warp] = v, si[warp] = i;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? sv[lane] : -INFINITY;
    i = lane < nw ? si[lane] : INT_MAX;
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_down_sync(0xffffffffu, v, o);
      const int32_t oi = __shfl_down_sync(0xffffffffu, i, o);
      if (better(ov, oi, v, i)) v = ov, i = oi;
    }
  }
}

// Block-wide sum of doubles and minimum of ints; valid in thread 0.
__device__ void block_sum_min(double& s, int& m) {
  __shared__ double ss[32];
  __shared__ int sm[32];
  for (int o = 16; o > 0; o >>= 1) {
    s += __shfl_down_sync(0xffffffffu, s, o);
    m = min(m, __shfl_down_sync(0xffffffffu, m, o));
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = int(blockDim.x >> 5);
  __syncthreads();
  if (lane == 0) ss[warp] = s, sm[warp] = m;
  __syncthreads();
  if (warp == 0) {
    s = lane < nw ? ss[lane] : 0.0;
    m = lane < nw ? sm[lane] : INT_MAX;
    for (int o = 16; o > 0; o >>= 1) {
      s += __shfl_down_sync(0xffffffffu, s, o);
      m = min(m, __shfl_down_sync(0xffffffffu, m, o));
    }
  }
}

// This block's share [lo, hi) of n entries: contiguous ranges.
__device__ __forceinline__ void block_range(int64_t n, int64_t& lo, int64_t& hi) {
  const int64_t per = (n + gridDim.x - 1) / gridDim.x;
  lo = min(n, int64_t(blockIdx.x) * per);
  hi = min(n, lo + per);
}

// Row blockIdx.y of x [rows, n]: each block's best into best_v/best_i [rows, gridDim.x].
__global__ void __launch_bounds__(kThreads) argmax_part_kernel(const float* __restrict__ x, int64_t n, float* best_v,
                                                              int32_t* best_i) {
  grid_dependency_sync();
  x += int64_t(blockIdx.y) * n;
  best_v += int64_t(blockIdx.y) * gridDim.x;
  best_i += int64_t(blockIdx.y) * gridDim.x;
  int64_t lo, hi;
  block_range(n, lo, hi);
  float v = -INFINITY;
  int32_t id = INT_MAX;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float xi = x[i];
    if (better(xi, int32_t(i), v, id)) v = xi, id = int32_t(i);
  }
  block_best(v, id);
  if (threadIdx.x == 0) best_v[blockIdx.x] = v, best_i[blockIdx.x] = id;
}

// Row blockIdx.x: its nb bests combined into out[blockIdx.x].
__global__ void __launch_bounds__(kThreads) argmax_final_kernel(const float* best_v, const int32_t* best_i, int nb,
                                                               int32_t* out) {
  grid_dependency_sync();
  best_v += int64_t(blockIdx.x) * nb;
  best_i += int64_t(blockIdx.x) * nb;
  out += blockIdx.x;
  float v = -INFINITY;
  int32_t id = INT_MAX;
  for (int b = threadIdx.x; b < nb; b += blockDim.x)
    if (better(best_v[b], best_i[b], v, id)) v = best_v[b], id = best_i[b];
  block_best(v, id);
  if (threadIdx.x == 0) *out = id == INT_MAX ? 0 : id;  // only NaN: id 0, as the host's argmax
}

// keys = x, ids = 0 .. n-1.
__global__ void __launch_bounds__(kThreads) prepare_kernel(const float* __restrict__ x, int64_t n, float* keys,
                                                          int32_t* ids) {
  grid_dependency_sync();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    keys[i] = x[i];
    ids[i] = int32_t(i);
  }
}

// The host's penalty arithmetic in f32, with the intrinsics so nothing is fused into an FMA:
// x = x > 0 ? x / rp : x * rp; x -= presence + frequency * count. The ids are distinct.
__global__ void __launch_bounds__(kThreads) penalty_kernel(float* keys, const int32_t* pen_ids, const int32_t* pen_counts,
                                                          int n, float rp, float presence, float frequency) {
  grid_dependency_sync();
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    float x = keys[pen_ids[j]];
    x = x > 0.f ? __fdiv_rn(x, rp) : __fmul_rn(x, rp);
    x = __fsub_rn(x, __fadd_rn(presence, __fmul_rn(frequency, float(pen_counts[j]))));
    keys[pen_ids[j]] = x;
  }
}

// Banned ids: no choice may land on them (the host sets their logits to -infinity before its penalties,
// which leave -infinity as it is).
__global__ void __launch_bounds__(kThreads) ban_kernel(float* keys, const int32_t* ban_ids, int n) {
  grid_dependency_sync();
  for (int j = threadIdx.x; j < n; j += blockDim.x) keys[ban_ids[j]] = -INFINITY;
}

// e_i of sorted entry i, as the host computes it.
__device__ __forceinline__ double weight(const float* skeys, int64_t i, double mx, double temp) {
  return exp((double(skeys[i]) - mx) / temp);
}

// Sum of the per-block partials in block order: every block and the walk get the same S.
__device__ __forceinline__ double sum_parts(const double* part, int nb) {
  double s = 0;
  for (int b = 0; b < nb; ++b) s += part[b];
  return s;
}

__global__ void __launch_bounds__(kThreads) exp_sum_kernel(const float* __restrict__ skeys, int64_t k, double temp,
                                                          double* sum_part) {
  grid_dependency_sync();
  int64_t lo, hi;
  block_range(k, lo, hi);
  const double mx = skeys[0];
  double s = 0;
  int m = INT_MAX;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += weight(skeys, i, mx, temp);
  block_sum_min(s, m);
  if (threadIdx.x == 0) sum_part[blockIdx.x] = s;
}

// min-p: the host keeps entries up to the first i >= 1 with prob_i < min_p * prob_0 (prob = e / S,
// e_0 = 1). Per block: that first failing index (k when none) and the sum of e over the passing entries,
// which is the kept ones' sum because e falls along the sorted order.
__global__ void __launch_bounds__(kThreads) min_p_kernel(const float* __restrict__ skeys, int64_t k, double temp,
                                                        const double* sum_part, int nb, float min_p, int* fail_part,
                                                        double* mass_part) {
  grid_dependency_sync();
  int64_t lo, hi;
  block_range(k, lo, hi);
  const double mx = skeys[0], S = sum_parts(sum_part, nb), thr = double(min_p) * (1.0 / S);
  double s = 0;
  int m = INT_MAX;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const double e = weight(skeys, i, mx, temp);
    if (i > 0 && e / S < thr) m = min(m, int(i));
    else s += e;
  }
  block_sum_min(s, m);
  if (threadIdx.x == 0) fail_part[blockIdx.x] = m == INT_MAX ? int(k) : m, mass_part[blockIdx.x] = s;
}

// The first index i in [0, n) whose prefix sum of prob (carried over chunks of the block) satisfies
// pred(cum); -1 when none. Writes the prefix sum there to *cum_at. Uniform across the block.
template <class Pred>
__device__ int walk(const float* skeys, int n, double mx, double temp, double S, Pred pred, double* cum_at) {
  using Scan = cub::BlockScan<double, kWalkThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int found;
  __shared__ double found_cum;
  double carry = 0;
  for (int base = 0; base < n; base += kWalkThreads) {
    const int i = base + int(threadIdx.x);
    const double p = i < n ? weight(skeys, i, mx, temp) / S : 0.0;
    double inc, agg;
    Scan(tmp).InclusiveSum(p, inc, agg);
    const double cum = carry + inc;
    carry += agg;
    if (threadIdx.x == 0) found = INT_MAX;
    __syncthreads();
    if (i < n && pred(cum)) atomicMin(&found, i);
    __syncthreads();
    const int f = found;
    if (f != INT_MAX) {
      if (i == f) found_cum = cum;
      __syncthreads();
      *cum_at = found_cum;
      return f;
    }
    __syncthreads();  // every thread has read `found` (and tmp is free) before the next chunk
  }
  return -1;
}

__global__ void __launch_bounds__(kWalkThreads) walk_kernel(const float* __restrict__ skeys, const int32_t* __restrict__ sids,
                                                           int k, double temp, const double* sum_part, int nb,
                                                           const int* fail_part, const double* mass_part, int nb_min_p,
                                                           float top_p, double u, int32_t* out) {
  grid_dependency_sync();
  const double mx = skeys[0], S = sum_parts(sum_part, nb);
  int keep = k;
  double total = 1.0;  // sum of prob over the kept entries: S / S when nothing is cut
  if (nb_min_p > 0) {
    double E = 0;
    for (int b = 0; b < nb_min_p; ++b) keep = min(keep, fail_part[b]), E += mass_part[b];
    total = E / S;
  }
  if (top_p < 1.0f) {
    double cum = 0;
    const double tp = top_p;
    const int f = walk(skeys, keep, mx, temp, S, [tp](double c) { return c >= tp; }, &cum);
    if (f >= 0) keep = f + 1, total = cum;
  }
  const double r = u * total;
  double cum = 0;
  const int f = walk(skeys, keep, mx, temp, S, [r](double c) { return r < c; }, &cum);
  if (threadIdx.x == 0) *out = sids[f >= 0 ? f : keep - 1];
}

// The argmax of each of R rows of x [R, V] into out[R]: per-block bests (best_v, best_i [R, blocks_for(V)]),
// then a block a row.
void launch_argmax(const float* x, int64_t R, int64_t V, float* best_v, int32_t* best_i, int32_t* out, cudaStream_t s) {
  const int nb = blocks_for(V);
  launch(argmax_part_kernel, dim3(unsigned(nb), unsigned(R)), dim3(kThreads), 0, s, x, V, best_v, best_i);
  launch(argmax_final_kernel, dim3(unsigned(R)), dim3(kThreads), 0, s, (const float*)best_v, (const int32_t*)best_i, nb,
         out);
}

}  // namespace

size_t choose_token_scratch_bytes(int64_t V) { return layout(V).total; }

size_t argmax_rows_scratch_bytes(int64_t R, int64_t V) { return size_t(R) * size_t(blocks_for(V)) * 8; }

void argmax_rows(const float* logits, int64_t R, int64_t V, void* scratch, int32_t* out, cudaStream_t s) {
  float* best_v = static_cast<float*>(scratch);
  launch_argmax(logits, R, V, best_v, reinterpret_cast<int32_t*>(best_v + R * blocks_for(V)), out, s);
}

void choose_token(const float* logits, int64_t V, const ChoiceArgs& a, void* scratch, int32_t* out, cudaStream_t s) {
  const Layout L = layout(V);
  char* base = static_cast<char*>(scratch);
  float* keys = reinterpret_cast<float*>(base + L.keys);
  int32_t* ids = reinterpret_cast<int32_t*>(base + L.ids);
  float* skeys = reinterpret_cast<float*>(base + L.skeys);
  int32_t* sids = reinterpret_cast<int32_t*>(base + L.sids);
  float* best_v = reinterpret_cast<float*>(base + L.best_v);
  int32_t* best_i = reinterpret_cast<int32_t*>(base + L.best_i);
  double* sum_part = reinterpret_cast<double*>(base + L.sum);
  double* mass_part = reinterpret_cast<double*>(base + L.mass);
  int* fail_part = reinterpret_cast<int*>(base + L.fail);

  const int64_t k = a.top_k > 0 ? std::min<int64_t>(a.top_k, V) : V;
  const bool greedy = greedy_choice(a.temperature, a.top_k, V);
  const bool penalised = a.n_pen > 0, banning = a.n_ban > 0;
  const float* row = logits;
  if (penalised || banning || !greedy) {
    launch(prepare_kernel, dim3(unsigned(std::min<int64_t>((V + kThreads - 1) / kThreads, 1024))), dim3(kThreads), 0, s,
           logits, V, keys, ids);
    if (penalised)
      launch(penalty_kernel, dim3(1), dim3(kThreads), 0, s, keys, a.pen_ids, a.pen_counts, a.n_pen, a.repeat_penalty,
             a.presence_penalty, a.frequency_penalty);
    if (banning) launch(ban_kernel, dim3(1), dim3(kThreads), 0, s, keys, a.ban_ids, a.n_ban);
    row = keys;
  }
  if (greedy) return launch_argmax(row, 1, V, best_v, best_i, out, s);
  size_t cub_bytes = L.cub_bytes;
  G4_CUDA(cub::DeviceRadixSort::SortPairsDescending(base + L.cub, cub_bytes, (const float*)keys, skeys,
                                                    (const int32_t*)ids, sids, int(V), 0, 32, s));
  const double temp = a.temperature;
  const int nb = blocks_for(k);
  launch(exp_sum_kernel, dim3(nb), dim3(kThreads), 0, s, (const float*)skeys, k, temp, sum_part);
  int nb_min_p = 0;
  if (a.min_p > 0) {
    nb_min_p = nb;
    launch(min_p_kernel, dim3(nb), dim3(kThreads), 0, s, (const float*)skeys, k, temp, (const double*)sum_part, nb,
           a.min_p, fail_part, mass_part);
  }
  launch(walk_kernel, dim3(1), dim3(kWalkThreads), 0, s, (const float*)skeys, (const int32_t*)sids, int(k), temp,
         (const double*)sum_part, nb, (const int*)fail_part, (const double*)mass_part, nb_min_p, a.top_p, a.u, out);
}

}  // namespace g4::cuda
