#!/usr/bin/env bash
# Installs what Cairn needs, builds it, and runs the whole test suite (unit, integration against
# a real FUSE mount, crash), then the unit tests and the mount's integration tests again under
# ASan/UBSan. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-format.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2 --timeout 900)
# The mount's suites again on the other FUSE transport, /dev/fuse (io_uring, the default, served
# them above).
(cd build && CAIRN_FUSE_TRANSPORT=dev ctest --output-on-failure -j2 --timeout 900 \
  -L integration -E s3_object_store_test)
if [ "${CAIRN_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON \
    -DCAIRN_BUILD_BENCH=OFF >/dev/null
  ninja -C build-asan common_test kv_test meta_test data_test fs_test namespace_stress_test sigv4_test tier_unit_test \
    snap_test fuse_test cairn integration_posix_test integration_cli_test integration_mount_test \
    integration_tier_test \
    integration_snapshot_test
  (cd build-asan && ctest --output-on-failure -j2 -L unit)
  # The mount itself under ASan/UBSan: the POSIX, CLI, tier and snapshot suites drive a
  # sanitized daemon, served by Cairn's own transport over io_uring.
  # (Leak checking is off here: the daemon leaves through _exit in its forked child.)
  (cd build-asan && ASAN_OPTIONS=detect_leaks=0 CAIRN_FUSE_TRANSPORT=uring ctest --output-on-failure \
    -R 'integration_(posix|cli|mount|tier|snapshot)_test')
fi
