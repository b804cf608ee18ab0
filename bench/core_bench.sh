#!/usr/bin/env bash
# core_bench.sh: runs Cairn's core workloads (bench/cairn_bench.cc) side by side on a plain
# directory of the local file system and on a Cairn mount, and prints one table.
#
# needs: bash, jq, fuse3 (fusermount3), util-linux (mountpoint, findmnt), coreutils
#
# Both the baseline directory (WORKDIR/ext4) and the Cairn data directory (WORKDIR/cairn-data) are
# under WORKDIR, so they sit on the same disk. Run as root for cold-cache reads: cairn_bench drops
# the page cache before the stat, epoch and checkpoint reads, which only root may do.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/core_bench.sh [options]

  --files N               files in the data set (default 100000)
  --checkpoint-size SIZE  checkpoint file size, e.g. 4GiB (default 4GiB)
  --workdir DIR           scratch directory on the disk under test (default /var/tmp/cairn-bench)
  --build DIR             CMake build directory (default ./build)
  --workloads LIST        comma-separated (default create,restat,stat,list,epoch,checkpoint)
  --only-ext4             run the baseline only, skip the Cairn mount
  --bench-bin PATH        cairn_bench binary (default BUILD/bench/cairn_bench)
  --cairn PATH            cairn binary (default BUILD/cairn, else BUILD/src/cairn)
  --results DIR           where the JSON results go (default WORKDIR/results)
  --rounds N              run ext4 and Cairn N times, alternating, and report the median of
                          each workload (default 1; this disk's speed swings between runs)
  --keep                  keep the data sets after the run (the mount is always unmounted)
  -h, --help              this text
EOF
}

die() {
  echo "core_bench: error: $*" >&2
  exit 2
}
warn() { echo "core_bench: warning: $*" >&2; }
log() { echo "== $*" >&2; }

files=100000
checkpoint_size=4GiB
workdir=/var/tmp/cairn-bench
build=./build
workloads=create,restat,stat,list,epoch,checkpoint
only_ext4=0
bench_bin=""
cairn=""
results=""
keep=0
rounds=1

while (($# > 0)); do
  case "$1" in
    --files) files="${2:?--files needs a value}"; shift 2 ;;
    --checkpoint-size) checkpoint_size="${2:?--checkpoint-size needs a value}"; shift 2 ;;
    --workdir) workdir="${2:?--workdir needs a value}"; shift 2 ;;
    --build) build="${2:?--build needs a value}"; shift 2 ;;
    --workloads) workloads="${2:?--workloads needs a value}"; shift 2 ;;
    --only-ext4) only_ext4=1; shift ;;
    --bench-bin) bench_bin="${2:?--bench-bin needs a value}"; shift 2 ;;
    --cairn) cairn="${2:?--cairn needs a value}"; shift 2 ;;
    --results) results="${2:?--results needs a value}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ "$files" =~ ^[1-9][0-9]*$ ]] || die "--files must be a positive integer, not '$files'"
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || die "--rounds must be an integer from 1 to 99, not '$rounds'"
((rounds == 1 || keep == 0)) || die "--keep keeps one round's data sets; use it with --rounds 1"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"

# Same rules as cairn_bench and cairn::ParseSize: K/KB = 1000, KiB = 1024, ...; case-insensitive.
parse_size() {
  local text="${1,,}" number suffix
  [[ "$text" =~ ^([0-9]+)([a-z]*)$ ]] || return 1
  number="${BASH_REMATCH[1]}"
  suffix="${BASH_REMATCH[2]}"
  case "$suffix" in
    "" | b) echo "$number" ;;
    k | kb) echo $((number * 1000)) ;;
    kib) echo $((number << 10)) ;;
    m | mb) echo $((number * 1000 ** 2)) ;;
    mib) echo $((number << 20)) ;;
    g | gb) echo $((number * 1000 ** 3)) ;;
    gib) echo $((number << 30)) ;;
    t | tb) echo $((number * 1000 ** 4)) ;;
    tib) echo $((number << 40)) ;;
    *) return 1 ;;
  esac
}
checkpoint_bytes="$(parse_size "$checkpoint_size")" ||
  die "bad --checkpoint-size '$checkpoint_size'"

if [[ -z "$bench_bin" ]]; then
  bench_bin="$build/bench/cairn_bench"
  [[ -x "$bench_bin" ]] || bench_bin="$build/cairn_bench"
fi
[[ -x "$bench_bin" ]] ||
  die "no cairn_bench binary in $build (build the cairn_bench target, or pass --bench-bin)"
if ((only_ext4 == 0)); then
  if [[ -z "$cairn" ]]; then
    cairn="$build/cairn"
    [[ -x "$cairn" ]] || cairn="$build/src/cairn"
  fi
  [[ -x "$cairn" ]] || die "no cairn binary in $build (pass --cairn, or --only-ext4 to skip Cairn)"
