// int4 weights times a few tokens (a decode step of several sequences, a speculative verify) on the
// integer tensor cores: y[T, rows] = x[T, cols] W^T for 1 <= T <= kMmaMaxT.
//
// The dp4a GEMV (gemv_q8.cu) spends its instructions per (row, chunk, token) and re-reads x through L1 for
// every row group: at 4 tokens a step costs twice one token's. Here one mma.m16n8k32 multiplies 16 tokens
// (A: int8 activations) by 8 weight rows (B: u8 codes 0..15) over one 32-value chunk with int32 sums, so
// the work per weight byte hardly grows with T and the kernel stays bound by reading the weights once.
//
// Why the weights are the B operand: B's fragment is one code word per thread. Thread (g = lane / 4,
// t = lane % 4) holds, for weight row g, the k indices 4t..4t+3 and 16+4t..16+4t+3; the low nibbles of a
// chunk's code word t are its values 8t + {0, 2, 4, 6} and the high nibbles 8t + {1, 3, 5, 7}
// (q8_act.cuh), so with the activation words A(t), B(t) in the same k order the codes reach the mma
// without shared memory. A thread loads 16 bytes (chunk 4q + t of row g: a warp reads 8 rows x 64
// contiguous bytes), four shuffles within its group of 4 lanes transpose them (quad_transpose), and it
// holds word t of the 4 chunks 4q..4q+3 of row g: one mma's B each after masking the nibbles.
//
// Per chunk the mma's sum C is exact; each chunk lies in one group, so with w = s (q - z) and x ~ d q_x:
// sum(w x) = s (d C - z d sum(q_x)), accumulated in f32 per (token, row) over the warp's chunks in an
// order that does not depend on T: a token's result is the same whatever else is in the batch.
//
// Shape of the work, as in the dp4a GEMV: a warp owns R tiles of 8 rows, the KS warps of a block that
// share them take their quads (4 chunks) round-robin and meet in shared memory in a fixed order, and a
// grid of one resident wave strides over the blocks. x comes from gemm_mma_quantize_x: [chunk][token]
// 32 bytes (words A(0) B(0) .. A(3) B(3)) with T padded to a multiple of 8, and xd [chunk][token] =
// {d, d sum(q)}.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/mma_s8.cuh"
#include "backend/cuda/q8_act.cuh"

