#!/usr/bin/env bash
# meta_bench.sh: namespace operations from 1, 2, 4, ... threads (bench/meta_bench.cc), side by
# side on a plain directory of the local file system, on a Cairn mount, and on Cairn's
# FileSystem in-process (no FUSE: Cairn's own locking and RocksDB), and prints one table with
# ops/s and Cairn/ext4 ratios.
#
# needs: bash, jq, fuse3 (fusermount3), util-linux (mountpoint, findmnt), coreutils
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/meta_bench.sh [options]

  --files N         files per run (default 20000), split over the threads
  --threads LIST    comma-separated thread counts (default 1,2,4,8)
  --layout L        private (each thread its own directories, default) or shared
  --workdir DIR     scratch directory on the disk under test (default /var/tmp/cairn-meta-bench)
  --build DIR       CMake build directory (default ./build)
  -h, --help        this text
EOF
}
die() {
  echo "meta_bench: error: $*" >&2
  exit 2
}
log() { echo "== $*" >&2; }

files=20000
threads_list=1,2,4,8
layout=private
workdir=/var/tmp/cairn-meta-bench
build=./build
while (($# > 0)); do
  case "$1" in
    --files) files="${2:?--files needs a value}"; shift 2 ;;
    --threads) threads_list="${2:?--threads needs a value}"; shift 2 ;;
    --layout) layout="${2:?--layout needs a value}"; shift 2 ;;
    --workdir) workdir="${2:?--workdir needs a value}"; shift 2 ;;
    --build) build="${2:?--build needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[[ "$files" =~ ^[1-9][0-9]*$ ]] || die "--files must be a positive integer, not '$files'"
[[ "$threads_list" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "bad --threads '$threads_list'"
[[ "$layout" == private || "$layout" == shared ]] || die "--layout is private or shared"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"
bench="$build/bench/meta_bench"
cairn="$build/src/cairn"
[[ -x "$bench" ]] || die "no $bench (build the meta_bench target)"
[[ -x "$cairn" ]] || die "no $cairn (build the cairn target)"

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
[[ -z "$(ls -A "$workdir")" ]] || die "$workdir is not empty; remove it or choose another --workdir"
mnt="$workdir/mnt"
mounted=0
cleanup() {
  local rc=$?
  set +e
  if ((mounted)) && mountpoint -q "$mnt"; then
    "$cairn" unmount "$mnt" || fusermount3 -u "$mnt"
  fi
  rm -rf --one-file-system "${workdir:?}"/*
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fs_type="$(findmnt -n -o FSTYPE --target "$workdir" 2>/dev/null || echo unknown)"
log "meta_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cpus; $workdir on $fs_type"
log "files $files, threads $threads_list, layout $layout"

results="$workdir/results.jsonl"
run() {  # target threads -> appends tagged JSON lines
  local target="$1" t="$2" out
  case "$target" in
    ext4)
      mkdir -p "$workdir/ext4"
      out="$("$bench" --root "$workdir/ext4" --files "$files" --threads "$t" --layout "$layout" --json)"
      rm -rf "$workdir/ext4"
      ;;
    mount)
      "$cairn" format "$workdir/data" >/dev/null
      mkdir -p "$mnt"
      mounted=1
      "$cairn" mount "$workdir/data" "$mnt"
      out="$("$bench" --root "$mnt" --files "$files" --threads "$t" --layout "$layout" --json)"
      "$cairn" unmount "$mnt"
      mounted=0
      rm -rf "$workdir/data"
      ;;
    inprocess)
      "$cairn" format "$workdir/data" >/dev/null
      out="$("$bench" --data "$workdir/data" --files "$files" --threads "$t" --layout "$layout" --json)"
      rm -rf "$workdir/data"
      ;;
  esac
  jq -c --arg target "$target" '.[] | . + {target: $target}' <<<"$out" >>"$results"
}

IFS=, read -r -a counts <<<"$threads_list"
for t in "${counts[@]}"; do
  for target in ext4 mount inprocess; do
    log "$target, $t threads"
    run "$target" "$t"
  done
done

echo
echo "| phase | threads | ext4 ops/s | Cairn mount ops/s | mount/ext4 | Cairn in-process ops/s |"
echo "|---|---|---|---|---|---|"
jq -rs '
  group_by([.phase, .threads]) | sort_by(.[0].threads) | sort_by(.[0].phase) | .[] |
  (map({(.target): .ops_per_s}) | add) as $r |
  "| \(.[0].phase) | \(.[0].threads) | \($r.ext4 | floor) | \($r.mount | floor) | " +
  "\(($r.mount / $r.ext4 * 100 | floor) / 100) | \($r.inprocess | floor) |"' "$results"
errors="$(jq -s 'map(.errors) | add' "$results")"
echo
echo "errors: $errors"
((errors == 0))
