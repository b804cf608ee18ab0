#!/usr/bin/env bash
# request_count.sh: FUSE requests the kernel sends per operation (empty-file create, cold and
# warm stat, open+read+close, ls of a directory), on a single-node mount served by each
# transport, from the counts `cairn status --json` keeps. Needs root (drop_caches) and jq.
# usage: bench/request_count.sh [BUILD_DIR] [N]   (default ./build, 500 of each operation)
set -euo pipefail
B=${1:-./build}/src/cairn
n=${2:-500}
[[ -x $B ]] || { echo "request_count: no $B (build first)" >&2; exit 2; }
trap '$B unmount /tmp/rc/m >/dev/null 2>&1 || true' EXIT
for t in libfuse dev uring; do
  rm -rf /tmp/rc && mkdir -p /tmp/rc/m
  $B format /tmp/rc/d >/dev/null
  $B mount /tmp/rc/d /tmp/rc/m --metrics-address '' --fuse-transport $t >/dev/null
  snap() { $B status /tmp/rc/m --json | jq -c '.fuse_requests | with_entries(.value = .value.count)'; }
  diffc() { jq -n --argjson a "$1" --argjson b "$2" --arg n $n '$b | to_entries | map(select(.value - ($a[.key] // 0) > 0) | "\(.key)=\(((.value - ($a[.key] // 0)) / ($n|tonumber)) * 100 | round / 100)") | join(" ")'; }
  mkdir /tmp/rc/m/d
  a=$(snap); for i in $(seq $n); do : > /tmp/rc/m/d/f$i; done; b=$(snap); echo "$t create: $(diffc "$a" "$b")"
  sync; echo 3 > /proc/sys/vm/drop_caches
  a=$(snap); for i in $(seq $n); do stat -c %s /tmp/rc/m/d/f$i >/dev/null; done; b=$(snap); echo "$t cold stat: $(diffc "$a" "$b")"
  a=$(snap); for i in $(seq $n); do stat -c %s /tmp/rc/m/d/f$i >/dev/null; done; b=$(snap); echo "$t warm stat: $(diffc "$a" "$b")"
  a=$(snap); for i in $(seq $n); do cat /tmp/rc/m/d/f$i >/dev/null; done; b=$(snap); echo "$t open+read+close: $(diffc "$a" "$b")"
  a=$(snap); for i in $(seq $n); do ls /tmp/rc/m/d >/dev/null; done; b=$(snap); echo "$t readdir (ls of $n): $(diffc "$a" "$b")"
  $B unmount /tmp/rc/m >/dev/null
done
