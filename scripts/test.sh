#!/bin/sh
# Installs dependencies, builds g4 (release preset) and runs the whole test suite.
set -e
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/fetch-test-tokenizer.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release -j "$(nproc)"
