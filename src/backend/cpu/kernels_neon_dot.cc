// The NEON dot-product kernel table (armv8.2-a dotprod: Apple M1+, Graviton 2+, Cortex-A76+), only handed
// out after kernels_generic.cc saw HWCAP_ASIMDDP. With GCC the ISA is raised by a pragma placed after
// every header, so only the kernels below (not inline library code that the linker may share with other
// files) can contain v8.2 instructions; clang builds get -march from CMake instead.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif

#define G4_NEON_DOT 1
#include "backend/cpu/kernels_neon_impl.h"

namespace g4::cpu {

const KernelTable* neon_dot_table() {
  static const KernelTable t{"neon-dot", quantize_row_neon, qgemm_neon, dgemm_neon, dot_neon, axpy_neon,
                             gelu_mul_neon, softcap_neon, attn_scores_neon, attn_values_neon};
  return &t;
}

}  // namespace g4::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
