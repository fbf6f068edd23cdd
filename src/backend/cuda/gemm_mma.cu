// int4 weights times a few tokens (a decode step of several sequences, a speculative verify) on the
// integer tensor cores: y[T, rows] = x[T, cols] W^T for 1 <= T <= kMmaMaxT.
//
// The GEMV kernels (gemv_q8.cu) spend their instructions per (row, chunk, token): at 4 tokens a step costs
// twice one token's, and more tokens cost proportionally more. Here one mma.m16n8k32 multiplies 16 rows by
// 8 tokens over one 32-value chunk (u8 codes 0..15 times s8 activations, int32 sums), so the work per
// weight byte hardly grows with T and the step stays bound by reading the weights once.
//
// Data flow. x is rounded to int8 per 32 values as for the GEMV (q8_act.cuh), stored [chunk][token][32 B]
// with T padded to a multiple of 8 (zeros), and xd [chunk][token] = {d, d * sum(q)}. A block is 8 warps
// over 8 / ksplit tiles of 16 rows; the ksplit warps of a tile each take a range of chunks (split-K,
// summed through shared memory at the end; ksplit_for picks it from the row count).
// A warp streams its 16 rows' codes, scales and zero points into shared memory with cp.async, 8 chunks a
// stage and kStages stages in flight, then reads each chunk's A fragment with one ldmatrix per two
// chunks: an 8x8 b16 matrix of 8 rows x 16 bytes gives thread (g = lane / 4, t = lane % 4) code word t of
// row g, whose low nibbles are values 8t + {0, 2, 4, 6} and high nibbles 8t + {1, 3, 5, 7}. The mma's k
// index is a permutation of the chunk's 32 values (k 4t..4t+3 = the low nibbles, k 16+4t..16+4t+3 = the
// high ones) and the activation words A(t), B(t) are in exactly that order, so B is one 8-byte load.
// Each chunk lies in one group, so per chunk: sum(w x) = s (d C - z d sum(q_x)) with C the mma's int sum.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/q8_act.cuh"

namespace g4::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kRows = 16;                              // rows of a block (one mma's M)
constexpr int kStageChunks = 8;                        // chunks per row and pipeline stage (128 code bytes)
constexpr int kStages = 4;                             // stages per warp, kStages - 1 in flight
constexpr int kRowPitch = kStageChunks * 16 + 16;      // shared-memory row pitch: ldmatrix rows on distinct banks

// Scale bytes per row and stage: room for group size 32 (one scale per chunk).
template <class S>
__host__ __device__ constexpr int scale_pitch() { return kStageChunks * int(sizeof(S)); }
template <class S>
__host__ __device__ constexpr int stage_bytes() { return kRows * kRowPitch + 2 * kRows * scale_pitch<S>(); }
template <class S>
__host__ __device__ constexpr int smem_bytes() { return kWarpsPerBlock * kStages * stage_bytes<S>(); }

struct MmaArgs {
  const char* codes;
  const char* scales;
  const char* zeros;
  int64_t rows;
  int nch;        // 32-value chunks per row
  int groups;     // groups per row
  int cpg_shift;  // log2(chunks per group), at most 3
  int ksplit;     // warps of a block sharing one 16-row tile, each a range of chunks (1, 2, 4 or 8)
  int per_warp;   // chunks per warp, a multiple of kStageChunks
  const uint2* xq;
  const float4* xd;
  int T;
  float* y;
};

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// c = a (16 x 32 u8, row) * b (32 x 8 s8, col), int32.
__device__ __forceinline__ void mma_u8s8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <class S>
__device__ __forceinline__ float smem_scale(const char* row, int i) {
  if constexpr (sizeof(S) == 4) return reinterpret_cast<const float*>(row)[i];
  else if constexpr (std::is_same_v<S, __half>) return __half2float(reinterpret_cast<const __half*>(row)[i]);
  else return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[i]);
}

// One thread per (chunk, padded token); tokens past T are zero.
__global__ void quantize_x_mma_kernel(const float* __restrict__ x, int64_t K, int nch, int T, int t_pad,
                                      uint4* __restrict__ xq, float2* __restrict__ xd) {
  grid_dependency_sync();
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(nch) * t_pad) return;
  const int c = int(i / t_pad), t = int(i % t_pad);
  if (t >= T) {
    xq[2 * i] = xq[2 * i + 1] = make_uint4(0, 0, 0, 0);
    xd[i] = make_float2(0.f, 0.f);
    return;
  }
  quantize_chunk32(x + int64_t(t) * K + int64_t(c) * 32, xq[2 * i], xq[2 * i + 1], xd[i]);
}

