#!/usr/bin/env bash
# Installs what Cairn needs, builds it, and runs the whole test suite (unit, integration against
# a real FUSE mount, crash), then the unit tests again under ASan/UBSan. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-format.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2 --timeout 900)
if [ "${CAIRN_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON \
    -DCAIRN_BUILD_BENCH=OFF >/dev/null
  ninja -C build-asan common_test kv_test meta_test data_test fs_test
  (cd build-asan && ctest --output-on-failure -j2 -L unit)
fi
