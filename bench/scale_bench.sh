#!/usr/bin/env bash
# scale_bench.sh: a namespace of the size users have (default 1,000,000 files of ~30 KiB and
# 15,000,000 tiny files), on Cairn and on ext4 on the same disk, and how long the everyday things
# take on it: mount, `cairn status`, `find | wc -l`, stat of every file (`find -printf %s`); plus
# the Cairn daemon's memory (RSS) and the size of its metadata.
#
# ext4 runs on a file-backed image on the same disk (mkfs.ext4 -N sized for the set: the root
# file system may not have inodes to spare; -O inline_data so that tiny files live in their
# inodes as they do in Cairn, instead of taking a 4 KiB block each: 15 M of them would be 61 GB),
# mounted with -o loop. The Cairn set is loaded with
# bench/scale_bench.cc through the FileSystem facade in-process (15 M creates through FUSE on
# 2 cores take hours); everything timed afterwards goes through the mount.
#
# needs: root, bash, jq, e2fsprogs, util-linux (losetup), fuse3, coreutils
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/scale_bench.sh [options]

  --files N       files of 1..60 KiB (default 1000000)
  --tiny M        tiny inline files (default 15000000)
  --workdir DIR   scratch directory on the disk under test (default /var/tmp/cairn-scale)
  --build DIR     CMake build directory (default ./build)
  --skip-ext4     only Cairn
  --keep          leave the populated Cairn data directory in WORKDIR at the end
  --reuse         use the Cairn data directory that a --keep run left in WORKDIR (same --files
                  and --tiny) instead of formatting and populating a new one
  -h, --help      this text
EOF
}
die() {
  echo "scale_bench: error: $*" >&2
  exit 2
}
log() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

files=1000000
tiny=15000000
workdir=/var/tmp/cairn-scale
build=./build
skip_ext4=0
keep=0
reuse=0
while (($# > 0)); do
  case "$1" in
    --files) files="${2:?}"; shift 2 ;;
    --tiny) tiny="${2:?}"; shift 2 ;;
    --workdir) workdir="${2:?}"; shift 2 ;;
    --build) build="${2:?}"; shift 2 ;;
    --skip-ext4) skip_ext4=1; shift ;;
    --keep) keep=1; shift ;;
    --reuse) reuse=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[[ "$files" =~ ^[0-9]+$ && "$tiny" =~ ^[0-9]+$ ]] || die "--files and --tiny are numbers"