// NT tiles of 8 tokens.
template <class S, bool kAsym, int NT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 2) gemm_mma_kernel(MmaArgs a) {
  extern __shared__ uint4 smem_raw[];
  char* const smem = reinterpret_cast<char*>(smem_raw);
  constexpr int kSP = scale_pitch<S>(), kStage = stage_bytes<S>();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  char* const mine = smem + warp * kStages * kStage;
  // Warps 0..ksplit-1 share the block's first tile, and so on; a block covers 8 / ksplit tiles.
  const int tiles_per_block = kWarpsPerBlock / a.ksplit;
  const int64_t row0 = (int64_t(blockIdx.x) * tiles_per_block + warp / a.ksplit) * kRows;
  const int c_begin = (warp % a.ksplit) * a.per_warp, c_end = min(c_begin + a.per_warp, a.nch);
  const int n_stages = c_end > c_begin ? (c_end - c_begin + kStageChunks - 1) / kStageChunks : 0;
  // Scale bytes per row and stage as stored (>= 4: the launcher checks), in 4-byte pieces.
  const int pieces = ((kStageChunks >> a.cpg_shift) * int(sizeof(S))) / 4;

  // Stage st of this warp into buffer st % kStages. Rows past the end repeat the last row (never stored);
  // chunks past the warp's range are not copied (their shared memory is read by ldmatrix, never used).
  auto issue = [&](int st) {
    char* buf = mine + (st % kStages) * kStage;
    const int c0 = c_begin + st * kStageChunks;
#pragma unroll
    for (int i = 0; i < kRows * kStageChunks / 32; ++i) {
      const int p = lane + 32 * i, r = p / kStageChunks, j = p % kStageChunks;
      if (c0 + j < c_end) {
        const int64_t row = min(row0 + r, a.rows - 1);
        cp_async16(buf + r * kRowPitch + j * 16, a.codes + (row * a.nch + c0 + j) * 16);
      }
    }
    const int g0 = c0 >> a.cpg_shift;
    for (int p = lane; p < kRows * pieces; p += 32) {
      const int r = p / pieces, k = p % pieces;
      const int gi = g0 + k * (4 / int(sizeof(S)));  // first group of the piece; groups per row is even for 2-byte S
      if (gi < a.groups) {
        const int64_t row = min(row0 + r, a.rows - 1);
        const int64_t off = (row * a.groups + gi) * int64_t(sizeof(S));
        char* dst = buf + kRows * kRowPitch + r * kSP + k * 4;
        cp_async4(dst, a.scales + off);
        if constexpr (kAsym) cp_async4(dst + kRows * kSP, a.zeros + off);
      }
    }
  };

  // The weights do not depend on earlier kernels: the first stages are requested before waiting for them.
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n_stages) issue(st);
    cp_async_commit();
  }
  grid_dependency_sync();

  float acc[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
  const int g = lane >> 2, t = lane & 3;
  // ldmatrix: lanes 8m..8m+7 address the rows of matrix m = {rows 0-7, rows 8-15} x {chunk j, chunk j+1}.
  const int lm_row = (lane & 7) + 8 * ((lane >> 3) & 1), lm_chunk = lane >> 4;

  for (int st = 0; st < n_stages; ++st) {
    if (st + kStages - 1 < n_stages) issue(st + kStages - 1);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncwarp();
    const char* buf = mine + (st % kStages) * kStage;
    const char* sc = buf + kRows * kRowPitch;
    const int c0 = c_begin + st * kStageChunks;
    const int nj = min(kStageChunks, c_end - c0);
#pragma unroll
    for (int jp = 0; jp < kStageChunks; jp += 2) {
      if (jp < nj) {
        uint32_t w[4];
        ldmatrix_x4(w, buf + lm_row * kRowPitch + (jp + lm_chunk) * 16);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int j = jp + h;
          if (j < nj) {
            constexpr uint32_t kLo = 0x0F0F0F0Fu;
            const uint32_t lo0 = w[2 * h] & kLo, lo1 = w[2 * h + 1] & kLo;
            const uint32_t hi0 = (w[2 * h] >> 4) & kLo, hi1 = (w[2 * h + 1] >> 4) & kLo;
            const int gj = j >> a.cpg_shift;
            const float s0 = smem_scale<S>(sc + g * kSP, gj), s1 = smem_scale<S>(sc + (g + 8) * kSP, gj);
            float z0 = 8.f, z1 = 8.f;
            if constexpr (kAsym) {
              z0 = smem_scale<S>(sc + (kRows + g) * kSP, gj);
              z1 = smem_scale<S>(sc + (kRows + g + 8) * kSP, gj);
            }
            const int64_t c = c0 + j;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              // Padding tokens (zeros in xq) are not loaded: at 1 token that is 7/8 of the x traffic.
              const uint2 b = n * 8 + g < a.T ? __ldg(a.xq + (c * NT + n) * 32 + lane) : make_uint2(0, 0);
              // {d, d sum q} of tokens 2t and 2t + 1
              const float4 d = n * 8 + 2 * t < a.T ? __ldg(a.xd + (c * NT + n) * 4 + t) : make_float4(0, 0, 0, 0);
              int r[4] = {0, 0, 0, 0};
              mma_u8s8(r, lo0, lo1, hi0, hi1, b.x, b.y);
              acc[n][0] = fmaf(s0, fmaf(d.x, float(r[0]), -z0 * d.y), acc[n][0]);
              acc[n][1] = fmaf(s0, fmaf(d.z, float(r[1]), -z0 * d.w), acc[n][1]);
              acc[n][2] = fmaf(s1, fmaf(d.x, float(r[2]), -z1 * d.y), acc[n][2]);
              acc[n][3] = fmaf(s1, fmaf(d.z, float(r[3]), -z1 * d.w), acc[n][3]);
            }
          }
        }
      }
    }
    __syncwarp();
  }
  cp_async_wait<0>();

  // Split-K sum over the warps of each tile; thread i of the block then owns output i of the block's
  // tiles_per_block x 16 x 8 NT outputs.
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);  // [warp][NT * 4][32]
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int k = 0; k < 4; ++k) red[(warp * NT * 4 + n * 4 + k) * 32 + lane] = acc[n][k];
  __syncthreads();
  for (int i = threadIdx.x; i < tiles_per_block * NT * 4 * 32; i += blockDim.x) {
    const int tile = i / (NT * 4 * 32), o = i % (NT * 4 * 32);
    float v = 0.f;
    for (int wp = tile * a.ksplit; wp < (tile + 1) * a.ksplit; ++wp) v += red[wp * NT * 4 * 32 + o];
    const int l = o & 31, n = (o >> 5) >> 2, k = (o >> 5) & 3;
    const int64_t row = (int64_t(blockIdx.x) * tiles_per_block + tile) * kRows + (l >> 2) + (k >= 2 ? 8 : 0);
    const int tok = n * 8 + 2 * (l & 3) + (k & 1);
    if (row < a.rows && tok < a.T) a.y[int64_t(tok) * a.rows + row] = v;
  }
}

