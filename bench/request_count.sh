#!/usr/bin/env bash
# request_count.sh: FUSE requests the kernel sends per operation (empty-file create, 4 KiB write,
# cold and warm stat, open+read+close, ls of a directory) on a single-node mount served by each
# transport, from the counts `cairn status --json` keeps, and the CPU the daemon spends per request
# (the on-CPU time of all its threads, from /proc/PID/task/*/schedstat). With --callgrind the daemon runs under
# valgrind's callgrind and each row also gives the instructions it executed per request (slow:
# use a small N). Needs root (drop_caches) and jq.
# usage: bench/request_count.sh [--callgrind] [BUILD_DIR] [N]   (default ./build, 500 of each)
#        TRANSPORTS="dev uring" chooses the transports (default: both).
set -euo pipefail
callgrind=0
if [[ ${1:-} == --callgrind ]]; then callgrind=1; shift; fi
B=${1:-./build}/src/cairn
n=${2:-500}
[[ -x $B ]] || { echo "request_count: no $B (build first)" >&2; exit 2; }
W=/tmp/rc
pid=
cleanup() {
  $B unmount $W/m >/dev/null 2>&1 || umount -l $W/m 2>/dev/null || true
  [[ -n $pid ]] && { kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; }
  return 0
}
trap cleanup EXIT
# The daemon's on-CPU time so far, in nanoseconds, over all its threads.
cpu() { cat /proc/$pid/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s }'; }
snap() { $B status $W/m --json | jq -c '.fuse_requests | with_entries(.value = .value.count)'; }
# Per operation: each opcode's count, then the daemon's CPU (and instructions) per request.
row() {
  local name=$1 a=$2 b=$3 c0=$4 c1=$5 ir=${6:-}
  local per total
  per=$(jq -nr --argjson a "$a" --argjson b "$b" --arg n $n '$b | to_entries | map(select(.value - ($a[.key] // 0) > 0) | "\(.key)=\(((.value - ($a[.key] // 0)) / ($n|tonumber)) * 100 | round / 100)") | join(" ")')
  total=$(jq -nr --argjson a "$a" --argjson b "$b" '[$b | to_entries[] | .value - ($a[.key] // 0)] | add')
  local line="$t $name: $per | requests/op $(echo "scale=2; $total / $n" | bc)"
  if ((total > 0)); then
    line+=" | CPU us/request $(echo "scale=1; ($c1 - $c0) / 1000 / $total" | bc)"
    [[ -n $ir ]] && line+=" | instructions/request $(echo "$ir / $total" | bc)"
  fi
  echo "$line"
}
# Runs one operation N times and prints its row.
measure() {
  local name=$1 body=$2 a b c0 c1 ir=
  [[ $callgrind == 1 ]] && callgrind_control -z $pid >/dev/null
  a=$(snap); c0=$(cpu)
  for i in $(seq $n); do eval "$body"; done
  c1=$(cpu); b=$(snap)
  if [[ $callgrind == 1 ]]; then
    callgrind_control -d $pid >/dev/null
    ir=$(grep -h '^totals:' $(ls -t $W/cg.out.* | head -1) | awk '{print $2}')
  fi
  row "$name" "$a" "$b" "$c0" "$c1" "$ir"
}
for t in ${TRANSPORTS:-dev uring}; do
  rm -rf $W && mkdir -p $W/m
  $B format $W/d >/dev/null
  run=($B mount $W/d $W/m --foreground --metrics-address '' --fuse-transport $t)
  if [[ $callgrind == 1 ]]; then
    run=(valgrind --tool=callgrind --callgrind-out-file=$W/cg.out.%p "${run[@]}")
  fi
  "${run[@]}" 2>$W/log &
  pid=$!
  for _ in $(seq 600); do mountpoint -q $W/m && break; sleep 0.1; done
  mountpoint -q $W/m || { echo "request_count: $t did not mount" >&2; cat $W/log >&2; exit 1; }
  mkdir $W/m/d
  head -c 4096 /dev/urandom >$W/block
  measure create ': > $W/m/d/f$i'
  measure "4KiB write" 'cat $W/block >> $W/m/d/f$i'
  sync; echo 3 > /proc/sys/vm/drop_caches
  measure "cold stat" 'stat -c %s $W/m/d/f$i >/dev/null'
  measure "warm stat" 'stat -c %s $W/m/d/f$i >/dev/null'
  measure "open+read+close" 'cat $W/m/d/f$i >/dev/null'
  measure "readdir (ls of $n)" 'ls $W/m/d >/dev/null'
  cleanup; pid=
done
