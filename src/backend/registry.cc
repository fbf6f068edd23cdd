// Maps backend names to constructors. New backends register here.
#include "backend/cpu/cpu_backend.h"
#include "backend/ref/ref_backend.h"
#include "base/error.h"

namespace g4 {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "ref") return std::make_unique<RefBackend>();
  if (name == "cpu") return std::make_unique<CpuBackend>();
  throw Error("unknown backend '" + name + "' (available: ref, cpu)");
}

}  // namespace g4
