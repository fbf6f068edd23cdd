// Maps backend names to constructors. New backends register here.
#include "backend/cpu/cpu_backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"
#ifdef G4_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace g4 {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "ref") return std::make_unique<RefBackend>();
  if (name == "cpu") return std::make_unique<CpuBackend>();
#ifdef G4_WITH_CUDA
  if (name == "cuda") return std::make_unique<CudaBackend>();
  throw Error("unknown backend '" + name + "' (available: ref, cpu, cuda)");
#else
  if (name == "cuda") throw Error("backend 'cuda' is not built in (configure with -DG4_CUDA=ON)");
  throw Error("unknown backend '" + name + "' (available: ref, cpu)");
#endif
}

}  // namespace g4
