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
# The Python package, its extension built for the device's python3 when PY_INCLUDE names that
# Python's include directory (e.g. a python3.12 build's include/python3.12).
if [ -n "${PY_INCLUDE:-}" ]; then
  mkdir -p gpu-bundle/python/cairn
  cp python/cairn/__init__.py gpu-bundle/python/cairn/
  tag=$(basename "$PY_INCLUDE" | sed 's/^python//; s/\.//')
  g++ -O2 -shared -fPIC -std=c++23 -fvisibility=hidden -DFMT_SHARED -Iinclude -Isrc -I"$PY_INCLUDE" \
    -isystem /usr/include/postgresql -isystem /usr/include/fuse3 src/python/cairn_module.cc \
    -o "gpu-bundle/python/cairn/_cairn.cpython-${tag}-x86_64-linux-gnu.so" \
    "$build"/src/libcairn_{client,server,fuse,fs,snap,tier,data,meta,kv,common}.a \
    -lfmt -lisal -lrocksdb -lpq -lrados -lcurl -lcrypto -lfuse3 -lpthread
  strip --strip-unneeded gpu-bundle/python/cairn/*.so
fi
tar cJf gpu-bundle.tar.xz -C gpu-bundle .
rm -rf gpu-bundle
ls -la gpu-bundle.tar.xz
