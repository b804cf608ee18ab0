#!/usr/bin/env bash
# transport_bench.sh: a single-node Cairn mount served by each FUSE transport (/dev/fuse read by
# Cairn, FUSE-over-io_uring; docs/ARCHITECTURE.md "FUSE"), side by side with
# ext4 on the same disk, in one run: metadata operations (meta_bench: mkdir, empty-file create,
# rename, cold stat after the kernel's caches were dropped, warm stat, readdir), the small-file
# workloads (cairn_bench: create, cold stat, warm restat, cold epoch) and the checkpoint (one
# 1 MiB writer with fsync, range readers, shard writers and readers). Prints one table with
# each transport's rate and its ratio to ext4. Needs root (drop_caches, enable_uring).
#
# usage: bench/transport_bench.sh [--files N] [--meta-files N] [--checkpoint-size SIZE]
#                                 [--transports LIST] [--fuse-threads N] [--workdir DIR]
#                                 [--build DIR]
set -euo pipefail

files=10000
meta_files=20000
checkpoint=1GiB
transports=dev,uring
fuse_threads=8
workdir=/var/tmp/cairn-transport-bench
build=./build
usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}
while (($# > 0)); do
  case "$1" in
    --files) files=${2:?}; shift 2 ;;
    --meta-files) meta_files=${2:?}; shift 2 ;;
    --checkpoint-size) checkpoint=${2:?}; shift 2 ;;
    --transports) transports=${2:?}; shift 2 ;;
    --fuse-threads) fuse_threads=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ "$files" =~ ^[1-9][0-9]*$ && "$meta_files" =~ ^[1-9][0-9]*$ ]] || {
  echo "transport_bench: --files and --meta-files must be positive integers" >&2
  exit 2
}
IFS=, read -ra names <<<"$transports"
for t in "${names[@]}"; do
  [[ $t == dev || $t == uring ]] || {
    echo "transport_bench: unknown transport '$t' (dev, uring)" >&2
    exit 2
  }
done
command -v jq >/dev/null || { echo "transport_bench: jq is not installed" >&2; exit 2; }
cairn=$build/src/cairn
bench=$build/bench/cairn_bench
meta=$build/bench/meta_bench
for b in "$cairn" "$bench" "$meta"; do
  [[ -x $b ]] || { echo "transport_bench: no $b (build first)" >&2; exit 2; }
done
ckpt_bytes=$(numfmt --from=iec-i "${checkpoint%B}")

rm -rf "$workdir"
mkdir -p "$workdir/results"
mnt=$workdir/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && "$cairn" unmount "$mnt" >/dev/null 2>&1 || true
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

# run NAME ROOT: both benchmarks on ROOT, results in results/NAME.{core,meta}.json.
run() {
  local name=$1 root=$2
  mkdir -p "$root/set" "$root/meta"
  "$bench" run --root "$root/set" --files "$files" \
    --workloads create,stat,restat,epoch,checkpoint --checkpoint-size "$ckpt_bytes" --json \
    >"$workdir/results/$name.core.json" 2>"$workdir/results/$name.core.log"
  "$meta" --root "$root/meta" --files "$meta_files" --threads 4 \
    --phases mkdir,create,rename,stat-cold,stat,readdir --json \
    >"$workdir/results/$name.meta.json" 2>"$workdir/results/$name.meta.log"
}

log "ext4 (a directory on the disk under $workdir)"
run ext4 "$workdir/ext4"
for t in "${names[@]}"; do
  log "Cairn, transport $t"
  rm -rf "$workdir/data"
  "$cairn" format "$workdir/data" >/dev/null
  mkdir -p "$mnt"
  "$cairn" mount "$workdir/data" "$mnt" --metrics-address '' --fuse-transport "$t" \
    --fuse-threads "$fuse_threads" >/dev/null
  grep -h "FUSE 7\." "$workdir/data/cairn.log" | sed 's/^.*cairn: /   /' >&2 || true
  run "$t" "$mnt"
  "$cairn" unmount "$mnt" >/dev/null
done

cols=(ext4 "${names[@]}")
printf '\n%-26s' workload
for n in "${cols[@]}"; do printf '%12s' "$n"; done
for n in "${names[@]}"; do printf '%14s' "$n/ext4"; done
printf '\n'
row() {  # row LABEL FILE-KIND JQ-SELECT
  local label=$1 kind=$2 select=$3 base="" v
  printf '%-26s' "$label"
  local vals=()
  for n in "${cols[@]}"; do
    v=$(jq -r "$select" "$workdir/results/$n.$kind.json")
    vals+=("$v")
    printf '%12.1f' "$v"
  done
  base=${vals[0]}
  for ((i = 1; i < ${#vals[@]}; ++i)); do
    awk -v a="${vals[$i]}" -v b="$base" 'BEGIN { printf "%14.2f", (b > 0 ? a / b : 0) }'
  done
  printf '\n'
}
for w in create stat restat epoch; do
  row "$w (files/s)" core ".[] | select(.workload == \"$w\") | .files_per_s"
done
for w in checkpoint-write checkpoint-read checkpoint-ranges checkpoint-shards-w \
  checkpoint-shards-r; do
  row "$w (MB/s)" core ".[] | select(.workload == \"$w\") | .mb_per_s"
done
for p in mkdir create rename stat-cold stat readdir; do
  row "meta $p (ops/s)" meta ".[] | select(.phase == \"$p\") | .ops_per_s"
done
errors=$(cat "$workdir"/results/*.core.json | jq -s '[.[][] | .errors] | add')
echo "errors: $errors"
