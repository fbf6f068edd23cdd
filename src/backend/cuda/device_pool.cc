#include "backend/cuda/device_pool.h"

#include "backend/cuda/cuda_check.h"

namespace g4::cuda {

DevicePool::~DevicePool() {
  for (auto& [size, v] : free_)
    for (void* p : v) cudaFree(p);  // no throwing from a destructor; errors here are moot
}

void* DevicePool::get(size_t bytes) {
  bytes = pool_round(bytes ? bytes : 1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    release_cached();
    e = cudaMalloc(&p, bytes);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error("CUDA: cannot allocate " + std::to_string(bytes >> 20) + " MiB of device memory (" +
                std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) + "): " +
                cudaGetErrorString(e));
  }
  return p;
}

void DevicePool::put(void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_[pool_round(bytes ? bytes : 1)].push_back(p);
}

void DevicePool::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  G4_CUDA(cudaDeviceSynchronize());
  for (auto& [size, v] : free_)
    for (void* p : v) G4_CUDA(cudaFree(p));
  free_.clear();
}

}  // namespace g4::cuda
