#!/bin/sh
# Installs g4's build and test dependencies from Debian packages (Debian 12). Idempotent.
set -e
PKGS="build-essential cmake ninja-build nlohmann-json3-dev libcli11-dev libgtest-dev googletest clang libfuzzer-14-dev libclang-rt-14-dev libcpp-httplib-dev pkg-config"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