fi

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
ext4_dir="$workdir/ext4"
data_dir="$workdir/cairn-data"
mnt="$workdir/mnt"
results="${results:-$workdir/results}"
mkdir -p "$results"
rm -f "$results/ext4.json" "$results/cairn.json"

is_empty_dir() { [[ -d "$1" && -z "$(ls -A "$1")" ]]; }
# Directories this run may clean up: only ones that did not exist or were empty at the start.
require_fresh() {
  if [[ -e "$1" ]] && ! is_empty_dir "$1"; then
    die "$1 exists and is not empty; remove it or choose another --workdir"
  fi
}
require_fresh "$ext4_dir"
owned=("$ext4_dir")
if ((only_ext4 == 0)); then
  require_fresh "$data_dir"
  mountpoint -q "$mnt" 2>/dev/null && die "$mnt is already a mount point; unmount it first"
  require_fresh "$mnt"
  owned+=("$data_dir" "$mnt")
fi

# The data set averages about 128 KiB a file; one copy exists at a time (the baseline copy is
# removed before the Cairn run), plus the checkpoint and its shards (space of the unlinked
# checkpoint may not be reclaimed before the shards are written).
need_bytes=$((files * 131072 + 2 * checkpoint_bytes))
avail_bytes="$(df --output=avail -B1 "$workdir" | tail -1 | tr -d ' ')"
if ((avail_bytes < need_bytes)); then
  die "$workdir has $((avail_bytes >> 20)) MiB free, the run needs about $((need_bytes >> 20)) MiB"
fi