namespace g4::cuda {

namespace {

constexpr int kWarps = 8;  // per block
constexpr uint32_t kLo = 0x0F0F0F0Fu;

struct MmaArgs {
  const uint4* codes;
  const void* scales;
  const void* zeros;
  int64_t rows;
  int nch;        // 32-value chunks per row
  int groups;     // groups per row
  int cpg_shift;  // log2(chunks per group)
  int prefetch;   // 1: ask L2 for the first row tiles' codes before waiting for the previous kernel
  const uint2* xq;
  const float2* xd;
  int t_pad;
  int T;
  float* y;
};

// c += a (16 x 32 s8, row) * b (32 x 8 u8, col), int32.
__device__ __forceinline__ void mma_s8u8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A row's scale and zero point for one chunk as one lane holds them: both halves in one word (scale low),
// or two floats.
template <class S>
using SZ = std::conditional_t<sizeof(S) == 4, float2, uint32_t>;

template <class S, bool kAsym>
__device__ __forceinline__ SZ<S> load_sz(const void* scales, const void* zeros, int64_t i) {
  if constexpr (sizeof(S) == 4) {
    return make_float2(__ldg(static_cast<const float*>(scales) + i), kAsym ? __ldg(static_cast<const float*>(zeros) + i) : 8.f);
  } else {
    const uint32_t s = __ldg(static_cast<const unsigned short*>(scales) + i);
    return kAsym ? s | uint32_t(__ldg(static_cast<const unsigned short*>(zeros) + i)) << 16 : s;
  }
}

template <class S>
__device__ __forceinline__ SZ<S> shfl_sz(SZ<S> v, int src) {
  if constexpr (sizeof(S) == 4) return make_float2(__shfl_sync(0xffffffffu, v.x, src), __shfl_sync(0xffffffffu, v.y, src));
  else return __shfl_sync(0xffffffffu, v, src);
}

template <class S>
__device__ __forceinline__ float half_to_f32(uint32_t h) {
  if constexpr (std::is_same_v<S, __half>) return __half2float(__ushort_as_half((unsigned short)h));
  else return __uint_as_float(h << 16);  // bf16
}

// (scale, zero point) as floats; symmetric layouts have z = 8.
template <class S, bool kAsym>
__device__ __forceinline__ float2 unpack_sz(SZ<S> v) {
  if constexpr (sizeof(S) == 4) return v;
  else return make_float2(half_to_f32<S>(v & 0xFFFFu), kAsym ? half_to_f32<S>(v >> 16) : 8.f);
}

// NT8 groups of 8 tokens (1, 2 or 4): MT mma tiles of 16, the last one half empty when NT8 is odd. A warp
// takes U consecutive quads of its R tiles per round (U x R 16-byte loads a lane in flight, 64 U contiguous
// bytes of each row); lane 4i + j also loads the scale and zero point of row i, chunk j of each quad, and
// the lanes that apply them get them by shuffle (no lane holds another's copy).
template <class S, bool kAsym, int NT8, int R, int KS, int U>
__global__ void __launch_bounds__(kWarps * 32) gemm_mma_kernel(MmaArgs a) {
  static_assert(kWarps % KS == 0, "KS divides the block's warps");
  constexpr int MT = (NT8 + 1) / 2;
  constexpr bool kFullLast = NT8 % 2 == 0;
  constexpr int kGroupsPerBlock = kWarps / KS;
  constexpr int kOut = R * MT * 4;  // accumulators per thread
  __shared__ float red[KS > 1 ? kWarps : 1][KS > 1 ? kOut : 1][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ks = warp % KS;
  const int g = lane >> 2, t = lane & 3;
  const int64_t n_groups = (a.rows + 8 * R - 1) / (8 * R);
  const int64_t n_block_groups = (n_groups + kGroupsPerBlock - 1) / kGroupsPerBlock;
  const int nq = (a.nch + 3) / 4;

  if (a.prefetch && t == 0) {  // weights do not depend on earlier kernels (launch.cuh)
    const int64_t gi = int64_t(blockIdx.x) * kGroupsPerBlock + warp / KS;
    if (gi < n_groups) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint4* row = a.codes + min(gi * 8 * R + 8 * r + g, a.rows - 1) * a.nch;
        for (int q = ks * U; q < nq; q += KS * U) prefetch_l2(row + 4 * q);
      }
    }
  }
  grid_dependency_sync();

