// The CPU kernel table, one implementation per instruction set (generic C++; x86: avx2, avx512 (VNNI);
// AArch64: neon, neon-dot (dotprod)), picked once at start-up by CPU features, or by
// G4_CPU_ISA=<name> for tests and comparisons.
// Kernels work on a range of output rows so the backend's thread pool can split the work.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/cpu_weight.h"

namespace g4::cpu {

struct KernelTable {
  const char* name;
  // Quantizes token row t of x [T, cols] into a (a.resize done by the caller).
  void (*quantize_row)(const float* x, int64_t cols, QAct& a, int64_t t);
  // y[t, r] for r in [r0, r1), all t < a.T; y row stride ldy.
  void (*qgemm)(const QPacked& w, const QAct& a, float* y, int64_t ldy, int64_t r0, int64_t r1);
  // Dense weights against f32 activations x [T, cols] (row stride cols): y[t, r] for r in [r0, r1).
  void (*dgemm)(const DensePacked& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1);
  // sum_i a[i] * b[i] in f32 (attention scores) and y += s * x (attention values).
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*axpy_f32)(float s, const float* x, float* y, int64_t n);
  // out[i] = gelu_tanh(g[i]) * up[i] and x[i] = cap * tanh(x[i] / cap), i < n (vec_math.h on the SIMD tables).
  void (*gelu_mul)(const float* g, const float* up, float* out, int64_t n);
  void (*softcap)(float* x, int64_t n, float cap);
  // Attention in blocks (attn_blocks.h in every table). scores: out[i * ldo + j] = q[i] . k[j] for i < nq,
  // j < nk (rows of n values). values: o[i] += sum over j < nk, in order, of s[i * lds + j] * v[j]. Each
  // result is computed as for nq = nk = 1, so it does not depend on the block.
  void (*attn_scores)(const float* const* q, int64_t nq, const float* const* k, int64_t nk, int64_t n, float* out,
                      int64_t ldo);
  void (*attn_values)(const float* s, int64_t lds, int64_t nq, const float* const* v, int64_t nk, int64_t n,
                      float* const* o);
};

// G4_CPU_PREFETCH=BYTES (for comparisons): how far ahead along the weight stream the leading token group of a
// tile walk prefetches, overriding each table's own choice (kernel_loops.h walk_tiles); 0 turns it off. -1
// when unset. Read once.
int64_t prefetch_ahead_override();
// Whether the CPU is an AMD one (CPUID vendor "AuthenticAMD"; false off x86): the AVX-512 table prefetches
// along the weight stream there and not on Intel, as measured on each (kernels_avx512.cc).
bool cpu_is_amd();

const KernelTable& generic_kernels();
// Each is nullptr when not compiled in or not supported by this CPU.
const KernelTable* avx512_kernels();
const KernelTable* avx2_kernels();
const KernelTable* neon_kernels();
const KernelTable* neon_dot_kernels();
// The best table for this CPU, or the one named by G4_CPU_ISA (throws g4::Error for unknown/unsupported).
const KernelTable& select_kernels();
// Every table this CPU can run (tests run each against the reference).
std::vector<const KernelTable*> available_kernels();

}  // namespace g4::cpu
