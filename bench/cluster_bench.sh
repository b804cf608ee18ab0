#!/usr/bin/env bash
# cluster_bench.sh: Cairn's core workloads (bench/cairn_bench.cc: create, cold stat, cold random
# read epoch, checkpoint write/read) side by side on ext4 (a plain directory on the same disk), a
# single-node Cairn mount, and a Cairn cluster (scripts/cluster.sh: PostgreSQL + Ceph with 3
# file-backed OSDs on this machine) used from 1, 2 and 3 nodes at once.
#
# With K nodes, K cairn_bench processes run at the same time, one per node, each on its own
# subtree with FILES/K files and a checkpoint of CHECKPOINT/K: the same total work. A workload's
# aggregate rate is the sum of the files (bytes) of all processes over the longest of their
# times for that workload.
#
# Last, `cairn snap create` is timed on the single-node mount and on cluster node 1 (after all
# runs, so the cluster's metadata holds every run's files): a RocksDB checkpoint against a copy of
# the shared table in PostgreSQL, with the number of files each holds.
#
# Run as root (FUSE, cache drops, network namespaces are not used here). Needs jq.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/cluster_bench.sh [--files N] [--checkpoint-size SIZE] [--workdir DIR] [--build DIR]
                              [--nodes-max K]
  --files N               files in the data set (default 10000)
  --checkpoint-size SIZE  checkpoint size (default 512MiB)
  --workdir DIR           scratch directory (default /var/tmp/cairn-cluster-bench)
  --build DIR             CMake build directory (default ./build)
  --nodes-max K           cluster runs with 1..K nodes (default 3)
EOF
}

files=10000
checkpoint=512MiB
workdir=/var/tmp/cairn-cluster-bench
build=./build
nodes_max=3
while (($#)); do
  case $1 in
    --files) files=${2:?}; shift 2 ;;
    --checkpoint-size) checkpoint=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --nodes-max) nodes_max=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "cluster_bench: needs jq" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
bench=$build/bench/cairn_bench
cairn=$build/src/cairn
[[ -x "$bench" && -x "$cairn" ]] || { echo "cluster_bench: build first ($bench, $cairn)" >&2; exit 2; }
ckpt_bytes=$(numfmt --from=iec-i "${checkpoint%B}")
workloads=create,stat,epoch,checkpoint

log() { echo "== $*" >&2; }

rm -rf "$workdir"
mkdir -p "$workdir/results"
single_mnt=$workdir/single-mnt
cleanup() {
  mountpoint -q "$single_mnt" 2>/dev/null && "$cairn" unmount "$single_mnt" >/dev/null 2>&1 || true
  CAIRN=$cairn bash "$here/../scripts/cluster.sh" stop "$workdir/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# run_set NAME K ROOT...: K concurrent cairn_bench runs, one per root.
run_set() {
  local name=$1 k=$2
  shift 2
  local pids=() i=0
  for root in "$@"; do
    mkdir -p "$root"
    "$bench" run --root "$root" --files $((files / k)) --workloads "$workloads" --seed $((42 + i)) \
      --checkpoint-size $((ckpt_bytes / k)) --json >"$workdir/results/$name.$i.json" \
      2>"$workdir/results/$name.$i.log" &
    pids+=($!)
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "cluster_bench: $name failed" >&2; exit 1; }; done
  # Aggregate: sum of files and bytes over the longest time, per workload.
  jq -s 'add | group_by(.workload) | map({workload: .[0].workload,
          files_per_s: ((map(.files) | add) / (map(.seconds) | max)),
          mb_per_s: ((map(.bytes) | add) / (map(.seconds) | max) / 1e6),
          errors: (map(.errors) | add)})' "$workdir"/results/"$name".*.json \
    >"$workdir/results/$name.agg.json"
}

log "ext4 (a directory on the disk under $workdir)"
run_set ext4 1 "$workdir/ext4"

log "single-node Cairn"
"$cairn" format "$workdir/single-data" >/dev/null
mkdir -p "$single_mnt"
"$cairn" mount "$workdir/single-data" "$single_mnt" --metrics-address '' >/dev/null
run_set single 1 "$single_mnt/set"
# snap_time MOUNT: seconds `cairn snap create MOUNT bench-snap` takes, then the files it holds.
snap_time() {
  local t0 t1
  t0=$(date +%s.%N)
  "$cairn" snap create "$1" bench-snap >/dev/null
  t1=$(date +%s.%N)
  echo "$(jq -n "$t1 - $t0") $("$cairn" status "$1" --json | jq -r .files)"
}
read -r snap_single snap_single_files < <(snap_time "$single_mnt")
"$cairn" unmount "$single_mnt" >/dev/null

