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
# Metadata only (bench/meta_bench.cc, 4 threads, each in directories of its own): empty-file
# creates, mkdir, rename, cold stat (the kernel's caches dropped), warm stat, and a cold readdir of
# every thread's directory (--meta-files / 4 entries each), on the same targets.
#
# Snapshots: `cairn snap create` timed, end to end (CLI included), on a single node and on cluster
# node 1 holding 10 thousand, 100 thousand and (--snap-max) 1 million files (metadata only: empty
# files, made in-process by meta_bench --data on the unmounted data directory). A single node's
# snapshot is a RocksDB checkpoint, a cluster's an epoch of the shared tables.
#
# Run as root (FUSE, cache drops, network namespaces are not used here). Needs jq.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/cluster_bench.sh [--files N] [--checkpoint-size SIZE] [--workdir DIR] [--build DIR]
                              [--nodes-max K] [--osds N] [--meta-files N] [--snap-max N]
                              [--skip-core]
  --files N               files in the data set (default 10000)
  --checkpoint-size SIZE  checkpoint size (default 512MiB)
  --workdir DIR           scratch directory (default /var/tmp/cairn-cluster-bench)
  --build DIR             CMake build directory (default ./build)
  --nodes-max K           cluster runs with 1..K nodes (default 3)
  --osds N                OSDs of the test Ceph cluster (default 3)
  --meta-files N          files of the metadata-only rows, per node (default 40000)
  --snap-max N            largest namespace a snapshot is timed at: 10k, 100k, ... up to N
                          (default 1000000; 0: no snapshot rows)
  --skip-core             only the metadata and snapshot rows
EOF
}

files=10000
checkpoint=512MiB
workdir=/var/tmp/cairn-cluster-bench
build=./build
nodes_max=3
osds=3
meta_files=40000
snap_max=1000000
skip_core=0
while (($#)); do
  case $1 in
    --files) files=${2:?}; shift 2 ;;
    --checkpoint-size) checkpoint=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --nodes-max) nodes_max=${2:?}; shift 2 ;;
    --osds) osds=${2:?}; shift 2 ;;
    --meta-files) meta_files=${2:?}; shift 2 ;;
    --snap-max) snap_max=${2:?}; shift 2 ;;
    --skip-core) skip_core=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "cluster_bench: needs jq" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
bench=$build/bench/cairn_bench
meta=$build/bench/meta_bench
cairn=$build/src/cairn
[[ -x "$bench" && -x "$meta" && -x "$cairn" ]] || {
  echo "cluster_bench: build first ($bench, $meta, $cairn)" >&2
  exit 2
}
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

# meta_set NAME K ROOT...: K concurrent meta_bench runs (metadata only), one per root; the
# aggregate of a phase is the sum of its operations over the longest time.
meta_set() {
  local name=$1 k=$2
  shift 2
  local pids=() i=0
  for root in "$@"; do
    mkdir -p "$root"
    "$meta" --root "$root" --files "$meta_files" --threads 4 \
      --phases mkdir,create,rename,stat-cold,stat,readdir --json \
      >"$workdir/results/meta-$name.$i.json" 2>"$workdir/results/meta-$name.$i.log" &
    pids+=($!)
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "cluster_bench: meta $name failed" >&2; exit 1; }; done
  jq -s 'add | group_by(.phase) | map({phase: .[0].phase,
          ops_per_s: ((map(.ops) | add) / (map(.seconds) | max)),
          errors: (map(.errors) | add)})' "$workdir"/results/meta-"$name".*.json \
    >"$workdir/results/meta-$name.agg.json"
}

# snap_time MOUNT NAME: seconds `cairn snap create MOUNT NAME` takes, end to end.
snap_time() {
  local t0 t1
  t0=$(date +%s.%N)
  "$cairn" snap create "$1" "$2" >/dev/null
  t1=$(date +%s.%N)
  jq -n "$t1 - $t0"
}
# snap_scale NAME DATA_DIR MOUNT REMOUNT...: fills the file system (unmounted) with empty files up
# to 10k, 100k, ... (meta_bench --data, in-process) and times a snapshot at each size, mounted.
snap_scale() {
  local name=$1 data=$2 mnt=$3
  shift 3
  local have=0 size=10000 step=0
  : >"$workdir/results/snap-$name.txt"
  while ((snap_max > 0 && size <= snap_max)); do
    mountpoint -q "$mnt" && "$cairn" unmount "$mnt" >/dev/null
    "$meta" --data "$data" --files $((size - have)) --threads 16 --phases create --no-unlink \
      --prefix "s$step-" >/dev/null 2>"$workdir/results/snap-$name.$step.log" ||
      { echo "cluster_bench: filling $name failed" >&2; exit 1; }
    "$@" >/dev/null
    local files
    files=$("$cairn" status "$mnt" --json | jq -r .files)
    echo "$size $files $(snap_time "$mnt" "s$size")" >>"$workdir/results/snap-$name.txt"
    have=$size
    size=$((size * 10))
    step=$((step + 1))
  done
}

if ((!skip_core)); then
  log "ext4 (a directory on the disk under $workdir)"
  run_set ext4 1 "$workdir/ext4"
fi
log "ext4, metadata only"
meta_set ext4 1 "$workdir/ext4-meta"

