// The baseline NEON kernel table (any AArch64 CPU): kernels_neon_impl.h with smull-based dot products.
#define G4_NEON_DOT 0
#include "backend/cpu/kernels_neon_impl.h"

namespace g4::cpu {

const KernelTable* neon_table() {
  static const KernelTable t{"neon", quantize_row_neon, qgemm_neon, dgemm_neon, dot_neon, axpy_neon,
                             gelu_mul_neon, softcap_neon, attn_scores_neon, attn_values_neon};
  return &t;
}

}  // namespace g4::cpu