log "cluster: PostgreSQL + Ceph (3 OSDs) + $nodes_max nodes"
# Every OSD holds every byte (size 3 on 3 OSDs), and cluster mode does not compact yet: each
# OSD must hold all the data sets of all the runs.
osd_gib=$(((files * 160000 + ckpt_bytes) * (nodes_max + 1) / (1 << 30) + 4))
CAIRN=$cairn bash "$here/../scripts/cluster.sh" start "$workdir/cluster" --nodes "$nodes_max" \
  --osd-size "$osd_gib" >/dev/null
# The physical baseline of the cluster rows: RADOS itself on the same pool, as ext4 is of the
# single-node rows. Writes of the data set's mean file size (4 in flight, as the 4 create
# threads) and of 1 MiB (1 in flight, as one checkpoint stream); then reads of the latter.
conf=$workdir/cluster/ceph/ceph.conf
mean=$(jq -r '.[] | select(.workload == "create") | (.bytes / .files | floor)' \
  "$workdir/results/ext4.0.json")
rados_bench() {
  rados -c "$conf" -p cairn bench 10 "$@" 2>/dev/null |
    awk '/^Bandwidth \(MB\/sec\)/ {bw=$3} /^Average IOPS/ {iops=$3} END {printf "%.1f MB/s, %d ops/s", bw, iops}'
}
log "raw RADOS on the same pool"
raw_small=$(rados_bench write -b "$mean" -t 4 --no-cleanup)
rados -c "$conf" -p cairn cleanup >/dev/null 2>&1 || true
raw_big=$(rados_bench write -b 1048576 -t 1 --no-cleanup)
raw_read=$(rados_bench seq -t 16)
rados -c "$conf" -p cairn cleanup >/dev/null 2>&1 || true

for ((k = 1; k <= nodes_max; ++k)); do
  roots=()
  for ((i = 1; i <= k; ++i)); do roots+=("$workdir/cluster/mnt/$i/k$k-n$i"); done
  log "cluster, $k node(s) at once"
  run_set "cluster$k" "$k" "${roots[@]}"
done

read -r snap_cluster snap_cluster_files < <(snap_time "$workdir/cluster/mnt/1")

names=(ext4 single)
for ((k = 1; k <= nodes_max; ++k)); do names+=("cluster$k"); done
printf '\n%-20s' "workload"
for n in "${names[@]}"; do printf '%14s' "$n"; done
printf '%14s\n' "c${nodes_max}/ext4"
for w in create stat epoch checkpoint-write checkpoint-read checkpoint-ranges checkpoint-shards-w \
  checkpoint-shards-r; do
  metric=files_per_s
  unit="files/s"
  [[ $w == checkpoint* ]] && metric=mb_per_s && unit="MB/s"
  [[ $w == epoch ]] && metric=files_per_s
  printf '%-20s' "$w ($unit)"
  base=""
  last=""
  for n in "${names[@]}"; do
    v=$(jq -r --arg w "$w" --arg m "$metric" '.[] | select(.workload == $w) | .[$m]' \
      "$workdir/results/$n.agg.json")
    printf '%14.1f' "$v"
    [[ $n == ext4 ]] && base=$v
    last=$v
  done
  printf '%14.2f\n' "$(jq -n "$last / $base")"
done
echo
echo "raw RADOS, writes of $mean bytes, 4 in flight: $raw_small"
echo "raw RADOS, 1 MiB writes, 1 in flight:          $raw_big"
echo "raw RADOS, 1 MiB sequential reads, 16 in flight: $raw_read"
printf 'snap create: single node %.2f s (%s files), cluster %.2f s (%s files)\n' \
  "$snap_single" "$snap_single_files" "$snap_cluster" "$snap_cluster_files"
errors=$(cat "$workdir"/results/*.agg.json | jq -s '[.[][] | .errors] | add')
echo "errors: $errors"
[[ "$errors" == 0 ]]
