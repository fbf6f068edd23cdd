// What one kernel boundary costs inside a replayed decode step, and what ways around it would save.
//
// A decode step alternates weight GEMVs (every SM streaming weights) with one-block row kernels (the
// residual + norms between them), all launched with PDL (launch.cuh). A row kernel can only start its work
// when griddepcontrol.wait releases it: after the GEMV's whole grid has completed and its writes are
// flushed. This benchmark times a chain of GEMV-like producers (each block streams its share of a large
// weight buffer and writes one value a warp), 240 a graph, as kernels in these forms:
//   alone    the producers only (the floor: their bytes over bandwidth plus their own boundaries);
//   wait     each followed by a one-block consumer that waits with griddepcontrol.wait, then reads the
//            producer's outputs and does two block reductions (a norm's shape), as g4 does today;
//   flag     the same consumer, but released by a counter the producer's blocks raise after their writes
//            (fence, then atomicAdd), not by the grid's completion; it lets its dependent launch at once;
//   last     no consumer kernel: the producer's last block to finish (the counter again) does its work.
// and as one persistent kernel whose blocks meet at a grid barrier (an atomic count) instead of a kernel
// boundary, what a whole-step kernel would save:
//   persist        the producers' phases separated by grid barriers;
//   persist+stage  the same, each block copying its first `stage` KB of the next phase into shared memory
//                  (cp.async) before it waits at the barrier, so the next phase starts with them in flight;
//   persist+row    a one-block row phase (the consumer's work) between the phases, two barriers each, the
//                  other blocks staging the next phase meanwhile (the decode step's GEMV, norm, GEMV).
// Usage: cuda_boundary_bench [MB a producer reads, default 24,64] [replays, default 20] [stage KB, default 64]
// Prints microseconds per producer for each form; the differences from `alone` are what a boundary costs.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/load.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/smem_async.cuh"
#include "cuda_bench_util.cuh"

using namespace g4::cuda;

namespace {

constexpr int kThreads = 256;
enum Mode { kAlone = 0, kWait = 1, kFlag = 2, kLast = 3 };

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// A norm's shape over the producer's n outputs: sum of squares, a second pass over the scaled values.
__device__ void consume(const float* out, int n, float* result) {
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s = fmaf(out[i], out[i], s);
  const float inv = rsqrtf(block_sum(s) / float(n) + 1e-6f);
  float s2 = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s2 += out[i] * inv;
  s2 = block_sum(s2);
  if (threadIdx.x == 0) *result = s2;
}

__global__ void __launch_bounds__(kThreads) producer(const uint4* w, int64_t per_block, float* out, unsigned* counter,
                                                     int mode, float* result) {
  grid_dependency_sync();
  const uint4* p = w + blockIdx.x * per_block;
  uint32_t acc = 0;
#pragma unroll 8
  for (int64_t i = threadIdx.x; i < per_block; i += kThreads) {
    const uint4 v = ld_stream(p + i);
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
  const float f = warp_sum(float(acc & 0xff));
  if ((threadIdx.x & 31) == 0) out[blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5)] = f;
  if (mode != kFlag && mode != kLast) return;
  __shared__ bool last;
  __syncthreads();  // the block's writes are issued
  if (threadIdx.x == 0) {
    __threadfence();
    last = atomicAdd(counter, 1u) == gridDim.x - 1;
  }
  if (mode == kFlag) return;
  __syncthreads();
  if (!last) return;
  __threadfence();
  consume(out, int(gridDim.x) * (kThreads / 32), result);
  if (threadIdx.x == 0) *counter = 0;
}

// All blocks of the grid (resident together) meet: the last to arrive resets the count and moves the
// generation on; the others spin on it.
__device__ void grid_barrier(unsigned* count, unsigned* gen) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned g = load_acquire(gen);
    __threadfence();
    if (atomicAdd(count, 1u) == gridDim.x - 1) {
      *count = 0;
      __threadfence();
      atomicAdd(gen, 1u);
    } else {
      while (load_acquire(gen) == g) {
      }
    }
  }
  __syncthreads();
}

