#!/usr/bin/env bash
# Installs every Debian 12 package Cairn builds, tests and benchmarks with. Run as root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi
packages=(
  build-essential cmake ninja-build pkg-config git
  libfuse3-dev fuse3 librocksdb-dev liburing-dev libcurl4-openssl-dev libssl-dev libisal-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  clang-format jq util-linux coreutils procps kmod
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# FUSE needs its device; load the module where the kernel has it as one.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
if [ ! -e /dev/fuse ]; then
  echo "install-deps.sh: /dev/fuse is missing; Cairn needs FUSE" >&2
  exit 1
fi
