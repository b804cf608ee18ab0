#!/usr/bin/env bash
# native_bench.sh: the cold random-read epoch (bench/cairn_bench.cc) of one data set, side by side
# in one run: ext4 (a plain directory on the same disk), Cairn through its FUSE mount, and Cairn
# through the native client (libcairn, include/cairn/client.h), each from a dropped page cache,
# with 16 reader threads. The native run also prints the time to take the dataset index
# ("native-index", one daemon call for the whole tree). With --cluster, the same two Cairn runs
# again on a one-node Cairn cluster (scripts/cluster.sh: PostgreSQL and Ceph with 3 OSDs on
# loopback, on the same disk), where the native client reads the segments from the RADOS pool
# itself. With --import, the ext4 copy is also imported into the mount (`cairn import file://`,
# one object per file) and cached on NVMe (`cairn tier fetch`), and both epochs run over it: the
# native client reads the daemon's cached objects itself. Prints files/s, MB/s and the ratios to
# ext4. Run as root (FUSE mount, cache drops).
# Needs jq.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/native_bench.sh [--files N] [--workdir DIR] [--build DIR] [--threads-read R]
                            [--cluster] [--import]
  --files N          files in the data set (default 20000; ~136 KB mean, see cairn_bench)
  --workdir DIR      scratch directory (default /var/tmp/cairn-native-bench)
  --build DIR        CMake build directory (default ./build)
  --threads-read R   reader threads (default 16)
  --cluster          also a one-node Cairn cluster (FUSE and native)
  --import           also the set imported from a file:// store and cached (FUSE and native)
USAGE
}

files=20000
workdir=/var/tmp/cairn-native-bench
build=./build
readers=16
cluster=0
import=0
while (($#)); do
  case $1 in
    --files) files=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --threads-read) readers=${2:?}; shift 2 ;;
    --cluster) cluster=1; shift ;;
    --import) import=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "native_bench: needs jq" >&2; exit 2; }
build=$(cd "$build" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
bench=$build/bench/cairn_bench
cairn=$build/src/cairn
[[ -x "$bench" && -x "$cairn" ]] || { echo "native_bench: build first ($bench, $cairn)" >&2; exit 2; }

mnt=$workdir/mnt
engines=$workdir/cluster
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && "$cairn" unmount "$mnt" >/dev/null 2>&1 || true
  if [[ -f "$engines/env" ]]; then bash "$repo/scripts/cluster.sh" stop "$engines" --clean >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
cleanup
rm -rf "$workdir"
mkdir -p "$workdir/ext4" "$mnt" "$workdir/results"

run() {  # run NAME ARGS...: cairn_bench run, JSON kept
  local name=$1
  shift
  "$bench" run --files "$files" --threads-read "$readers" --json "$@" \
    >"$workdir/results/$name.json" 2>"$workdir/results/$name.log" ||
    { echo "native_bench: $name failed:" >&2; cat "$workdir/results/$name.log" >&2; exit 1; }
}

echo "== generating $files files on ext4 and on a Cairn mount" >&2
"$bench" generate --root "$workdir/ext4" --files "$files" >/dev/null
# No uploads to the object tier during the runs: they would compete for the disk.
"$cairn" format "$workdir/data" --tiering-delay 1h >/dev/null
"$cairn" mount "$workdir/data" "$mnt" --metrics-address '' >/dev/null
"$bench" generate --root "$mnt/set" --files "$files" >/dev/null
echo "== ext4 epoch" >&2
run ext4 --root "$workdir/ext4" --workloads epoch
echo "== Cairn FUSE epoch" >&2
run fuse --root "$mnt/set" --workloads epoch
echo "== Cairn native epoch" >&2
run native --root "$mnt/set" --mount "$mnt" --workloads native-epoch
if ((import)); then
  echo "== importing the ext4 copy (file://) and caching its objects" >&2
  "$cairn" import "file://$workdir/ext4" "$mnt/imp" >/dev/null
  "$cairn" tier fetch "$mnt/imp" >/dev/null
  echo "== Cairn FUSE epoch over the import" >&2
  run ifuse --root "$mnt/imp" --workloads epoch
  echo "== Cairn native epoch over the import" >&2
  run inative --root "$mnt/imp" --mount "$mnt" --workloads native-epoch
fi
if ((cluster)); then
  "$cairn" unmount "$mnt" >/dev/null
  echo "== a one-node Cairn cluster (PostgreSQL, Ceph)" >&2
  CAIRN=$cairn bash "$repo/scripts/cluster.sh" start "$engines" --nodes 1 >/dev/null
  cmnt=$engines/mnt/1
  "$bench" generate --root "$cmnt/set" --files "$files" >/dev/null
  echo "== Cairn cluster FUSE epoch" >&2
  run cfuse --root "$cmnt/set" --workloads epoch
  echo "== Cairn cluster native epoch" >&2
  run cnative --root "$cmnt/set" --mount "$cmnt" --workloads native-epoch
fi

rate() { jq -r --arg w "$2" '.[] | select(.workload == $w) | "\(.files / .seconds) \(.bytes / .seconds / 1e6) \(.seconds)"' "$workdir/results/$1.json"; }
read -r e_fps e_mbs _ < <(rate ext4 epoch)
read -r f_fps f_mbs _ < <(rate fuse epoch)
read -r n_fps n_mbs _ < <(rate native native-epoch)
read -r _ _ idx_s < <(rate native native-index)
printf '\n%-22s %12s %10s %10s\n' "cold epoch, $readers thr" "files/s" "MB/s" "vs ext4"
printf '%-22s %12.1f %10.1f %10.2f\n' "ext4" "$e_fps" "$e_mbs" 1
printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn FUSE" "$f_fps" "$f_mbs" "$(jq -n "$f_fps / $e_fps")"
printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn native" "$n_fps" "$n_mbs" "$(jq -n "$n_fps / $e_fps")"
if ((import)); then
  read -r if_fps if_mbs _ < <(rate ifuse epoch)
  read -r in_fps in_mbs _ < <(rate inative native-epoch)
  printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn import FUSE" "$if_fps" "$if_mbs" "$(jq -n "$if_fps / $e_fps")"
  printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn import native" "$in_fps" "$in_mbs" "$(jq -n "$in_fps / $e_fps")"
fi
if ((cluster)); then
  read -r cf_fps cf_mbs _ < <(rate cfuse epoch)
  read -r cn_fps cn_mbs _ < <(rate cnative native-epoch)
  printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn cluster FUSE" "$cf_fps" "$cf_mbs" "$(jq -n "$cf_fps / $e_fps")"
  printf '%-22s %12.1f %10.1f %10.2f\n' "Cairn cluster native" "$cn_fps" "$cn_mbs" "$(jq -n "$cn_fps / $e_fps")"
fi
printf 'native index of %s files: %.3f s\n' "$files" "$idx_s"
errors=$(jq -s '[.[][] | .errors] | add' "$workdir"/results/*.json)
echo "errors: $errors"
[[ "$errors" == 0 ]]
