// Memory for large weight buffers (converted checkpoint blocks, packed weights): aligned, and from 2 MiB on on
// 2 MiB boundaries with transparent huge pages asked for, so that first touch faults 2 MiB at a time instead of
// 4 KiB (loading a 17 GB GGUF touched ~35 GB of fresh memory; at 4 KiB a page that was seconds of faults)
// and a decode GEMV streaming many rows at once misses the TLB less. Not zero-filled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace g4 {

void* bulk_alloc(size_t n);  // throws std::bad_alloc; n == 0 gives a valid pointer
void bulk_free(void* p) noexcept;

// std::vector's allocator over bulk_alloc whose resize leaves new elements uninitialized (every writer of a
// weight buffer writes each byte; `assign(n, 0)` still zero-fills).
template <class T>
struct BulkAllocator {
  using value_type = T;
  BulkAllocator() = default;
  template <class U>
  BulkAllocator(const BulkAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(bulk_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { bulk_free(p); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialization: no zero fill
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(static_cast<Args&&>(args)...);
  }
  template <class U>
  bool operator==(const BulkAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const BulkAllocator<U>&) const noexcept { return false; }
};

using BulkBytes = std::vector<uint8_t, BulkAllocator<uint8_t>>;

}  // namespace g4