((EUID == 0)) || die "run as root (drop_caches, loop mounts)"
command -v jq >/dev/null || die "jq is not installed"
bench="$build/bench/scale_bench"
cairn="$build/src/cairn"
[[ -x "$bench" && -x "$cairn" ]] || die "build the scale_bench and cairn targets first"

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
if ((reuse)); then
  [[ -f "$workdir/data/cairn.json" && -d "$workdir/data/meta" ]] ||
    die "--reuse: no Cairn data directory in $workdir/data"
  ((skip_ext4)) || die "--reuse needs --skip-ext4 (the ext4 image is not kept)"
  rm -f "$workdir/results.jsonl" "$workdir"/*-populate.jsonl
else
  [[ -z "$(ls -A "$workdir")" ]] || die "$workdir is not empty"
fi
need=$(((files * 31 * 1024 + tiny * 600) * 12 / 10))
avail="$(df --output=avail -B1 "$workdir" | tail -1 | tr -d ' ')"
((reuse || avail > need)) || die "$workdir has $((avail >> 30)) GiB free; the run needs about $((need >> 30)) GiB"

mnt="$workdir/mnt"
ext4_mnt="$workdir/ext4"
image="$workdir/ext4.img"
mkdir -p "$mnt" "$ext4_mnt"
cleanup() {
  local rc=$?
  set +e
  mountpoint -q "$mnt" && { "$cairn" unmount "$mnt" || fusermount3 -u "$mnt"; }
  mountpoint -q "$ext4_mnt" && umount "$ext4_mnt"
  if ((keep)); then
    find "${workdir:?}" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf --one-file-system {} +
  else
    rm -rf --one-file-system "${workdir:?}"/*
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

results="$workdir/results.jsonl"
record() {  # target key value
  jq -nc --arg t "$1" --arg k "$2" --argjson v "$3" '{target: $t, key: $k, value: $v}' >>"$results"
}
# Seconds that "$@" took (its stdout to a file the caller names in $out).
timed() {
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' 
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
total=$((files + tiny))

log "scale_bench: $(uname -r) $(nproc) cpus, $(($(free -b | awk '/Mem:/ {print $2}') >> 30)) GiB; files $files, tiny $tiny"

if ((skip_ext4 == 0)); then
  log "ext4: image with $((total * 11 / 10 + 100000)) inodes"
  truncate -s $(((files * 40 * 1024 + tiny * 4096) * 12 / 10 + (8 << 30))) "$image"
  mkfs.ext4 -q -F -O inline_data -I 256 -N $((total * 11 / 10 + 100000)) "$image"
  mount -o loop "$image" "$ext4_mnt"
  log "ext4: populate"
  "$bench" --root "$ext4_mnt" --files "$files" --tiny "$tiny" | tee -a "$workdir/ext4-populate.jsonl"
  umount "$ext4_mnt"
  drop
  record ext4 mount_s "$(timed mount -o loop "$image" "$ext4_mnt")"
  drop
  s=$(timed bash -c "find '$ext4_mnt' | wc -l > '$workdir/ext4-count'")
  record ext4 find_s "$s"
  record ext4 find_entries "$(cat "$workdir/ext4-count")"
  drop
  record ext4 stat_all_s "$(timed bash -c "find '$ext4_mnt' -printf '%s\n' > /dev/null")"
  record ext4 used_bytes "$(df --output=used -B1 "$ext4_mnt" | tail -1 | tr -d ' ')"
  umount "$ext4_mnt"
  rm -f "$image"
fi

if ((reuse)); then
  log "cairn: reusing the populated $workdir/data"
else
  log "cairn: format and populate (in-process)"
  "$cairn" format "$workdir/data" >/dev/null
  "$bench" --data "$workdir/data" --files "$files" --tiny "$tiny" |
    tee -a "$workdir/cairn-populate.jsonl"
fi
record cairn meta_bytes "$(du -sb "$workdir/data/meta" | cut -f1)"
record cairn data_bytes "$(du -sb "$workdir/data" | cut -f1)"
drop
record cairn mount_s "$(timed "$cairn" mount "$workdir/data" "$mnt")"
pid="$(pgrep -f "cairn.*mount.*$workdir/data" | head -1 || true)"
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/ {print $2 * 1024}' "/proc/$pid/status"; }
[[ -n "$pid" ]] && record cairn rss_after_mount "$(rss)"
record cairn status_s "$(timed bash -c "'$cairn' status '$mnt' > '$workdir/status.txt'")"
cat "$workdir/status.txt" >&2
s=$(timed bash -c "find '$mnt' | wc -l > '$workdir/cairn-count'")
record cairn find_s "$s"
record cairn find_entries "$(cat "$workdir/cairn-count")"
[[ -n "$pid" ]] && record cairn rss_after_find "$(rss)"
"$cairn" unmount "$mnt"
drop
"$cairn" mount "$workdir/data" "$mnt"
pid="$(pgrep -f "cairn.*mount.*$workdir/data" | head -1 || true)"
record cairn stat_all_s "$(timed bash -c "find '$mnt' -printf '%s\n' > /dev/null")"
if [[ -n "$pid" ]]; then
  record cairn rss_after_stat "$(rss)"
  record cairn rss_peak "$(hwm)"
fi
"$bench" --root "$mnt" --files "$files" --tiny "$tiny" --verify
"$cairn" unmount "$mnt"

echo
echo "| measure | ext4 | Cairn | Cairn/ext4 (time: >1 is slower) |"
echo "|---|---|---|---|"
jq -rs '
  (map(select(.target == "ext4")) | map({(.key): .value}) | add // {}) as $e |
  (map(select(.target == "cairn")) | map({(.key): .value}) | add) as $c |
  def f(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
  def gib(x): if x == null then "-" else ((x / 1073741824 * 100 | round / 100 | tostring) + " GiB") end;
  "| mount (s) | \(f($e.mount_s)) | \(f($c.mount_s)) | \(if $e.mount_s then f($c.mount_s / $e.mount_s) else "-" end) |",
  "| cairn status (s) | - | \(f($c.status_s)) | - |",
  "| find \\| wc -l (s) | \(f($e.find_s)) | \(f($c.find_s)) | \(if $e.find_s then f($c.find_s / $e.find_s) else "-" end) |",
  "| entries found | \($e.find_entries // "-") | \($c.find_entries) | - |",
  "| stat of all, cold (s) | \(f($e.stat_all_s)) | \(f($c.stat_all_s)) | \(if $e.stat_all_s then f($c.stat_all_s / $e.stat_all_s) else "-" end) |",
  "| daemon RSS after mount | - | \(gib($c.rss_after_mount)) | - |",
  "| daemon RSS after find | - | \(gib($c.rss_after_find)) | - |",
  "| daemon RSS after stat of all (peak) | - | \(gib($c.rss_after_stat)) (\(gib($c.rss_peak))) | - |",
  "| metadata (RocksDB) | - | \(gib($c.meta_bytes)) | - |",
  "| disk used | \(gib($e.used_bytes)) | \(gib($c.data_bytes)) | - |"
' "$results"
echo
cat "$workdir"/*-populate.jsonl 2>/dev/null || true