  for (int64_t bg = blockIdx.x; bg < n_block_groups; bg += gridDim.x) {
    const int64_t gi = bg * kGroupsPerBlock + warp / KS;
    const bool active = gi < n_groups;
    const int64_t row0 = gi * 8 * R;
    float acc[R][MT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[r][m][0] = acc[r][m][1] = acc[r][m][2] = acc[r][m][3] = 0.f;
    if (active) {
      const uint4* wr[R];
      int64_t sbase[R];  // first group of row 8r + g (this lane's scale row)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t row = min(row0 + 8 * r + g, a.rows - 1);
        wr[r] = a.codes + row * a.nch;
        sbase[r] = row * a.groups;
      }
      for (int q0 = ks * U; q0 < nq; q0 += KS * U) {
        uint4 w[U][R];
        SZ<S> sz[U][R];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int c = 4 * (q0 + u) + t;  // this lane's chunk: codes of row 8r + g, scale of row 8r + g
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const bool in = c < a.nch;
            w[u][r] = in ? ld_stream(wr[r] + c) : make_uint4(0, 0, 0, 0);
            sz[u][r] = in ? load_sz<S, kAsym>(a.scales, a.zeros, sbase[r] + (c >> a.cpg_shift)) : SZ<S>{};
          }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int c0 = 4 * (q0 + u);
          if (c0 >= a.nch) break;  // the same for the whole warp
#pragma unroll
          for (int r = 0; r < R; ++r) w[u][r] = quad_transpose(w[u][r], t);
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int64_t c = c0 + j;
            if (c >= a.nch) break;
            uint2 xa[MT], xb[MT];
            float2 da[MT], db[MT];
#pragma unroll
            for (int m = 0; m < MT; ++m) {
              const int64_t i = c * a.t_pad + 16 * m + g;
              xa[m] = __ldg(a.xq + i * 4 + t);
              da[m] = __ldg(a.xd + i);
              if (m + 1 < MT || kFullLast) {
                xb[m] = __ldg(a.xq + (i + 8) * 4 + t);
                db[m] = __ldg(a.xd + i + 8);
              } else {
                xb[m] = make_uint2(0, 0);
                db[m] = make_float2(0.f, 0.f);
              }
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
              const uint32_t wj = word(w[u][r], j);
              const uint32_t b0 = wj & kLo, b1 = (wj >> 4) & kLo;
              // Rows 2t and 2t + 1 of the tile, chunk j: held by lanes 4 (2t) + j and 4 (2t + 1) + j.
              const float2 p0 = unpack_sz<S, kAsym>(shfl_sz<S>(sz[u][r], 8 * t + j));
              const float2 p1 = unpack_sz<S, kAsym>(shfl_sz<S>(sz[u][r], 8 * t + 4 + j));
#pragma unroll
              for (int m = 0; m < MT; ++m) {
                int C[4] = {0, 0, 0, 0};
                mma_s8u8(C, xa[m].x, xb[m].x, xa[m].y, xb[m].y, b0, b1);
                // The dp4a GEMV's per-chunk arithmetic: s (d C - z d sum(q)).
                acc[r][m][0] = fmaf(p0.x, fmaf(da[m].x, small_int_to_float(C[0]), -(p0.y * da[m].y)), acc[r][m][0]);
                acc[r][m][1] = fmaf(p1.x, fmaf(da[m].x, small_int_to_float(C[1]), -(p1.y * da[m].y)), acc[r][m][1]);
                if (m + 1 < MT || kFullLast) {
                  acc[r][m][2] = fmaf(p0.x, fmaf(db[m].x, small_int_to_float(C[2]), -(p0.y * db[m].y)), acc[r][m][2]);
                  acc[r][m][3] = fmaf(p1.x, fmaf(db[m].x, small_int_to_float(C[3]), -(p1.y * db[m].y)), acc[r][m][3]);
                }
              }
            }
          }
        }
      }
    }
    // Thread (g, t) owns tokens 16m + g (+ 8) of rows row0 + 8r + 2t (+ 1).
    auto store = [&](int r, int m, int k, float v) {
      const int64_t row = row0 + 8 * r + 2 * t + (k & 1);
      const int tok = 16 * m + g + (k >= 2 ? 8 : 0);
      if (row < a.rows && tok < a.T) a.y[int64_t(tok) * a.rows + row] = v;
    };
    if constexpr (KS == 1) {
      if (active)
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int k = 0; k < 4; ++k) store(r, m, k, acc[r][m][k]);
    } else {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < MT; ++m)
#pragma unroll
          for (int k = 0; k < 4; ++k) red[warp][(r * MT + m) * 4 + k][lane] = acc[r][m][k];
      __syncthreads();
      if (active && ks == 0) {
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              float v = 0.f;
#pragma unroll
              for (int kk = 0; kk < KS; ++kk) v += red[warp + kk][(r * MT + m) * 4 + k][lane];
              store(r, m, k, v);
            }
      }
      __syncthreads();
    }
  }
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

int groups_of_8(int T) { return T <= 8 ? 1 : T <= 16 ? 2 : 4; }

// The kernel shape of a weight: R tiles of 8 rows a warp, KS warps splitting K, U quads a round. It depends
// on the weight only, never on T, so that each token's sums are the same at every batch size.
struct MmaShape {
  int R = 1, KS = 2, U = 2;
  bool operator==(const MmaShape& o) const { return R == o.R && KS == o.KS && U == o.U; }
};

