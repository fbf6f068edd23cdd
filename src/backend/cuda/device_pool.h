// A caching allocator for device memory. The forward pass asks for the same few activation shapes
// every step; cudaMalloc/cudaFree would synchronise the device each time. Blocks go back to a free
// list keyed by size; since all work runs on one stream, a block freed on the host can be handed out
// again at once: every later use is enqueued after every earlier one.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace g4::cuda {

class DevicePool {
 public:
  ~DevicePool();
  void* get(size_t bytes);
  void put(void* p, size_t bytes);
  void release_cached();  // frees every cached block (synchronises the device)

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
};

inline size_t pool_round(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace g4::cuda
