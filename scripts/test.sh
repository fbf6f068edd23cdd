#!/bin/sh
# Installs dependencies, builds g4 and runs the whole test suite: the release build's tests, the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzz target for 60 s.
# --quick runs only the release tests (for day-to-day development).
set -e
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS="$(nproc)"
cmake --preset release
cmake --build --preset release -j "$JOBS"
ctest --preset release -j "$JOBS"
[ "$1" = "--quick" ] && exit 0
cmake --preset asan
cmake --build --preset asan -j "$JOBS"
ctest --preset asan -j "$JOBS"
./fuzz/run.sh 60
