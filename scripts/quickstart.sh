#!/usr/bin/env bash
# Cairn's main job on its embedded default: install, build, format a file system, mount it, put a
# generated training data set on it, show `cairn status`, and run the core benchmark side by side
# with ext4 on the same disk. Run as root. CAIRN_FILES sets the data set size (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
files="${CAIRN_FILES:-20000}"
work="${CAIRN_WORKDIR:-/var/tmp/cairn-quickstart}"
if mountpoint -q "$work/mnt" 2>/dev/null; then build/src/cairn unmount "$work/mnt" || fusermount3 -uz "$work/mnt"; fi
rm -rf "$work"
mkdir -p "$work/mnt"
echo "== cairn format $work/data"
build/src/cairn format "$work/data"
echo "== cairn mount $work/data $work/mnt"
build/src/cairn mount "$work/data" "$work/mnt"
trap 'build/src/cairn unmount "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null || true' EXIT
echo "== generating a sample training set of $files files"
build/bench/cairn_bench generate --root "$work/mnt/train" --files "$files"
echo "== cairn status $work/mnt"
build/src/cairn status "$work/mnt"
build/src/cairn unmount "$work/mnt"
trap - EXIT
echo "== cairn fsck $work/data"
build/src/cairn fsck "$work/data"
rm -rf "$work"
echo "== core benchmark: ext4 and Cairn side by side"
bash bench/core_bench.sh --files "$files" --checkpoint-size "${CAIRN_CHECKPOINT:-1GiB}" --build build
