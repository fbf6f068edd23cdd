#!/bin/sh
# Runs the CPU kernel tests (tests/backend_cpu: kernel tables, quantized and dense matmuls, ops) under
# qemu-user as x86-64 CPUs with fewer instruction sets than this machine, so every table the compiler
# builds runs on every box that can emulate it: Haswell (AVX2 + FMA + F16C, no AVX-512: tables generic,
# avx2) and Nehalem (SSE4.2 only: table generic). AVX-512 cannot be emulated this way (qemu's TCG
# implements up to AVX2; Intel SDE is not in Debian): the avx512 table runs natively where the CPU has
# AVX-512 VNNI, and the test output says when it was skipped.
# Usage: scripts/test-x86-isa.sh [BUILD_DIR]   (default build/release, built already)
set -e
cd "$(dirname "$0")/.."
command -v qemu-x86_64 >/dev/null 2>&1 || { echo "test-x86-isa.sh: qemu-x86_64 not found (run scripts/install-deps.sh)"; exit 1; }
BIN="${1:-build/release}/tests/backend_cpu/test_backend_cpu"
[ -x "$BIN" ] || { echo "test-x86-isa.sh: $BIN not built"; exit 1; }
FILTER='CpuKernels.*:CpuMatmul.*:CpuOps.*'
run() {  # run QEMU_CPU CPU_FLAGS EXPECTED_TABLES
  out="$(G4_TEST_CPU_FLAGS="$2" qemu-x86_64 -cpu "$1" "$BIN" --gtest_filter="$FILTER" 2>&1)" ||
    { echo "$out"; echo "test-x86-isa.sh: FAILED on $1"; exit 1; }
  tables="$(echo "$out" | sed -n 's/^kernel tables: //p')"
  if [ "$tables" != "$3" ]; then
    echo "$out" | tail -20; echo "test-x86-isa.sh: on $1 expected kernel tables '$3', got '$tables'"; exit 1
  fi
  echo "test-x86-isa.sh: $1: $(echo "$out" | grep -E '^\[  PASSED  \]') (tables: $tables)"
  echo "$out" | grep -E '^kernel tables skipped|^\[ note \]' | sed "s/^/test-x86-isa.sh: $1: /"
}
run Haswell-v4 "sse4_2 avx avx2 fma f16c" "generic avx2"
run Nehalem-v2 "sse4_2" "generic"