int tiles(int T) { return T <= 8 ? 1 : T <= 16 ? 2 : 4; }

// Warps per 16-row tile: as few as keep about 16 warps per SM busy, so that each warp streams a long run
// of chunks (its pipeline hides the memory latency once, not per tile) and the warps of a block that
// work on different tiles share each activation load through L1. G4_CUDA_MMA_KSPLIT=1|2|4|8 forces it.
int ksplit_for(int64_t rows) {
  static const int forced = env_int("G4_CUDA_MMA_KSPLIT", 0);
  if (forced == 1 || forced == 2 || forced == 4 || forced == 8) return forced;
  static const int64_t want = [] {
    int dev = 0, n_sm = 0;
    G4_CUDA(cudaGetDevice(&dev));
    G4_CUDA(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    return int64_t(n_sm) * 16;
  }();
  const int64_t n_tiles = (rows + kRows - 1) / kRows;
  int ks = kWarpsPerBlock;
  while (ks > 1 && n_tiles * (ks / 2) >= want) ks /= 2;
  return ks;
}
int n_chunks(const WeightDesc& w) { return int(w.cols / 32); }

template <class S, bool kAsym, int NT>
void launch_mma(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s) {
  auto kernel = gemm_mma_kernel<S, kAsym, NT>;
  static const bool configured = [&] {
    G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<S>()));
    G4_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    return true;
  }();
  (void)configured;
  MmaArgs a;
  a.codes = static_cast<const char*>(w.codes);
  a.scales = static_cast<const char*>(w.scales);
  a.zeros = static_cast<const char*>(w.zeros);
  a.rows = w.rows;
  a.nch = n_chunks(w);
  a.groups = int(w.cols / w.group_size);
  a.cpg_shift = __builtin_ctz(unsigned(w.group_size / 32));
  a.ksplit = ksplit_for(w.rows);
  const int per = (a.nch + a.ksplit - 1) / a.ksplit;
  a.per_warp = (per + kStageChunks - 1) / kStageChunks * kStageChunks;
  const int t_pad = 8 * tiles(T);
  a.xq = static_cast<const uint2*>(xq);
  a.xd = reinterpret_cast<const float4*>(static_cast<const char*>(xq) + size_t(a.nch) * t_pad * 32);
  a.T = T;
  a.y = y;
  const int64_t rows_per_block = int64_t(kRows) * (kWarpsPerBlock / a.ksplit);
  launch(kernel, unsigned((w.rows + rows_per_block - 1) / rows_per_block), kWarpsPerBlock * 32,
         size_t(smem_bytes<S>()), s, a);
}

