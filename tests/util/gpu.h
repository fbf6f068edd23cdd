// Whether a test can use the GPU, and the switch that makes a GPU run strict: with G4_REQUIRE_GPU=1 in the
// environment, "no usable GPU" (no CUDA in this build, no device, a driver error) fails every CUDA test
// instead of skipping it, so a GPU run cannot be green with no CUDA test executed.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#ifdef G4_TEST_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace g4::testing_util {

inline bool gpu_required() {
  const char* e = std::getenv("G4_REQUIRE_GPU");
  return e != nullptr && std::string(e) == "1";
}

// Empty when this build has the CUDA backend and a device can be used; otherwise the reason.
inline std::string why_no_gpu() {
#ifdef G4_TEST_WITH_CUDA
  std::string why;
  if (cuda_device_available(&why)) return "";
  return why.empty() ? "no usable CUDA device" : why;
#else
  return "this build has no CUDA backend (configure with -DG4_CUDA=ON)";
#endif
}

}  // namespace g4::testing_util

// At the start of a CUDA test (or its fixture's SetUp): skip when no GPU can be used, or fail under
// G4_REQUIRE_GPU=1.
#define G4_SKIP_OR_FAIL_WITHOUT_GPU()                                                              \
  do {                                                                                             \
    const std::string g4_why_ = ::g4::testing_util::why_no_gpu();                                  \
    if (!g4_why_.empty()) {                                                                        \
      if (::g4::testing_util::gpu_required()) FAIL() << "G4_REQUIRE_GPU=1 but no GPU: " << g4_why_; \
      GTEST_SKIP() << "CUDA test skipped: " << g4_why_;                                            \
    }                                                                                              \
  } while (0)