// A block's share of phase i: stream it (its first `staged` uint4s come from shared memory, copied there
// before the barrier), one value a warp to out.
__device__ void stream_share(const uint4* p, int64_t per_block, const uint4* staged_smem, int64_t staged,
                             float* out) {
  uint32_t acc = 0;
  for (int64_t i = threadIdx.x; i < staged; i += kThreads) {
    const uint4 v = staged_smem[i];
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
#pragma unroll 8
  for (int64_t i = staged + threadIdx.x; i < per_block; i += kThreads) {
    const uint4 v = ld_stream(p + i);
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
  const float f = warp_sum(float(acc & 0xff));
  if ((threadIdx.x & 31) == 0) out[blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5)] = f;
}

// Copies a block's first n uint4s of a phase to shared memory, one commit group.
__device__ void stage_share(const uint4* p, int64_t n, uint4* smem) {
  for (int64_t i = threadIdx.x; i < n; i += kThreads) cp_async<16>(smem_addr(smem + i), p + i);
  cp_async_commit();
}

enum Persist { kPersist = 0, kPersistStage = 1, kPersistRow = 2 };

// The whole chain as one kernel: phases of `per_block` uint4s a block at w + (i % slots) * stride.
__global__ void __launch_bounds__(kThreads) persistent(const uint4* w, int64_t per_block, int64_t stride, int64_t slots,
                                                       int chain, int64_t stage, int mode, float* out, float* result,
                                                       unsigned* count, unsigned* gen) {
  grid_dependency_sync();  // (the graph's only kernel: nothing to wait for)
  extern __shared__ uint4 staged_smem[];
  const int64_t staged = mode == kPersist ? 0 : stage;
  const uint4* first = w + blockIdx.x * per_block;
  if (staged) {
    stage_share(first, staged, staged_smem);
    cp_async_wait<0>();
    __syncthreads();
  }
  for (int i = 0; i < chain; ++i) {
    const uint4* p = w + (i % slots) * stride + blockIdx.x * per_block;
    stream_share(p, per_block, staged_smem, staged, out);
    const uint4* next = w + ((i + 1) % slots) * stride + blockIdx.x * per_block;
    __syncthreads();  // every thread is done reading the staged copy
    if (mode == kPersistRow) {
      grid_barrier(count, gen);  // the outputs are complete
      if (blockIdx.x == 0) consume(out, int(gridDim.x) * (kThreads / 32), result);
      else stage_share(next, staged, staged_smem);
      grid_barrier(count, gen);  // the row is complete
      if (blockIdx.x == 0) stage_share(next, staged, staged_smem);
    } else {
      if (staged) stage_share(next, staged, staged_smem);
      grid_barrier(count, gen);
    }
    if (staged) {
      cp_async_wait<0>();
      __syncthreads();
    }
  }
}

__global__ void __launch_bounds__(512) consumer(const float* out, int n, float* result, unsigned* counter,
                                                unsigned expect, int mode) {
  if (mode == kWait) {
    grid_dependency_sync();
  } else {
    if (threadIdx.x == 0) {
      while (load_acquire(counter) < expect) {
      }
      *counter = 0;  // the next producer raises it only after this kernel completes (its own wait)
    }
    __syncthreads();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  }
  consume(out, n, result);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes_mb = {24, 64};
  if (argc > 1) {
    sizes_mb.clear();
    for (const char* p = argv[1]; *p;) {
      sizes_mb.push_back(std::atoi(p));
      while (*p && *p != ',') ++p;
      if (*p == ',') ++p;
    }
  }
  const int replays = argc > 2 ? std::atoi(argv[2]) : 20;
  const int stage_kb = argc > 3 ? std::atoi(argv[3]) : 64;
  int dev = 0, sms = 0;
  G4_CUDA(cudaGetDevice(&dev));
  G4_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop{};
  G4_CUDA(cudaGetDeviceProperties(&prop, dev));
  const double bw = copy_bandwidth();
  std::printf("%s, %d SMs, copy bandwidth %.0f GB/s, PDL %s\n", prop.name, sms, bw / 1e9, pdl_enabled() ? "on" : "off");

  const int kChain = 240;     // producers a graph (a decode step has 241 GEMVs)
  const int blocks = 2 * sms;  // one resident wave, as the decode GEMVs launch
  const size_t pool = size_t(4) << 30;  // the producers walk 4 GiB, so L2 holds none of a producer's bytes
  uint4* w = nullptr;
  float *out = nullptr, *result = nullptr;
  unsigned* counter = nullptr;
  G4_CUDA(cudaMalloc(&w, pool));
  G4_CUDA(cudaMemset(w, 1, pool));
  G4_CUDA(cudaMalloc(&out, size_t(blocks) * (kThreads / 32) * sizeof(float)));
  G4_CUDA(cudaMalloc(&result, sizeof(float)));
  G4_CUDA(cudaMalloc(&counter, 3 * sizeof(unsigned)));  // the producers' count, the barrier's count and generation
  G4_CUDA(cudaMemset(counter, 0, 3 * sizeof(unsigned)));
  const size_t stage_bytes = size_t(stage_kb) << 10;
  G4_CUDA(cudaFuncSetAttribute(persistent, cudaFuncAttributeMaxDynamicSharedMemorySize, int(stage_bytes)));
  int per_sm = 0;
  G4_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent, kThreads, stage_bytes));
  if (per_sm * sms < blocks) {
    std::fprintf(stderr, "cuda_boundary_bench: %d KB staged leaves %d blocks an SM; the persistent forms need 2\n",
                 stage_kb, per_sm);
    return 1;
  }
  cudaStream_t s;
  G4_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const char* names[] = {"alone", "wait", "flag", "last", "persist", "persist+stage", "persist+row"};
  for (int mb : sizes_mb) {
    const int64_t per_block = (int64_t(mb) << 20) / 16 / blocks;
    const int64_t stride = per_block * blocks;
    const int64_t slots = int64_t(pool / 16) / stride;
    const int64_t stage = std::min<int64_t>(int64_t(stage_bytes / 16), per_block);
    float us[7] = {};
    for (int round = 0; round < 2; ++round)
      for (int mode = 0; mode < 7; ++mode) {
        cudaGraph_t graph;
        G4_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        if (mode >= 4) {
          launch(persistent, blocks, kThreads, mode == 4 ? 0 : stage_bytes, s, static_cast<const uint4*>(w), per_block,
                 stride, slots, kChain, stage, mode - 4, out, result, counter + 1, counter + 2);
        }
        for (int i = 0; i < kChain && mode < 4; ++i) {
          launch(producer, blocks, kThreads, 0, s, w + (i % slots) * stride, per_block, out, counter, mode, result);
          if (mode == kWait || mode == kFlag)
            launch(consumer, 1, 512, 0, s, static_cast<const float*>(out), blocks * (kThreads / 32), result, counter,
                   unsigned(blocks), mode);
        }
        G4_CUDA(cudaStreamEndCapture(s, &graph));
        cudaGraphExec_t exec;
        G4_CUDA(cudaGraphInstantiate(&exec, graph, 0));
        const float ms = graph_ms(exec, s, replays);
        us[mode] = ms * 1e3f / float(replays * kChain);
        std::printf("%3d MB a producer, round %d: %-13s %7.2f us a producer (%5.1f%% of copy bandwidth)", mb,
                    round + 1, names[mode], us[mode], 100.0 * double(mb << 20) / (us[mode] * 1e-6) / bw);
        if (mode) std::printf("  %+.2f us against alone", us[mode] - us[0]);
        std::printf("\n");
        G4_CUDA(cudaGraphExecDestroy(exec));
        G4_CUDA(cudaGraphDestroy(graph));
      }
  }
  return 0;
}
