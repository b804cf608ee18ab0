#!/usr/bin/env bash
# gpu_bundle.sh: packs what the device machine (no package registry) needs to mount Cairn: the
# stripped `cairn` binary and the shared libraries it links (all but glibc and the C++ runtime,
# which the device has), as gpu-bundle.tar.xz in the repository root (git-ignored; carry it).
# bench/gpu_run.sh unpacks it there. Usage: bash bench/gpu_bundle.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rm -rf gpu-bundle gpu-bundle.tar.xz
mkdir -p gpu-bundle/lib
cp "$build/src/cairn" gpu-bundle/cairn
strip gpu-bundle/cairn
ldd "$build/src/cairn" | awk '/=>/ {print $3}' |
  grep -v -E '/lib(c|m|pthread|dl|rt|gcc_s|stdc\+\+)\.so|ld-linux' | xargs -I{} cp -L {} gpu-bundle/lib/
tar cJf gpu-bundle.tar.xz -C gpu-bundle .
rm -rf gpu-bundle
ls -la gpu-bundle.tar.xz
