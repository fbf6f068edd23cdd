#!/bin/sh
# Installs dependencies, builds g4 and runs the whole test suite: the release build's tests, the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, every fuzz target for 45 s, and, where nvcc
# is present, the CUDA backend's build and tests (they skip without a GPU), and the CPU kernel tests
# cross-compiled for AArch64 and run under qemu-user (scripts/test-arm.sh), and the x86 kernel tests under
# qemu-user as CPUs without AVX-512 / AVX2 (scripts/test-x86-isa.sh).
# --quick runs only the release tests (for day-to-day development).
set -e
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS="$(nproc)"
./scripts/fetch-test-tokenizer.sh
npm ci --prefix tests/openai --no-audit --no-fund --silent  # the openai client for tests/openai
cmake --preset release
cmake --build --preset release -j "$JOBS"
ctest --preset release -j "$JOBS"
[ "$1" = "--quick" ] && exit 0

JOBS="$JOBS" ./scripts/test-arm.sh
./scripts/test-x86-isa.sh build/release  # x86 kernel tables this CPU lacks, under qemu-user

NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
if [ -n "$NVCC" ]; then
  echo "test.sh: $NVCC found; building the CUDA backend (preset cuda)"
  # Where a GPU is visible, "no usable GPU" fails every CUDA test instead of skipping it (tests/util/gpu.h),
  # and the build covers sm_80 and sm_90; without one the build is a compile check for sm_90 alone.
  REQUIRE=0; ARCHS=90; nvidia-smi -L >/dev/null 2>&1 && REQUIRE=1 && ARCHS="80;90"
  CUDACXX="$NVCC" cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="$ARCHS"
  # Only what the CUDA tests (-R Cuda) run: g4 and the two test binaries that hold them.
  cmake --build --preset cuda -j "$JOBS" --target g4 test_backend_cuda test_cli
  G4_REQUIRE_GPU=$REQUIRE ctest --preset cuda -j "$JOBS" -R 'Cuda'
else
  echo "test.sh: nvcc not found; CUDA backend not built"
fi

cmake --preset asan
cmake --build --preset asan -j "$JOBS"
ctest --preset asan -j "$JOBS"
./fuzz/run.sh 45