MmaShape env_shape(const char* name, MmaShape fallback) {
  int v[3];
  if (!env_ints(name, v)) return fallback;
  return MmaShape{v[0], v[1], v[2]};
}

// From the sweep on the H200 (docs/PERF.md): one tile a warp, 2 quads a round, 4 warps splitting K, and 8 on
// launches of at most 8,192 rows (o, down: 5,376) so that the grid still fills the GPU.
// G4_CUDA_MMA_SHAPE / G4_CUDA_MMA_SHAPE_SHORT ("R,KS,U") select others for comparisons.
constexpr MmaShape kLong{1, 4, 2}, kShort{1, 8, 2};
MmaShape pick_shape(const WeightDesc& w, MmaTuning tu) {
  if (tu.rows_per_warp > 0) return MmaShape{tu.rows_per_warp, tu.ksplit > 0 ? tu.ksplit : 1, tu.quads > 0 ? tu.quads : 1};
  static const MmaShape all = env_shape("G4_CUDA_MMA_SHAPE", kLong);
  static const MmaShape shorts = env_shape("G4_CUDA_MMA_SHAPE_SHORT", kShort);
  return w.rows <= 8192 ? shorts : all;
}

template <class S, bool kAsym, int NT8, int R, int KS, int U>
void launch_mma(const WeightDesc& w, const void* xq, int T, float* y, int prefetch, cudaStream_t s) {
  auto kernel = gemm_mma_kernel<S, kAsym, NT8, R, KS, U>;
  static const int64_t resident = resident_blocks(kernel, kWarps * 32);
  MmaArgs a;
  a.codes = static_cast<const uint4*>(w.codes);
  a.scales = w.scales;
  a.zeros = w.zeros;
  a.rows = w.rows;
  a.nch = int4_chunks(w);
  a.groups = int(w.cols / w.group_size);
  a.cpg_shift = __builtin_ctz(unsigned(w.group_size / 32));
  a.prefetch = prefetch;
  a.t_pad = 8 * groups_of_8(T);
  a.xq = static_cast<const uint2*>(xq);
  a.xd = reinterpret_cast<const float2*>(static_cast<const char*>(xq) + size_t(a.nch) * size_t(a.t_pad) * 32);
  a.T = T;
  a.y = y;
  const int64_t n_groups = (w.rows + 8 * R - 1) / (8 * R);
  const int64_t blocks = stride_blocks_for(resident, (n_groups + kWarps / KS - 1) / (kWarps / KS), /*even=*/false);
  launch(kernel, unsigned(blocks), kWarps * 32, 0, s, a);
}

// The shapes: the two defaults on every layout and token count; the others (for the benchmark's sweep and
// the environment switches) on the layouts decode runs (g4's int4: bf16 scales with zero points; a Q4_0
// GGUF: f16 symmetric) up to 16 tokens.
template <class S, bool kAsym, int NT8>
void launch_mma_shape(const WeightDesc& w, const void* xq, int T, float* y, MmaShape v, int prefetch, cudaStream_t s) {
#define G4_MMA_SHAPE(R, KS, U) \
  if (v == MmaShape{R, KS, U}) return launch_mma<S, kAsym, NT8, R, KS, U>(w, xq, T, y, prefetch, s)
  G4_MMA_SHAPE(1, 4, 2);
  G4_MMA_SHAPE(1, 8, 2);
  constexpr bool kSwept = NT8 <= 2 && ((std::is_same_v<S, __nv_bfloat16> && kAsym) || (std::is_same_v<S, __half> && !kAsym));
  if constexpr (kSwept) {
    G4_MMA_SHAPE(1, 2, 2);
    G4_MMA_SHAPE(1, 4, 1);
    G4_MMA_SHAPE(1, 8, 1);
    G4_MMA_SHAPE(2, 2, 2);
    G4_MMA_SHAPE(1, 4, 4);
  }
#undef G4_MMA_SHAPE
  G4_CHECK(false, "gemm_mma: kernel shape R=" + std::to_string(v.R) + " KS=" + std::to_string(v.KS) + " U=" +
                      std::to_string(v.U) + " is not compiled for this layout and " + std::to_string(T) + " tokens");
}

