#!/bin/sh
# Cross-compiles the CPU backend's kernel tests for AArch64 (preset aarch64: base, quant, backend and
# tests/backend_cpu's matmul/ops tests, GoogleTest built from /usr/src/googletest) and runs them under
# qemu-user twice: as a CPU with the dot-product extension (qemu's "max": tables generic, neon, neon-dot)
# and as a Cortex-A53 without it (generic, neon), so both NEON paths and the HWCAP selection are tested.
set -e
cd "$(dirname "$0")/.."
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test-arm.sh: $tool not found (run scripts/install-deps.sh)"; exit 1; }
done
JOBS="${JOBS:-$(nproc)}"
cmake --preset aarch64 >/dev/null
cmake --build --preset aarch64 -j "$JOBS"
BIN=build/aarch64/test_cpu_kernels
run() {  # run QEMU_CPU EXPECTED_TABLES
  out="$(QEMU_CPU="$1" qemu-aarch64 -L /usr/aarch64-linux-gnu "$BIN" 2>&1)" || { echo "$out"; echo "test-arm.sh: FAILED on $1"; exit 1; }
  tables="$(echo "$out" | sed -n 's/^kernel tables: //p')"
  if [ "$tables" != "$2" ]; then
    echo "test-arm.sh: on $1 expected kernel tables '$2', got '$tables'"; exit 1
  fi
  echo "test-arm.sh: $1: $(echo "$out" | grep -E '^\[  PASSED  \]') (tables: $tables)"
}
run max "generic neon neon-dot"
run cortex-a53 "generic neon"
