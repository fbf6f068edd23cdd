#!/bin/sh
# Installs dependencies, builds g4 (release preset) and runs the whole test suite. Where nvcc is
# present, the CUDA backend is compiled too (preset cuda) and its tests run; without a GPU they skip.
set -e
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release -j "$(nproc)"
NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
if [ -n "$NVCC" ]; then
  echo "test.sh: $NVCC found; building the CUDA backend (preset cuda)"
  CUDACXX="$NVCC" cmake --preset cuda
  cmake --build --preset cuda -j "$(nproc)"
  ctest --preset cuda -j "$(nproc)" -R 'Cuda'
else
  echo "test.sh: nvcc not found; CUDA backend not built"
fi