log "single-node Cairn"
"$cairn" format "$workdir/single-data" >/dev/null
mkdir -p "$single_mnt"
"$cairn" mount "$workdir/single-data" "$single_mnt" --metrics-address '' >/dev/null
((skip_core)) || run_set single 1 "$single_mnt/set"
meta_set single 1 "$single_mnt/meta"
"$cairn" unmount "$single_mnt" >/dev/null
log "single-node Cairn, snapshots of 10k..$snap_max files"
"$cairn" format "$workdir/single-snap" >/dev/null
mkdir -p "$workdir/single-snap-mnt"
snap_mnt=$workdir/single-snap-mnt
snap_scale single "$workdir/single-snap" "$snap_mnt" \
  "$cairn" mount "$workdir/single-snap" "$snap_mnt" --metrics-address ''
mountpoint -q "$snap_mnt" && "$cairn" unmount "$snap_mnt" >/dev/null

log "cluster: PostgreSQL + Ceph (3 OSDs) + $nodes_max nodes"
# Every OSD holds every byte (size 3 on 3 OSDs), and cluster mode does not compact yet: each
# OSD must hold all the data sets of all the runs.
osd_gib=$(((files * 160000 + ckpt_bytes) * (nodes_max + 1) / (1 << 30) + 4))
CAIRN=$cairn bash "$here/../scripts/cluster.sh" start "$workdir/cluster" --nodes "$nodes_max" \
  --osds "$osds" --osd-size "$osd_gib" >/dev/null
# The physical baseline of the cluster rows: RADOS itself on the same pool, as ext4 is of the
# single-node rows. Writes of the data set's mean file size (4 in flight, as the 4 create
# threads) and of 1 MiB (1 in flight, as one checkpoint stream); then reads of the latter.
conf=$workdir/cluster/ceph/ceph.conf
mean=135920  # the data set's mean file size (cairn_bench's size model)
if [[ -f "$workdir/results/ext4.0.json" ]]; then
  mean=$(jq -r '.[] | select(.workload == "create") | (.bytes / .files | floor)' \
    "$workdir/results/ext4.0.json")
fi
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
  meta_roots=()
  for ((i = 1; i <= k; ++i)); do
    roots+=("$workdir/cluster/mnt/$i/k$k-n$i")
    meta_roots+=("$workdir/cluster/mnt/$i/meta-k$k-n$i")
  done
  if ((!skip_core)); then
    log "cluster, $k node(s) at once"
    run_set "cluster$k" "$k" "${roots[@]}"
  fi
  log "cluster, $k node(s) at once, metadata only"
  meta_set "cluster$k" "$k" "${meta_roots[@]}"
done

log "cluster node 1, snapshots of 10k..$snap_max files (on a file system of its own)"
# shellcheck disable=SC1091
source "$workdir/cluster/env"
snap_db=snapbench
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$PG_PORT" -U postgres \
  -qc "CREATE DATABASE $snap_db" >/dev/null
snap_meta="host=127.0.0.1 port=$PG_PORT user=postgres dbname=$snap_db"
"$cairn" format "$workdir/cluster-snap" --meta "$snap_meta" --ceph-conf "$CEPH_CONF" \
  --pool cairn >/dev/null
mkdir -p "$workdir/cluster-snap-mnt"
csnap_mnt=$workdir/cluster-snap-mnt
snap_scale cluster "$workdir/cluster-snap" "$csnap_mnt" \
  "$cairn" mount "$workdir/cluster-snap" "$csnap_mnt" --metrics-address ''
mountpoint -q "$csnap_mnt" && "$cairn" unmount "$csnap_mnt" >/dev/null

names=(ext4 single)
for ((k = 1; k <= nodes_max; ++k)); do names+=("cluster$k"); done
printf '\n%-20s' "workload"
for n in "${names[@]}"; do printf '%14s' "$n"; done
printf '%14s%14s\n' "c1/single" "c${nodes_max}/ext4"
workloads=(create stat epoch checkpoint-write checkpoint-read checkpoint-ranges checkpoint-shards-w
  checkpoint-shards-r)
((skip_core)) && workloads=()
for w in "${workloads[@]}"; do
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
    [[ $n == single ]] && single=$v
    [[ $n == cluster1 ]] && c1=$v
    last=$v
  done
  printf '%14.2f%14.2f\n' "$(jq -n "$c1 / $single")" "$(jq -n "$last / $base")"
done
for p in mkdir create rename stat-cold stat readdir; do
  printf '%-20s' "meta $p (ops/s)"
  for n in "${names[@]}"; do
    v=$(jq -r --arg p "$p" '.[] | select(.phase == $p) | .ops_per_s' \
      "$workdir/results/meta-$n.agg.json")
    printf '%14.1f' "$v"
    [[ $n == ext4 ]] && base=$v
    [[ $n == single ]] && single=$v
    [[ $n == cluster1 ]] && c1=$v
    last=$v
  done
  printf '%14.2f%14.2f\n' "$(jq -n "$c1 / $single")" "$(jq -n "$last / $base")"
done
echo
echo "raw RADOS, writes of $mean bytes, 4 in flight: $raw_small"
echo "raw RADOS, 1 MiB writes, 1 in flight:          $raw_big"
echo "raw RADOS, 1 MiB sequential reads, 16 in flight: $raw_read"
echo
printf '%-28s%14s%14s\n' "snap create (s, end to end)" "single" "cluster"
paste "$workdir/results/snap-single.txt" "$workdir/results/snap-cluster.txt" |
  while read -r size sfiles stime csize cfiles ctime; do
    printf '%-28s%14.3f%14.3f\n' "$size files ($sfiles/$cfiles)" "$stime" "$ctime"
  done
errors=$(cat "$workdir"/results/*.agg.json | jq -s '[.[][] | .errors] | add')
echo "errors: $errors"
[[ "$errors" == 0 ]]
