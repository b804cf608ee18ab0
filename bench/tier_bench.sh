#!/usr/bin/env bash
# tier_bench.sh: the object-tier benchmark (issue 3). In one run, for each added latency, it reads a
# data set that lives only in an S3 object store (s3rver) in a cold epoch (page cache dropped, every
# file read once in a random order by 16 threads, bench/cairn_bench.cc's `epoch`) through:
#
#   cairn-tiered   a Cairn file system whose object tier is s3://bench/tiered-LAT: the set is written
#                  through the mount, `cairn tier flush`, `cairn tier release`, then the epoch
#   cairn-import   a fresh Cairn file system with `cairn import s3://bench/files MNT/ds` (one object
#                  per file, uploaded with `aws s3 cp --recursive`), then the epoch
#   s3fs           s3fs-fuse mounting bench:/files (no local cache)
#   rclone         rclone mount of bench/files with --vfs-cache-mode full
#
# and, on the local disk: the same Cairn file system after `cairn tier fetch` (warm: on NVMe,
# page cache dropped) against a plain directory of the same disk (ext4). It also times
# `cairn import` against s3fs's equivalent: listing and stat-ing every file of the fresh mount.
#
# Added latency: the kernel of the development VM has no sch_netem (nor fq for EDT pacing), so
# latency is added in user space: a small Node.js TCP proxy on 127.0.0.1 (written to WORKDIR by
# this script) holds every byte going from the client to s3rver for LAT ms before forwarding it,
# and holds the first byte of a connection for one more LAT (the handshake). Responses are not
# delayed, so a request/response round trip costs LAT ms more: netem's `delay LAT` on the
# client-to-server direction only. With latency 0 the clients talk to s3rver directly.
# All traffic stays on 127.0.0.1.
#
# needs: root (drop_caches, FUSE mounts), bash, jq, node + tests/s3server (s3rver, installed by
# scripts/install-deps.sh), /usr/bin/aws (Debian awscli), /usr/bin/s3fs, /usr/bin/rclone, fuse3,
# util-linux, coreutils.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/tier_bench.sh [options]

  --files N            files in the data set (default 20000; cairn_bench's sizes, ~126 KiB mean)
  --peer-files N       s3fs and rclone read only the first N files of the set (same size
                       distribution, random order); 0: all (default 0)
  --latency LIST       added client-to-server latencies in ms, e.g. "0 10" or 0,10 (default "0 10")
  --threads T          epoch reader threads (default 16)
  --workdir DIR        scratch directory on the disk under test (default /var/tmp/tierbench)
  --build DIR          CMake build directory (default ./build)
  --epoch-timeout S    seconds before an epoch (or a listing/import) is given up: "timeout"
                       (default 900)
  --results DIR        where the JSON results and logs go (default WORKDIR/results)
  --keep               keep the data sets after the run (mounts are always unmounted)
  -h, --help           this text
EOF
}

die() {
  echo "tier_bench: error: $*" >&2
  exit 2
}
warn() { echo "tier_bench: warning: $*" >&2; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }

files=20000
peer_files=0
latencies="0 10"
threads=16
workdir=/var/tmp/tierbench
build=./build
epoch_timeout=900
results=""
keep=0

while (($# > 0)); do
  case "$1" in
    --files) files="${2:?--files needs a value}"; shift 2 ;;
    --peer-files) peer_files="${2:?--peer-files needs a value}"; shift 2 ;;
    --latency) latencies="${2?--latency needs a value}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a value}"; shift 2 ;;
    --workdir) workdir="${2:?--workdir needs a value}"; shift 2 ;;
    --build) build="${2:?--build needs a value}"; shift 2 ;;
    --epoch-timeout) epoch_timeout="${2:?--epoch-timeout needs a value}"; shift 2 ;;
    --results) results="${2:?--results needs a value}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ "$files" =~ ^[1-9][0-9]*$ ]] || die "--files must be a positive integer, not '$files'"