template <class S, bool kAsym>
void launch_mma_t(const WeightDesc& w, const void* xq, int T, float* y, MmaTuning tu, cudaStream_t s) {
  const MmaShape v = pick_shape(w, tu);
  static const int env_prefetch = env_int("G4_CUDA_MMA_PREFETCH", 1);
  const int pf = tu.prefetch >= 0 ? tu.prefetch : env_prefetch;
  switch (groups_of_8(T)) {
    case 1: launch_mma_shape<S, kAsym, 1>(w, xq, T, y, v, pf, s); break;
    case 2: launch_mma_shape<S, kAsym, 2>(w, xq, T, y, v, pf, s); break;
    default: launch_mma_shape<S, kAsym, 4>(w, xq, T, y, v, pf, s); break;
  }
}

}  // namespace

bool gemm_mma_supported(const WeightDesc& w) {
  if (w.fmt != WFmt::kInt4 || w.cols % 32 || w.group_size % 32 || w.group_size < 32) return false;
  const int64_t cpg = w.group_size / 32;
  return (cpg & (cpg - 1)) == 0;
}

int gemm_mma_min_tokens() {
  // From 10 tokens, although it would be faster from 5 (docs/PERF.md, H200: 8 sequences 401 tok/s against 364
  // with the 8-token GEMV, two calls): it sums each token's exact per-chunk terms in another order than the
  // one-token GEMV, and in fast mode a last-bit difference flips some later int8 rounding of the activations
  // and moves logits by ~1e-2. Below 10 a decode step of up to 9 sequences and a verify of up to 9 tokens (draft 8 + 1, cuda's
  // default) compute each token bit for bit as its one-token step, so greedy speculation gives plain greedy's
  // tokens and a batch gives each sequence its solo logits. G4_CUDA_MMA_MIN_T=5 trades that for throughput;
  // G4_CUDA_MMA=0 turns the kernel off (the GEMV groups then serve every T, for comparisons).
  static const int n = env_int("G4_CUDA_MMA", 1) == 0 ? kMmaMaxT + 1 : std::max(1, env_int("G4_CUDA_MMA_MIN_T", 10));
  return n;
}

size_t gemm_mma_x_bytes(const WeightDesc& w, int T) {
  const size_t t_pad = size_t(8 * groups_of_8(T));
  return size_t(int4_chunks(w)) * t_pad * (32 + sizeof(float2));
}

void gemm_mma_quantize_x(const WeightDesc& w, const float* x, int T, void* xq, cudaStream_t s) {
  G4_CHECK(T >= 1 && T <= kMmaMaxT && gemm_mma_supported(w), "gemm_mma: int4 weight, 1..32 tokens");
  const int nch = int4_chunks(w), t_pad = 8 * groups_of_8(T);
  uint4* q = static_cast<uint4*>(xq);
  float2* d = reinterpret_cast<float2*>(static_cast<char*>(xq) + size_t(nch) * t_pad * 32);
  const int64_t n = int64_t(nch) * t_pad;
  launch(quantize_x_mma_kernel, unsigned((n + 127) / 128), 128, 0, s, x, w.cols, nch, T, t_pad, q, d);
  G4_CUDA_LAUNCHED();
}

void gemm_mma_quantized(const WeightDesc& w, const void* xq, int T, float* y, cudaStream_t s, MmaTuning tu) {
  G4_CHECK(T >= 1 && T <= kMmaMaxT && gemm_mma_supported(w), "gemm_mma: int4 weight, 1..32 tokens");
  with_scale_layout(w, [&](auto L) { launch_mma_t<typename decltype(L)::Scale, decltype(L)::asym>(w, xq, T, y, tu, s); });
  G4_CUDA_LAUNCHED();
}

}  // namespace g4::cuda
