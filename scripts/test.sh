#!/bin/sh
# Installs dependencies, builds g4 and runs the whole test suite: the release build's tests, the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, every fuzz target for 30 s, and, where nvcc
# is present, the CUDA backend (with a GPU: built and tested; without one: its library compiled, a compile
# check), and the CPU kernel tests cross-compiled for AArch64 and run under qemu-user
# (scripts/test-arm.sh), and the x86 kernel tests under qemu-user as CPUs without AVX-512 / AVX2
# (scripts/test-x86-isa.sh). Each phase prints its start time; a test running past 15 minutes fails
# (a hang names itself instead of using up the CI's time).
# --quick runs only the release tests (for day-to-day development).
set -e
cd "$(dirname "$0")/.."
phase() { echo "test.sh: $(date -u +%H:%M:%S) $*"; }
phase "dependencies"
./scripts/install-deps.sh
JOBS="$(nproc)"
./scripts/fetch-test-tokenizer.sh
npm ci --prefix tests/openai --no-audit --no-fund --silent  # the openai client for tests/openai
phase "release build"
cmake --preset release
cmake --build --preset release -j "$JOBS"
phase "release tests"
ctest --preset release -j "$JOBS" --timeout 900
[ "$1" = "--quick" ] && exit 0

phase "aarch64 kernel tests"
JOBS="$JOBS" ./scripts/test-arm.sh
phase "x86 kernel tables under qemu"
./scripts/test-x86-isa.sh build/release  # x86 kernel tables this CPU lacks, under qemu-user

NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
if [ -n "$NVCC" ]; then
  if nvidia-smi -L >/dev/null 2>&1; then
    # With a GPU, "no usable GPU" fails every CUDA test instead of skipping it (tests/util/gpu.h).
    phase "$NVCC and a GPU found: the CUDA backend's build (sm_80, sm_90) and tests"
    CUDACXX="$NVCC" cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="80;90"
    # Only what the CUDA tests (-R Cuda) run: g4 and the two test binaries that hold them.
    cmake --build --preset cuda -j "$JOBS" --target g4 test_backend_cuda test_cli
    G4_REQUIRE_GPU=1 ctest --preset cuda -j "$JOBS" -R 'Cuda' --timeout 900
  else
    # Without one the CUDA tests could only skip: the CUDA backend's library is compiled for sm_90 (every
    # kernel and its host code), not the CPU code, g4 and the test binaries a second time.
    phase "$NVCC found, no GPU: compile check of the CUDA backend (sm_90)"
    CUDACXX="$NVCC" cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES=90
    cmake --build --preset cuda -j "$JOBS" --target g4_backend_cuda
  fi
else
  echo "test.sh: nvcc not found; CUDA backend not built"
fi

phase "asan build"
cmake --preset asan
cmake --build --preset asan -j "$JOBS"
phase "asan tests"
# Three long statistical / end-to-end runs of code the other tests cover under ASan too are left to the release
# phase: they take minutes each here (n-gram speculation over the sliding window: 58 s release, 276 s ASan on
# the AVX2 EPYC box; the draft-position sampling distributions: 37 s release, several minutes ASan; the shipped
# assistant's 2,600 greedy tokens on cpu: 28 s release, 118 s ASan on the Xeon dev box, the longest ASan test,
# whose drafter and rollback AssistantDrafter.* and ServerDraft.* run under ASan).
ctest --preset asan -j "$JOBS" --timeout 900 \
  -E '^(SpeculativeGreedy.NgramEqualsPlainOverTheSlidingWindowCpu|SpeculativeSampling.TokenDistributionEqualsTheTargetsAtEveryDraftPosition|Backends/ShippedAssistant.GreedyOver2600TokensIsPlainGreedy/"cpu")$'

phase "fuzz"
./fuzz/run.sh 30
phase "done"