mounted=0
cleanup() {
  local rc=$?
  set +e
  if ((mounted)) && mountpoint -q "$mnt"; then
    log "unmounting $mnt"
    "$cairn" unmount "$mnt" || fusermount3 -u "$mnt" || warn "could not unmount $mnt"
    for _ in $(seq 50); do
      mountpoint -q "$mnt" || break
      sleep 0.2
    done
  fi
  if ((mounted)) && mountpoint -q "$mnt"; then
    warn "$mnt is still mounted; leaving $data_dir and $mnt in place"
    owned=("$ext4_dir")
  fi
  if ((keep == 0)); then
    for dir in "${owned[@]}"; do
      [[ -d "$dir" ]] && rm -rf --one-file-system "$dir"
    done
  else
    log "kept ${owned[*]} (--keep)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fs_type="$(findmnt -n -o FSTYPE --target "$workdir" 2>/dev/null || echo unknown)"
[[ "$fs_type" == ext4 ]] || warn "$workdir is on $fs_type, not ext4; the 'ext4' column is $fs_type"
((EUID == 0)) || warn "not root: the page cache cannot be dropped, reads will be warm"

log "core_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cpus; $workdir on $fs_type"
log "files $files, checkpoint $checkpoint_size, workloads $workloads"

bench_args=(--files "$files" --workloads "$workloads" --checkpoint-size "$checkpoint_size" --json)
failed=0

# Deletes of an earlier run (or of the baseline's data set, below) leave the disk trimming freed
# blocks for a while when the file system is mounted with `discard`: let that finish first.
settle() {
  sync
  sleep 5
}
# The median of each workload over the rounds: same work every round, so by seconds.
median() {
  jq -s '(.[0] | map(.workload)) as $order | add | group_by(.workload)
    | map(sort_by(.seconds) | .[(length - 1) / 2 | floor] + {rounds: length})
    | sort_by(.workload as $w | $order | index($w))' "$@"
}

run_baseline() {
  local out="$1"
  settle
  log "baseline: $bench_bin run --root $ext4_dir ${bench_args[*]}"
  mkdir -p "$ext4_dir"
  "$bench_bin" run --root "$ext4_dir" "${bench_args[@]}" >"$out" || {
    warn "cairn_bench failed on the baseline (exit $?)"
    failed=1
  }
  if ((keep == 0)); then
    rm -rf --one-file-system "$ext4_dir"
  fi
}

run_cairn() {
  local out="$1" w before after
  settle
  log "cairn: $cairn format $data_dir"
  "$cairn" format "$data_dir" >/dev/null
  mkdir -p "$mnt"
  log "cairn: $cairn mount $data_dir $mnt"
  mounted=1
  "$cairn" mount "$data_dir" "$mnt"
  mountpoint -q "$mnt" || die "$cairn mount returned but $mnt is not a mount point"
  # One workload at a time, with the daemon's FUSE request counters read before and after, so
  # the table below can say how many round trips each file cost (of the last round).
  IFS=, read -r -a names <<<"$workloads"
  echo '[]' >"$out"
  echo '[]' >"$results/cairn-requests.json"
  for w in "${names[@]}"; do
    before="$("$cairn" status --json "$mnt" | jq -c '.fuse_requests // {}')"
    log "cairn: $bench_bin run --root $mnt --workloads $w"
    "$bench_bin" run --root "$mnt" --files "$files" --workloads "$w" \
      --checkpoint-size "$checkpoint_size" --json >"$results/cairn-$w.json" || {
      warn "cairn_bench $w failed on Cairn (exit $?)"
      failed=1
    }
    after="$("$cairn" status --json "$mnt" | jq -c '.fuse_requests // {}')"
    jq -s 'add' "$out" "$results/cairn-$w.json" >"$out.new" && mv "$out.new" "$out"
    jq -n --arg w "$w" --argjson b "$before" --argjson a "$after" \
      '[{workload: $w, requests: ($a | to_entries | map(
          {key, value: {count: (.value.count - ($b[.key].count // 0)),
                        seconds: (.value.seconds - ($b[.key].seconds // 0))}})
        | map(select(.value.count > 0)) | from_entries)}]' |
      jq -s 'add' "$results/cairn-requests.json" - >"$results/cairn-requests.json.new" &&
      mv "$results/cairn-requests.json.new" "$results/cairn-requests.json"
  done
  log "cairn: $cairn status $mnt"
  "$cairn" status "$mnt" || warn "cairn status failed"
  log "cairn: $cairn unmount $mnt"
  "$cairn" unmount "$mnt" || warn "cairn unmount failed; the exit trap will retry"
  for _ in $(seq 50); do
    mountpoint -q "$mnt" || break
    sleep 0.2
  done
  mountpoint -q "$mnt" && die "$mnt is still mounted after cairn unmount"
  mounted=0
  if ((keep == 0)); then
    rm -rf --one-file-system "$data_dir"
  fi
}

ext4_rounds=()
cairn_rounds=()
for ((round = 1; round <= rounds; round++)); do
  ((rounds == 1)) || log "round $round of $rounds"
  run_baseline "$results/ext4-$round.json"
  ext4_rounds+=("$results/ext4-$round.json")
  if ((only_ext4 == 0)); then
    run_cairn "$results/cairn-$round.json"
    cairn_rounds+=("$results/cairn-$round.json")
  fi
done
median "${ext4_rounds[@]}" >"$results/ext4.json"
if ((only_ext4 == 0)); then median "${cairn_rounds[@]}" >"$results/cairn.json"; fi

# One row per workload of the baseline; ratio = cairn throughput / ext4 throughput, which is
# ext4 seconds / cairn seconds since both did the same work. Above 1 means Cairn was faster.
[[ -s "$results/ext4.json" ]] || die "no baseline results in $results/ext4.json"
cairn_results='[]'
if [[ -s "$results/cairn.json" ]]; then cairn_results="$(cat "$results/cairn.json")"; fi
table="$(jq -r -n --argjson e "$(cat "$results/ext4.json")" --argjson c "$cairn_results" '
  def mb: if .bytes > 0 then .mb_per_s else "-" end;
  $e[] as $x
  | ($c | map(select(.workload == $x.workload)) | first) as $y
  | [$x.workload, $x.files_per_s, ($x | mb),
     ($y.files_per_s // "-"), (if $y then ($y | mb) else "-" end),
     (if $y and $y.seconds > 0 then $x.seconds / $y.seconds else "-" end),
     $x.errors, ($y.errors // 0)]
  | @tsv')"

number() { if [[ "$1" == "-" ]]; then echo "-"; else LC_NUMERIC=C printf "%.${2}f" "$1"; fi; }
echo
printf "%-19s | %13s | %10s | %13s | %10s | %10s\n" \
  workload "ext4 files/s" "ext4 MB/s" "cairn files/s" "cairn MB/s" "cairn/ext4"
printf "%s\n" "--------------------+---------------+------------+---------------+------------+$(
  printf -- '-%.0s' {1..11})"
errors=0
while IFS=$'\t' read -r workload ext4_fps ext4_mbs cairn_fps cairn_mbs ratio ext4_errors \
  cairn_errors; do
  printf "%-19s | %13s | %10s | %13s | %10s | %10s\n" "$workload" "$(number "$ext4_fps" 1)" \
    "$(number "$ext4_mbs" 1)" "$(number "$cairn_fps" 1)" "$(number "$cairn_mbs" 1)" \
    "$(number "$ratio" 2)"
  errors=$((errors + ext4_errors + cairn_errors))
done <<<"$table"
if [[ -s "$results/cairn-requests.json" ]]; then
  echo
  echo "FUSE requests Cairn served per file (and mean microseconds in Cairn per request):"
  jq -r --argjson n "$files" '.[] | "  \(.workload): " + ([.requests | to_entries[]
      | "\(.key) \(.value.count / $n * 100 | round / 100) (\(.value.seconds / .value.count
        * 1e6 | round) us)"] | join(", "))' "$results/cairn-requests.json"
fi
echo
echo "files $files, checkpoint $checkpoint_size, median of $rounds round(s), $workdir on $fs_type;" \
  "JSON in $results"
if ((errors > 0 || failed)); then
  echo "core_bench: FAILED: $errors verification errors (see the messages above)" >&2
  exit 1
fi
