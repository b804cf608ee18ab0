#!/usr/bin/env bash
# request_count.sh: FUSE requests the kernel sends per operation (empty-file create, 4 KiB write,
# N 4 KiB write(2)s to one file, cold and warm stat, open+read+close, ls of a directory) on a single-node mount served by each
# transport, from the counts `cairn status --json` keeps, and the CPU the daemon spends per request
# (the on-CPU time of all its threads, from /proc/PID/task/*/schedstat) and, where perf can count
# the CPU's instructions (not in most virtual machines), the instructions it executed per request.
# (valgrind's callgrind does not serve here: 3.19 deadlocks on a daemon that stats its own mount,
# and asserts with --sim-hints=fuse-compatible.) Needs root (drop_caches) and jq.
# usage: bench/request_count.sh [BUILD_DIR] [N]   (default ./build, 500 of each operation)
#        TRANSPORTS="dev uring" chooses the transports (default: both); PERF=path/to/perf.
set -euo pipefail
perf=${PERF:-perf}
counts_instructions=0
if "$perf" stat -x, -e instructions -- true 2>&1 >/dev/null | grep -q '^[0-9]'; then
  counts_instructions=1
fi
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
  local line="$t $name: $per | requests/op $(awk -v t=$total -v n=$n 'BEGIN { printf "%.2f", t / n }')"
  if ((total > 0)); then
    line+=" | CPU us/request $(awk -v c=$((c1 - c0)) -v t=$total 'BEGIN { printf "%.1f", c / 1000 / t }')"
    [[ -n $ir ]] && line+=" | instructions/request $(awk -v i=$ir -v t=$total 'BEGIN { printf "%d", i / t }')"
  fi
  echo "$line"
}
# Runs one operation N times (or, with ONCE=1, BODY once, doing N operations) and prints its row.
measure() {
  local name=$1 body=$2 a b c0 c1 ir= perf_pid= reps=$n
  [[ ${ONCE:-0} == 1 ]] && reps=1
  a=$(snap); c0=$(cpu)
  if [[ $counts_instructions == 1 ]]; then
    "$perf" stat -x, -e instructions -p $pid -o $W/perf.out &
    perf_pid=$!
    sleep 0.5
  fi
  for i in $(seq $reps); do eval "$body"; done
  if [[ -n $perf_pid ]]; then
    kill -INT $perf_pid; wait $perf_pid || true
    ir=$(grep -m1 instructions $W/perf.out | cut -d, -f1)
  fi
  c1=$(cpu); b=$(snap)
  row "$name" "$a" "$b" "$c0" "$c1" "$ir"
}
for t in ${TRANSPORTS:-dev uring}; do
  rm -rf $W && mkdir -p $W/m
  $B format $W/d >/dev/null
  $B mount $W/d $W/m --foreground --metrics-address '' --fuse-transport $t 2>$W/log &
  pid=$!
  for _ in $(seq 600); do mountpoint -q $W/m && break; sleep 0.1; done
  mountpoint -q $W/m || { echo "request_count: $t did not mount" >&2; cat $W/log >&2; exit 1; }
  mkdir $W/m/d
  head -c 4096 /dev/urandom >$W/block
  measure create ': > $W/m/d/f$i'
  measure "4KiB write" 'cat $W/block >> $W/m/d/f$i'
  ONCE=1 measure "4KiB write(2) to one open file" \
    'dd if=/dev/zero of=$W/m/one bs=4k count=$n conv=fsync status=none'
  sync; echo 3 > /proc/sys/vm/drop_caches
  measure "cold stat" 'stat -c %s $W/m/d/f$i >/dev/null'
  measure "warm stat" 'stat -c %s $W/m/d/f$i >/dev/null'
  measure "open+read+close" 'cat $W/m/d/f$i >/dev/null'
  measure "readdir (ls of $n)" 'ls $W/m/d >/dev/null'
  cleanup; pid=
done
