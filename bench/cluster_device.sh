#!/usr/bin/env bash
# cluster_device.sh: bench/cluster_bench.sh on a machine without a package registry (the lent
# 16-core device), run from the repository root there with cluster-bundle.tar.xz carried
# (bench/cluster_bundle.sh). It unpacks the bundle (Ceph and PostgreSQL at their Debian paths,
# the libraries apart), makes the postgres user, and runs the benchmark with the arguments given;
# its output also goes to $OUT/cluster-bench.txt when OUT is set.
# Usage: bash bench/cluster_device.sh [cluster_bench.sh options]
#        bash bench/cluster_device.sh --transport-bench [transport_bench.sh options]
#          (the same bundle's binaries, for the FUSE transports on one node)
#        bash bench/cluster_device.sh --request-count [N]
#          (bench/request_count.sh: requests and CPU per operation, with the bundle's cairn and,
#          where the bundle has one, cairn-before on libfuse's loop)
set -uo pipefail
B=/opt/cairn-bundle
rm -rf "$B"
mkdir -p "$B"
xz -dc cluster-bundle.tar.xz | tar xf - -C "$B" || { echo "cluster_device: unpacking failed" >&2; exit 1; }
cp -a "$B/root/." /
export LD_LIBRARY_PATH=$B/lib
export PATH=$B/bin:/usr/lib/postgresql/15/bin:$PATH
export CAIRN_CEPHCTL=$B/bin/cairn-cephctl
id postgres >/dev/null 2>&1 || useradd -r -M -d /var/lib/postgresql -s /bin/sh postgres
# cluster_bench.sh --build wants build/{src,bench}; scripts/cluster.sh takes cairn from $CAIRN.
mkdir -p "$B/build/src" "$B/build/bench"
ln -sf "$B/bin/cairn" "$B/build/src/cairn"
ln -sf "$B/bin/cairn_bench" "$B/build/bench/cairn_bench"
ln -sf "$B/bin/meta_bench" "$B/build/bench/meta_bench"
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
df -h /var/tmp | tail -1
if [[ ${1:-} == --transport-bench ]]; then
  shift
  bash bench/transport_bench.sh --build "$B/build" "$@" 2>&1 | tee "${OUT:-/tmp}/transport-bench.txt"
elif [[ ${1:-} == --request-count ]]; then
  n=${2:-2000}
  {
    if [[ -x $B/bin/cairn-before ]]; then
      mkdir -p "$B/before/src"
      ln -sf "$B/bin/cairn-before" "$B/before/src/cairn"
      echo "== before: libfuse's loop"
      PERF=$B/bin/perf TRANSPORTS=libfuse bash bench/request_count.sh "$B/before" "$n"
    fi
    echo "== now"
    PERF=$B/bin/perf TRANSPORTS="dev uring" bash bench/request_count.sh "$B/build" "$n"
  } 2>&1 | tee "${OUT:-/tmp}/request-count.txt"
else
  bash bench/cluster_bench.sh --build "$B/build" "$@" 2>&1 | tee "${OUT:-/tmp}/cluster-bench.txt"
fi