template <class S, bool kAsym>
void launch_mma_t(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s) {
  switch (tiles(T)) {
    case 1: launch_mma<S, kAsym, 1>(w, xq, T, y, s); break;
    case 2: launch_mma<S, kAsym, 2>(w, xq, T, y, s); break;
    default: launch_mma<S, kAsym, 4>(w, xq, T, y, s); break;
  }
}

}  // namespace

bool gemm_mma_supported(const WeightDesc& w) {
  if (w.fmt != WFmt::kInt4 || w.cols % 32 || w.group_size % 32 || w.group_size < 32) return false;
  const int64_t cpg = w.group_size / 32;
  if ((cpg & (cpg - 1)) || cpg > kStageChunks) return false;
  const int ssz = w.stype == SType::kF32 ? 4 : 2;
  // Scales are copied in aligned 4-byte pieces: at least 4 bytes per stage, whole pieces per row.
  return (kStageChunks / cpg) * ssz >= 4 && (w.cols / w.group_size) * ssz % 4 == 0;
}

int gemm_mma_min_tokens() {
  // From 10 tokens: a verify of up to 9 (draft 8 + 1, cuda's default) stays on the dp4a GEMV, whose sums
  // for each token are the one-token step's exactly, so greedy speculation gives plain greedy's tokens.
  // (This kernel sums in another order, and at 1-4 tokens it is slower than the GEMV: docs/PERF.md.)
  // G4_CUDA_MMA=0 turns it off (the GEMV groups then serve every T, for comparisons);
  // G4_CUDA_MMA_MIN_T moves the token count from which it replaces the GEMV.
  static const int n = env_int("G4_CUDA_MMA", 1) == 0 ? kMmaMaxT + 1 : std::max(1, env_int("G4_CUDA_MMA_MIN_T", 10));
  return n;
}

size_t gemm_mma_x_bytes(const WeightDesc& w, int T) {
  const size_t t_pad = size_t(8 * tiles(T));
  return size_t(n_chunks(w)) * t_pad * (32 + sizeof(float2));
}

void gemm_mma_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kMmaMaxT && gemm_mma_supported(w), "gemm_mma: int4 weight, 1..32 tokens");
  const int nch = n_chunks(w), t_pad = 8 * tiles(T);
  uint4* q = static_cast<uint4*>(xq);
  float2* d = reinterpret_cast<float2*>(static_cast<char*>(xq) + size_t(nch) * t_pad * 32);
  const int64_t n = int64_t(nch) * t_pad;
  launch(quantize_x_mma_kernel, unsigned((n + 127) / 128), 128, 0, s, x, w.cols, nch, T, t_pad, q, d);
  G4_CUDA_LAUNCHED();
}

void gemm_mma_quantized(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kMmaMaxT && gemm_mma_supported(w), "gemm_mma: int4 weight, 1..32 tokens");
  with_scale_layout(w, [&](auto L) { launch_mma_t<typename decltype(L)::Scale, decltype(L)::asym>(w, xq, T, y, s); });
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