[[ "$peer_files" =~ ^[0-9]+$ ]] || die "--peer-files must be a number, not '$peer_files'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, not '$threads'"
[[ "$epoch_timeout" =~ ^[1-9][0-9]*$ ]] || die "--epoch-timeout must be a positive integer"
((peer_files == 0 || peer_files > files)) && peer_files=$files
read -r -a latency_list <<<"${latencies//,/ }"
((${#latency_list[@]} > 0)) || die "--latency needs at least one value"
for lat in "${latency_list[@]}"; do
  [[ "$lat" =~ ^[0-9]+$ ]] || die "--latency values are whole milliseconds, not '$lat'"
done

((EUID == 0)) || die "run as root: the epoch drops the page cache and the peers mount FUSE"

# --- the tools -------------------------------------------------------------------------------------
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_bin="$build/bench/cairn_bench"
[[ -x "$bench_bin" ]] || bench_bin="$build/cairn_bench"
[[ -x "$bench_bin" ]] || die "no cairn_bench in $build (build the cairn_bench target, or pass --build)"
cairn="$build/cairn"
[[ -x "$cairn" ]] || cairn="$build/src/cairn"
[[ -x "$cairn" ]] || die "no cairn binary in $build (build the cairn target, or pass --build)"
bench_bin="$(realpath "$bench_bin")"
cairn="$(realpath "$cairn")"
aws=/usr/bin/aws # the Debian awscli, not a shim that PATH may put first
s3fs=/usr/bin/s3fs
rclone=/usr/bin/rclone
s3rver_js="$repo/tests/s3server/node_modules/s3rver/bin/s3rver.js"
missing=()
command -v jq >/dev/null || missing+=("jq (apt-get install jq)")
command -v node >/dev/null || missing+=("node (apt-get install nodejs)")
[[ -r "$s3rver_js" ]] || missing+=("s3rver at $s3rver_js (bash scripts/install-deps.sh)")
[[ -x "$aws" ]] || missing+=("$aws (apt-get install awscli)")
[[ -x "$s3fs" ]] || missing+=("$s3fs (apt-get install s3fs)")
[[ -x "$rclone" ]] || missing+=("$rclone (apt-get install rclone)")
command -v fusermount3 >/dev/null || missing+=("fusermount3 (apt-get install fuse3)")
command -v mountpoint >/dev/null || missing+=("mountpoint (apt-get install util-linux)")
[[ -e /dev/fuse ]] || missing+=("/dev/fuse (modprobe fuse)")
if ((${#missing[@]} > 0)); then
  printf 'tier_bench: missing: %s\n' "${missing[@]}" >&2
  die "install what is missing (scripts/install-deps.sh installs all of it) and run again"
fi

# --- the work directory ----------------------------------------------------------------------------
mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
[[ -z "$(ls -A "$workdir")" ]] || die "$workdir is not empty; remove it or choose another --workdir"
results="${results:-$workdir/results}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"
ext4_dir="$workdir/ext4"
s3_dir="$workdir/s3rver"
mkdir -p "$ext4_dir" "$s3_dir"

# The set averages about 125 KiB a file. At most at once: the ext4 copy, two copies in s3rver
# (files/ and one tiered-LAT/), Cairn's tiered copy on NVMe, the import cache and rclone's cache.
need_bytes=$((files * 128000 * 6 + (1 << 30)))
avail_bytes="$(df --output=avail -B1 "$workdir" | tail -1 | tr -d ' ')"
((avail_bytes >= need_bytes)) ||
  die "$workdir has $((avail_bytes >> 20)) MiB free, the run needs about $((need_bytes >> 20)) MiB"

# --- cleanup: every mount, every process, every scratch file, on success and failure alike --------
cairn_mounts=()  # mount points to `cairn unmount`
fuse_mounts=()   # s3fs and rclone mount points to `fusermount3 -u`
pids=()          # processes this script started (s3rver, the proxy, s3fs, rclone)

# A child of this shell that has exited is a zombie until waited for; kill -0 still succeeds on it.
alive() {
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}
stop_pid() {
  local pid="$1"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      alive "$pid" || break
      sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
}
unmount_fuse() {
  local mnt="$1"
  mountpoint -q "$mnt" 2>/dev/null || return 0
  fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" ||
    warn "could not unmount $mnt"
}
unmount_cairn() {
  local mnt="$1"
  mountpoint -q "$mnt" 2>/dev/null || return 0
  "$cairn" unmount --timeout 300 "$mnt" || fusermount3 -u "$mnt" || warn "could not unmount $mnt"
  for _ in $(seq 50); do
    mountpoint -q "$mnt" || return 0
    sleep 0.2
  done
  warn "$mnt is still mounted"
}
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local mnt pid still=0
  for mnt in "${fuse_mounts[@]}"; do unmount_fuse "$mnt"; done
  for mnt in "${cairn_mounts[@]}"; do unmount_cairn "$mnt"; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  for mnt in "${fuse_mounts[@]}" "${cairn_mounts[@]}"; do
    mountpoint -q "$mnt" 2>/dev/null && still=1
  done
  if ((keep == 0 && still == 0)); then
    find "$workdir" -mindepth 1 -maxdepth 1 ! -path "$results" -exec rm -rf --one-file-system {} +
  elif ((still)); then
    warn "a mount is still in place; leaving $workdir as it is"
  else
    log "kept $workdir (--keep)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Removes a finished system's files right away, so that the disk holds few copies at once.
drop_dir() { ((keep)) || rm -rf --one-file-system "$1"; }

wait_mounted() {  # MOUNTPOINT PID WHAT
  for _ in $(seq 300); do
    mountpoint -q "$1" && return 0
    alive "$2" || die "$3 exited before $1 was mounted (log: $4)"
    sleep 0.1
  done
  die "$3 did not mount $1 within 30 s (log: $4)"
}

# --- S3: s3rver, and the delay proxy ---------------------------------------------------------------
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port on 127.0.0.1"
}
wait_port() {  # PORT PID WHAT LOG
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    alive "$2" || die "$3 exited at start; log: $(tail -5 "$4")"
    sleep 0.1
  done
  die "$3 did not listen on 127.0.0.1:$1 within 30 s; log: $(tail -5 "$4")"
}

proxy_js="$workdir/delay-proxy.js"
cat >"$proxy_js" <<'EOF'
// delay-proxy.js LISTEN_PORT UPSTREAM_PORT DELAY_MS: a TCP proxy on 127.0.0.1 that holds every
// client-to-server byte DELAY_MS before forwarding it (the first ones one DELAY_MS more, for the
// handshake), in order; server-to-client bytes pass at once. Flow control: a client whose bytes
// in flight exceed 8 MiB is paused until the upstream drains.
'use strict';
const net = require('net');
const [listenPort, upstreamPort, delayMs] = process.argv.slice(2).map(Number);
const kMaxInFlight = 8 << 20;
net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const accepted = Date.now();
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true,
                                 allowHalfOpen: true });
  const queue = [];  // {due, chunk} in arrival order; chunk null means end
  let timer = null;
  let inFlight = 0;
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (queue.length > 0 && queue[0].due <= now) {
      const { chunk } = queue.shift();
      if (chunk === null) { upstream.end(); continue; }
      inFlight -= chunk.length;
      upstream.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(flush, queue[0].due - now);
    maybeResume();
  };
  const maybeResume = () => {
    if (client.isPaused() && inFlight + upstream.writableLength < kMaxInFlight) client.resume();
  };
  const push = (chunk) => {
    const due = Math.max(Date.now(), accepted + delayMs) + delayMs;
    queue.push({ due, chunk });
    if (chunk !== null) inFlight += chunk.length;
    if (timer === null) timer = setTimeout(flush, Math.max(0, queue[0].due - Date.now()));
    if (inFlight + upstream.writableLength >= kMaxInFlight) client.pause();
  };
  upstream.on('drain', maybeResume);
  client.on('data', push);
  client.on('end', () => push(null));
  upstream.pipe(client);
  const kill = () => { client.destroy(); upstream.destroy(); if (timer) clearTimeout(timer); };
  client.on('error', kill);
  upstream.on('error', kill);
  client.on('close', () => { if (!upstream.destroyed && queue.length === 0) upstream.end(); });
  upstream.on('close', () => client.end());
}).listen(listenPort, '127.0.0.1');
EOF

s3rver_pid=""
proxy_pid=""
endpoint=""
start_s3() {  # LATENCY_MS
  local lat="$1" port log="$results/s3rver-lat$1.log"
  port="$(free_port)"
  NODE_OPTIONS=--openssl-legacy-provider node "$s3rver_js" -d "$s3_dir" -a 127.0.0.1 -p "$port" \
    --configure-bucket bench --silent </dev/null >>"$log" 2>&1 &
  s3rver_pid=$!
  pids+=("$s3rver_pid")
  wait_port "$port" "$s3rver_pid" s3rver "$log"
  endpoint="http://127.0.0.1:$port"
  if ((lat > 0)); then
    local proxy_port plog="$results/proxy-lat$lat.log"
    proxy_port="$(free_port)"
    node "$proxy_js" "$proxy_port" "$port" "$lat" </dev/null >>"$plog" 2>&1 &
    proxy_pid=$!
    pids+=("$proxy_pid")
    wait_port "$proxy_port" "$proxy_pid" "the delay proxy" "$plog"
    endpoint="http://127.0.0.1:$proxy_port"
  fi
  export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
  log "s3rver on 127.0.0.1:$port (pid $s3rver_pid); clients use $endpoint (+$lat ms)"
}
stop_s3() {
  [[ -n "$proxy_pid" ]] && stop_pid "$proxy_pid"
  [[ -n "$s3rver_pid" ]] && stop_pid "$s3rver_pid"
  proxy_pid=""
  s3rver_pid=""
}
# Nothing here may go through a proxy of the environment. The endpoints are plain http: a CA bundle
# from the environment is of no use, and rclone refuses to start with one (LoadCustomCABundleError).
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

# --- results ---------------------------------------------------------------------------------------
# results/rows.tsv: latency, system, files, files/s, MB/s, seconds, status (ok|timeout|failed|errors)
rows="$results/rows.tsv"
: >"$rows"
add_row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$rows"; }

# epoch LATENCY SYSTEM ROOT NFILES: a cold epoch (cairn_bench drops the page cache first).
epoch() {
  local lat="$1" system="$2" root="$3" n="$4" json="$results/epoch-lat$1-$2.json" rc=0
  log "epoch: $system, $n files under $root, $threads threads"
  timeout -k 30 "$epoch_timeout" "$bench_bin" run --root "$root" --files "$n" --workloads epoch \
    --threads-read "$threads" --json >"$json" 2>"$results/epoch-lat$lat-$system.log" || rc=$?
  cat "$results/epoch-lat$lat-$system.log" >&2
  if ((rc == 124 || rc == 137)); then
    warn "$system: epoch timed out after $epoch_timeout s"
    add_row "$lat" "$system" "$n" - - "$epoch_timeout" timeout
    return 0
  fi
  if ! jq -e '.[0].files' "$json" >/dev/null 2>&1; then
    warn "$system: epoch failed (exit $rc), no result"
    add_row "$lat" "$system" "$n" - - - failed
    return 0
  fi
  local status=ok
  ((rc == 0)) || status=errors
  [[ "$status" == ok ]] || warn "$system: epoch had errors (exit $rc), see $results/epoch-lat$lat-$system.log"
  jq -r --arg lat "$lat" --arg sys "$system" --arg st "$status" \
    '.[0] | [$lat, $sys, .files, .files_per_s, .mb_per_s, .seconds, $st] | @tsv' "$json" >>"$rows"
}

# timed SECONDS_VAR COMMAND...: runs it under the epoch timeout; sets SECONDS_VAR (or "timeout").
timed() {
  local __var="$1" start end rc=0
  shift
  start="$(date +%s.%N)"
  timeout -k 30 "$epoch_timeout" "$@" || rc=$?
  end="$(date +%s.%N)"
  if ((rc == 124 || rc == 137)); then
    printf -v "$__var" timeout
    return 0
  fi
  ((rc == 0)) || return "$rc"
  printf -v "$__var" '%s' "$(echo "$end - $start" | bc -l)"
}
command -v bc >/dev/null || die "bc is not installed (apt-get install bc)"

fs_type="$(findmnt -n -o FSTYPE --target "$workdir" 2>/dev/null || echo unknown)"
log "tier_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cpus; $workdir on $fs_type"
log "files $files (peers: $peer_files), latencies ${latency_list[*]} ms, $threads threads"

# --- the data set, once: on the local disk (the ext4 baseline and the upload's source) -------------
log "generate: $bench_bin generate --root $ext4_dir/ds --files $files"
"$bench_bin" generate --root "$ext4_dir/ds" --files "$files" >&2
set_bytes="$(du -sb "$ext4_dir/ds" | cut -f1)"
log "data set: $files files, $((set_bytes >> 20)) MiB"

uploaded=0
upload_s="" flush_s="" fetch_s="" import_s="" list_s=""
for lat in "${latency_list[@]}"; do
  log "===== latency +$lat ms"
  start_s3 "$lat"

  # ---- one object per file, for cairn import, s3fs and rclone (once; the server keeps it)
  if ((uploaded == 0)); then
    log "upload: aws s3 cp --recursive $ext4_dir/ds s3://bench/files/"
    timed upload_s "$aws" --endpoint-url "$endpoint" s3 cp --recursive --only-show-errors \
      "$ext4_dir/ds" s3://bench/files/ || die "aws s3 cp failed"
    [[ "$upload_s" != timeout ]] || die "aws s3 cp did not finish within $epoch_timeout s"
    log "upload took $upload_s s"
    uploaded=1
  fi

  # ---- ext4 (the warm baseline)
  epoch "$lat" ext4 "$ext4_dir/ds" "$files"

  # ---- Cairn, tiered to S3
  data="$workdir/tiered-data"
  mnt="$workdir/tiered-mnt"
  mkdir -p "$mnt"
  log "cairn-tiered: format, s3://bench/tiered-$lat"
  "$cairn" format "$data" --object-store "s3://bench/tiered-$lat" --segment-size 64MiB \
    --tiering-delay 0s --seal-timeout 1s >&2
  cairn_mounts+=("$mnt")
  "$cairn" mount "$data" "$mnt" >&2
  mountpoint -q "$mnt" || die "cairn mount returned but $mnt is not a mount point"
  log "cairn-tiered: write the set through the mount"
  "$bench_bin" generate --root "$mnt/ds" --files "$files" >&2 ||
    die "cairn_bench generate failed on the Cairn mount; see $data/cairn.log"
  timed flush_s "$cairn" tier flush --timeout "$epoch_timeout" "$mnt" >&2 ||
    die "cairn tier flush failed; see $data/cairn.log"
  log "cairn-tiered: flush took $flush_s s"
  "$cairn" tier release "$mnt" >&2 || die "cairn tier release failed; see $data/cairn.log"
  "$cairn" tier location "$mnt" >&2 || warn "cairn tier location failed"
  "$cairn" tier status "$mnt" >"$results/tier-status-released-lat$lat.txt" 2>&1 || true
  epoch "$lat" cairn-tiered "$mnt/ds" "$files"
  # What the cold epoch downloaded (requests, bytes, mean latency).
  "$cairn" tier status "$mnt" >"$results/tier-status-cold-lat$lat.txt" 2>&1 || true
  log "cairn-tiered: tier fetch (warm onto NVMe)"
  timed fetch_s "$cairn" tier fetch "$mnt/ds" >&2 || die "cairn tier fetch failed; see $data/cairn.log"
  log "cairn-tiered: fetch took $fetch_s s"
  "$cairn" tier location "$mnt" >&2 || warn "cairn tier location failed"
  epoch "$lat" cairn-warm "$mnt/ds" "$files"
  "$cairn" status "$mnt" >"$results/status-tiered-lat$lat.txt" 2>&1 || true
  unmount_cairn "$mnt"
  cp "$data/cairn.log" "$results/cairn-tiered-lat$lat.log" 2>/dev/null || true
  drop_dir "$data"

  # ---- Cairn over an import of bench/files
  data="$workdir/import-data"
  mnt="$workdir/import-mnt"
  mkdir -p "$mnt"
  log "cairn-import: format (file:// store), mount, cairn import s3://bench/files"
  "$cairn" format "$data" >&2
  cairn_mounts+=("$mnt")
  "$cairn" mount "$data" "$mnt" >&2
  mountpoint -q "$mnt" || die "cairn mount returned but $mnt is not a mount point"
  timed import_s "$cairn" import --json s3://bench/files "$mnt/ds" \
    >"$results/import-lat$lat.json" || die "cairn import failed; see $data/cairn.log"
  cat "$results/import-lat$lat.json" >&2
  log "cairn-import: import took $import_s s"
  add_row "$lat" import-cairn "$files" - - "$import_s" "$([[ $import_s == timeout ]] && echo timeout || echo ok)"
  if [[ "$import_s" != timeout ]]; then
    epoch "$lat" cairn-import "$mnt/ds" "$files"
    "$cairn" tier status "$mnt" >"$results/tier-status-import-lat$lat.txt" 2>&1 || true
  else
    add_row "$lat" cairn-import "$files" - - - "no import"
  fi
  "$cairn" status "$mnt" >"$results/status-import-lat$lat.txt" 2>&1 || true
  unmount_cairn "$mnt"
  cp "$data/cairn.log" "$results/cairn-import-lat$lat.log" 2>/dev/null || true
  drop_dir "$data"

  # ---- s3fs
  mnt="$workdir/s3fs-mnt"
  mkdir -p "$mnt"
  printf 'S3RVER:S3RVER\n' >"$workdir/s3fs-passwd"
  chmod 600 "$workdir/s3fs-passwd"
  slog="$results/s3fs-lat$lat.log"
  log "s3fs: mount bench:/files"
  "$s3fs" bench:/files "$mnt" -f -o "url=$endpoint,use_path_request_style,passwd_file=$workdir/s3fs-passwd" \
    -o endpoint=us-east-1,dbglevel=warn </dev/null >>"$slog" 2>&1 &
  s3fs_pid=$!
  pids+=("$s3fs_pid")
  fuse_mounts+=("$mnt")
  wait_mounted "$mnt" "$s3fs_pid" s3fs "$slog"
  # s3fs's "import": list the fresh mount and stat every file (find -printf %s stats each one).
  log "s3fs: list and stat every file"
  list_s=""
  timed list_s bash -c 'find "$1" -type f -printf "%s\n" | wc -l >"$2"' _ "$mnt" \
    "$results/s3fs-count-lat$lat" || warn "s3fs listing failed"
  listed="$(cat "$results/s3fs-count-lat$lat" 2>/dev/null || echo 0)"
  log "s3fs: listing took ${list_s:-?} s, $listed files"
  ((listed == files)) || warn "s3fs listed $listed files, expected $files"
  add_row "$lat" list-s3fs "$listed" - - "${list_s:-failed}" ok
  epoch "$lat" s3fs "$mnt" "$peer_files"
  unmount_fuse "$mnt"
  stop_pid "$s3fs_pid"

  # ---- rclone mount, full VFS cache
  mnt="$workdir/rclone-mnt"
  mkdir -p "$mnt" "$workdir/rclone-cache"
  : >"$workdir/rclone.conf"
  rlog="$results/rclone-lat$lat.log"
  log "rclone: mount bench/files, --vfs-cache-mode full"
  RCLONE_CONFIG_BENCHS3_TYPE=s3 RCLONE_CONFIG_BENCHS3_PROVIDER=Other \
    RCLONE_CONFIG_BENCHS3_ENDPOINT="$endpoint" RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=S3RVER \
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_BENCHS3_REGION=us-east-1 \
    RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE=true \
    "$rclone" mount benchs3:bench/files "$mnt" --config "$workdir/rclone.conf" \
    --vfs-cache-mode full --cache-dir "$workdir/rclone-cache" --log-level NOTICE \
    </dev/null >>"$rlog" 2>&1 &
  rclone_pid=$!
  pids+=("$rclone_pid")
  fuse_mounts+=("$mnt")
  wait_mounted "$mnt" "$rclone_pid" rclone "$rlog"
  epoch "$lat" rclone "$mnt" "$peer_files"
  unmount_fuse "$mnt"
  stop_pid "$rclone_pid"
  drop_dir "$workdir/rclone-cache"

  stop_s3
  # The tiered copy of this latency is no longer needed.
  ((keep)) || rm -rf --one-file-system "$s3_dir/bench/tiered-$lat"
done

# --- the tables ------------------------------------------------------------------------------------
number() { if [[ "$1" == "-" || -z "$1" ]]; then echo "-"; else LC_NUMERIC=C printf "%.${2}f" "$1"; fi; }
# field LATENCY SYSTEM COLUMN (4 files/s, 5 MB/s, 6 seconds, 7 status, 3 files)
field() { awk -F'\t' -v l="$1" -v s="$2" -v c="$3" '$1 == l && $2 == s { print $c; exit }' "$rows"; }
ratio() {  # A B: A / B, or "-"
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && [[ "$(echo "$2 > 0" | bc -l)" == 1 ]]; then
    LC_NUMERIC=C printf "%.2f" "$(echo "$1 / $2" | bc -l)"
  else
    echo "-"
  fi
}
show() {  # a files/s or MB/s cell: the number, or the status when there is none
  local value status
  value="$(field "$1" "$2" "$3")"
  status="$(field "$1" "$2" 7)"
  if [[ "$value" =~ ^[0-9.]+$ ]]; then
    number "$value" 1
    [[ "$status" == ok ]] || echo -n " ($status)"
  else
    echo "${status:--}"
  fi
}

failed=0
for lat in "${latency_list[@]}"; do
  s3fs_fps="$(field "$lat" s3fs 4)"
  rclone_fps="$(field "$lat" rclone 4)"
  echo
  echo "cold epoch, s3rver +$lat ms: $files files ($((set_bytes >> 20)) MiB), $threads threads" \
    "$( ((peer_files < files)) && echo "; s3fs and rclone read the first $peer_files files")"
  printf "%-14s | %8s | %12s | %9s | %8s | %9s | %s\n" \
    system files files/s MB/s "vs s3fs" "vs rclone" target
  printf -- "---------------+----------+--------------+-----------+----------+-----------+---------\n"
  for system in cairn-tiered cairn-import s3fs rclone; do
    fps="$(field "$lat" "$system" 4)"
    target=""
    [[ "$system" == cairn-tiered ]] && target=">= 10x s3fs, >= 3x rclone"
    printf "%-14s | %8s | %12s | %9s | %8s | %9s | %s\n" "$system" \
      "$(field "$lat" "$system" 3)" "$(show "$lat" "$system" 4)" "$(show "$lat" "$system" 5)" \
      "$(ratio "$fps" "$s3fs_fps")" "$(ratio "$fps" "$rclone_fps")" "$target"
  done
  import_s="$(field "$lat" import-cairn 6)"
  list_s="$(field "$lat" list-s3fs 6)"
  per_k() { if [[ "$1" =~ ^[0-9.]+$ ]]; then LC_NUMERIC=C printf "%.3f" "$(echo "$1 * 1000 / $files" | bc -l)"; else echo "${1:--}"; fi; }
  echo
  printf "%-40s | %14s | %s\n" "metadata of $files keys" "s per 1000 keys" "seconds"
  printf "%-40s | %14s | %s\n" "cairn import s3://bench/files" "$(per_k "$import_s")" "$(number "$import_s" 2)"
  printf "%-40s | %14s | %s\n" "s3fs: find -printf %s (list + stat all)" "$(per_k "$list_s")" "$(number "$list_s" 2)"
  echo "cairn import speed / s3fs: $(ratio "$list_s" "$import_s")x   (target >= 1.5x)"
  echo
  warm_fps="$(field "$lat" cairn-warm 4)"
  ext4_fps="$(field "$lat" ext4 4)"
  printf "%-22s | %12s | %9s\n" "warm epoch" files/s MB/s
  printf "%-22s | %12s | %9s\n" "cairn (tier fetch)" "$(show "$lat" cairn-warm 4)" "$(show "$lat" cairn-warm 5)"
  printf "%-22s | %12s | %9s\n" "ext4 ($fs_type)" "$(show "$lat" ext4 4)" "$(show "$lat" ext4 5)"
  echo "cairn warm / ext4: $(ratio "$warm_fps" "$ext4_fps")x   (target >= 0.8x)"
done
echo
echo "rows: $rows; logs in $results"
if grep -qP '\t(errors|failed)$' "$rows"; then
  echo "tier_bench: FAILED: an epoch reported errors or failed (see the logs above)" >&2
  failed=1
fi
exit "$failed"
