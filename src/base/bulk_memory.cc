#include "base/bulk_memory.h"

#include <sys/mman.h>

#include <cstdlib>

namespace g4 {

void* bulk_alloc(size_t n) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t align = n >= kHuge ? kHuge : 64;
  const size_t rounded = n == 0 ? align : (n + align - 1) / align * align;
  if (rounded < n) throw std::bad_alloc();
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
  if (align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#endif
  return p;
}

void bulk_free(void* p) noexcept { std::free(p); }

}  // namespace g4
