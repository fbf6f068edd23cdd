// Maps backend names to constructors, and picks the default one. New backends register here.
#include "backend/cpu/cpu_backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"
#ifdef G4_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace g4 {

std::vector<std::string> built_backends() {
#ifdef G4_WITH_CUDA
  return {"ref", "cpu", "cuda"};
#else
  return {"ref", "cpu"};
#endif
}

std::string default_backend_name() {
#ifdef G4_WITH_CUDA
  if (cuda_device_available(nullptr)) return "cuda";
#endif
  return "cpu";  // always built: its generic kernels run on any CPU, the SIMD ones where the CPU has them
}

std::string resolve_backend_name(const std::string& name) {
  return name.empty() || name == "auto" ? default_backend_name() : name;
}

std::unique_ptr<Backend> make_backend(const std::string& requested, int threads) {
  const std::string name = resolve_backend_name(requested);
  if (name == "ref") return std::make_unique<RefBackend>();
  if (name == "cpu") return std::make_unique<CpuBackend>(threads);
#ifdef G4_WITH_CUDA
  if (name == "cuda") return std::make_unique<CudaBackend>();
  throw Error("unknown backend '" + name + "' (available: auto, ref, cpu, cuda)");
#else
  if (name == "cuda") throw Error("backend 'cuda' is not built in (configure with -DG4_CUDA=ON)");
  throw Error("unknown backend '" + name + "' (available: auto, ref, cpu)");
#endif
}

}  // namespace g4
