#!/usr/bin/env bash
# snap_bench.sh: the snapshot benchmark (issue 4). In one run, on a data set of --files files
# (default 100,000; ~32 KiB mean, see below) written through a Cairn mount whose object store is
# s3://bench/cairn on s3rver, it measures:
#
#   1. create        wall time of `cairn snap create MNT s1` right after the set was written
#                    (it syncs the mount, checkpoints the metadata and pins the segments)
#   2. push          `cairn snap push MNT s1 --json`, page cache dropped: wall time, bytes/s
#                    (bytes_uploaded / seconds) and objects, against `/usr/bin/aws s3 cp
#                    --recursive` of the SAME files from a plain directory of the same disk to
#                    s3://bench/awscli/ (one object per file), also with the page cache dropped;
#                    the local reference is `cp -a` of that directory on the same disk (+ sync)
#   3. restore       from the start of `cairn snap restore s3://bench/cairn s1 NEW_DIR` to the
#                    return of `cairn mount NEW_DIR MNT2` (page cache dropped first), also per
#                    million files
#   4. first byte    right after that mount, page cache dropped, timed inside one Python
#                    process (a fork and exec costs ~20 ms on the development VM): open + read of
#                    1 byte of a file in the middle of the tree (its data only in S3), then a read
#                    of the whole file, then a whole read of another file (in another directory)
#                    that nothing touched yet; the same on the plain ext4 directory as the local
#                    reference. Also a plain `head -c1` of a third file (exec included). The files
#                    read are compared with the plain copy afterwards; the restored tree is counted
#   5. incremental   1 % of the files (every 100th) overwritten in place with new content of the
#                    same size through MNT, `cairn snap create MNT s2`, `cairn snap push MNT s2`:
#                    wall time, bytes and objects uploaded, bytes_uploaded(s2) / bytes_uploaded(s1).
#                    The snapshot view MNT/.snapshots/s1 must still show the old content.
#
# The data set (written by a small Python generator this script puts in WORKDIR, 4 processes):
# file i is DIR/gGGG/dDDDDD/fIIIIIII (100 files a directory, 100 directories a group); 60 % of the
# files are 4,097-8,192 bytes (above the 4 KiB inline limit, so every byte goes to segments), 40 %
# are 16-128 KiB, uniform; mean 33,177 bytes expected (33,266 measured at 100,000 files). Sizes and contents come from splitmix64 of the index
# and a 64 MiB pool of seeded random bytes: the same bytes on every run, incompressible, and no
# two files alike. The set is written twice, to a plain directory (ext4 under WORKDIR) and through
# the Cairn mount; s3rver's objects also live under WORKDIR, on the same disk.
#
# The Cairn file system is formatted with --tiering-delay 1h so that the push itself uploads the
# segments (the tier would otherwise upload them in the background before the push starts).
# All traffic stays on 127.0.0.1. Every mount and process this script starts is unmounted and
# stopped on exit, on failure too; WORKDIR is emptied but for the results unless --keep.
#
# needs: root (drop_caches, FUSE mounts), bash, jq, bc, /usr/bin/python3, node + tests/s3server
# (s3rver, installed by scripts/install-deps.sh), /usr/bin/aws (Debian awscli), fuse3, util-linux,
# coreutils.
# shellcheck disable=SC2154  # took_ms and took_s assign their variable with printf -v
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/snap_bench.sh [options]

  --files N            files in the data set (default 100000; ~32 KiB mean, ~3.1 GiB at 100000)
  --workdir DIR        scratch directory on the disk under test (default /var/tmp/snapbench)
  --build DIR          CMake build directory (default ./build)
  --step-timeout S     seconds before one step (a write, push, upload, restore) is given up
                       (default 1800)
  --results DIR        where the JSON results and logs go (default WORKDIR/results)
  --keep               keep the data sets after the run (mounts are always unmounted)
  -h, --help           this text
EOF
}

die() {
  echo "snap_bench: error: $*" >&2
  exit 2
}
warn() { echo "snap_bench: warning: $*" >&2; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }

files=100000
workdir=/var/tmp/snapbench
build=./build
step_timeout=1800
results=""
keep=0

while (($# > 0)); do
  case "$1" in
    --files) files="${2:?--files needs a value}"; shift 2 ;;
    --workdir) workdir="${2:?--workdir needs a value}"; shift 2 ;;
    --build) build="${2:?--build needs a value}"; shift 2 ;;
    --step-timeout) step_timeout="${2:?--step-timeout needs a value}"; shift 2 ;;
    --results) results="${2:?--results needs a value}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ "$files" =~ ^[1-9][0-9]*$ ]] || die "--files must be a positive integer, not '$files'"
((files >= 200)) || die "--files must be at least 200 (the first-byte files and 1 % to modify)"
[[ "$step_timeout" =~ ^[1-9][0-9]*$ ]] || die "--step-timeout must be a positive integer"

((EUID == 0)) || die "run as root: the script drops the page cache and mounts FUSE"

# --- the tools -------------------------------------------------------------------------------------
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cairn="$build/cairn"
[[ -x "$cairn" ]] || cairn="$build/src/cairn"
[[ -x "$cairn" ]] || die "no cairn binary in $build (build the cairn target, or pass --build)"
cairn="$(realpath "$cairn")"
aws=/usr/bin/aws         # the Debian awscli, not a shim that PATH may put first
python=/usr/bin/python3  # likewise
s3rver_js="$repo/tests/s3server/node_modules/s3rver/bin/s3rver.js"
missing=()
command -v jq >/dev/null || missing+=("jq (apt-get install jq)")
command -v bc >/dev/null || missing+=("bc (apt-get install bc)")
command -v node >/dev/null || missing+=("node (apt-get install nodejs)")
[[ -r "$s3rver_js" ]] || missing+=("s3rver at $s3rver_js (bash scripts/install-deps.sh)")
[[ -x "$aws" ]] || missing+=("$aws (apt-get install awscli)")
[[ -x "$python" ]] || missing+=("$python (apt-get install python3)")
command -v fusermount3 >/dev/null || missing+=("fusermount3 (apt-get install fuse3)")
command -v mountpoint >/dev/null || missing+=("mountpoint (apt-get install util-linux)")
[[ -e /dev/fuse ]] || missing+=("/dev/fuse (modprobe fuse)")
if ((${#missing[@]} > 0)); then
  printf 'snap_bench: missing: %s\n' "${missing[@]}" >&2
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

# At most at once: the plain directory and its cp -a copy, Cairn's segments, two copies in s3rver
# (segments and one object per file), the restored file system's few fetched segments.
need_bytes=$((files * 34000 * 6 + (2 << 30)))
avail_bytes="$(df --output=avail -B1 "$workdir" | tail -1 | tr -d ' ')"
((avail_bytes >= need_bytes)) ||
  die "$workdir has $((avail_bytes >> 20)) MiB free, the run needs about $((need_bytes >> 20)) MiB"

# --- cleanup: every mount, every process, every scratch file, on success and failure alike --------
cairn_mounts=()  # mount points to `cairn unmount`
pids=()          # processes this script started (s3rver)

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
unmount_cairn() {
  local mnt="$1"
  mountpoint -q "$mnt" 2>/dev/null || return 0
  "$cairn" unmount --timeout 300 "$mnt" || fusermount3 -u "$mnt" || fusermount3 -uz "$mnt" ||
    warn "could not unmount $mnt"
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
  local mnt still=0 i
  # Cairn first: its daemons may still talk to s3rver while they unmount.
  for mnt in "${cairn_mounts[@]}"; do unmount_cairn "$mnt"; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  for mnt in "${cairn_mounts[@]}"; do
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

# drop_caches: sync, drop the page cache, and read back the few tools that time or run the timed
# commands (dropping the cache evicts their binaries too; loading them is not what we measure).
drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
  head -c0 /dev/null
  cat /dev/null
  echo 1 | bc -l >/dev/null
  "$cairn" --version >/dev/null 2>&1 || true
  "$aws" --version >/dev/null 2>&1 || true
}

# mark; COMMAND; took_ms VAR (or took_s VAR): the wall time of COMMAND. The clock is bash 5's
# EPOCHREALTIME, read in this shell (no fork: on this VM a fork and exec costs about 20 ms).
mark() { t0="${EPOCHREALTIME/[.,]/}"; }
took_ms() {
  local end="${EPOCHREALTIME/[.,]/}"
  printf -v "$1" '%s' "$(LC_NUMERIC=C printf '%.1f' "$(echo "($end - $t0) / 1000" | bc -l)")"
}
took_s() {
  local end="${EPOCHREALTIME/[.,]/}"
  printf -v "$1" '%s' "$(LC_NUMERIC=C printf '%.3f' "$(echo "($end - $t0) / 1000000" | bc -l)")"
}
div() {  # A B [DECIMALS]: A / B, or null
  if [[ "$1" =~ ^[0-9.e+-]+$ && "$2" =~ ^[0-9.e+-]+$ ]] && [[ "$(echo "$2 != 0" | bc -l)" == 1 ]]; then
    LC_NUMERIC=C printf "%.${3:-3}f" "$(echo "$1 / $2" | bc -l)"
  else
    echo null
  fi
}

# limit COMMAND...: runs it under the step timeout; a timeout is an error here (every number of
# this benchmark depends on the steps before it).
limit() {
  local rc=0
  timeout -k 30 "$step_timeout" "$@" || rc=$?
  ((rc == 124 || rc == 137)) && die "timed out after $step_timeout s: $*"
  return "$rc"
}

# --- S3: one s3rver on 127.0.0.1 -------------------------------------------------------------------
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
# Nothing here may go through a proxy of the environment; the endpoint is plain http.
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

s3_port="$(free_port)"
s3_log="$results/s3rver.log"
NODE_OPTIONS=--openssl-legacy-provider node "$s3rver_js" -d "$s3_dir" -a 127.0.0.1 -p "$s3_port" \
  --configure-bucket bench --silent </dev/null >>"$s3_log" 2>&1 &
s3rver_pid=$!
pids+=("$s3rver_pid")
wait_port "$s3_port" "$s3rver_pid" s3rver "$s3_log"
endpoint="http://127.0.0.1:$s3_port"
export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
url=s3://bench/cairn
log "s3rver on $endpoint (pid $s3rver_pid), objects in $s3_dir"

# s3_objects PREFIX: objects s3rver holds under bench/PREFIX (counted on its disk: s3rver lists a
# prefix by walking its directories, and 100,000 keys is slow to list through the API).
s3_objects() { find "$s3_dir/bench/$1" -type f -name '*._S3rver_object' 2>/dev/null | wc -l; }

# --- the data set generator ------------------------------------------------------------------------
gen_py="$workdir/snapgen.py"
cat >"$gen_py" <<'EOF'
# snapgen.py ROOT FILES MODE [WORKERS]: writes (MODE=create) the benchmark's data set under ROOT,
# or (MODE=modify) overwrites every 100th file (i % 100 == 50) in place with new content of the
# same size (version 2). MODE=path I prints the relative path of file I; MODE=size I its size;
# MODE=pick I prints the first file at index >= I that is 16 KiB or more; MODE=read A B times
# reads of files A and B (see timed_reads). Prints a JSON summary.
import json, os, sys, time, random
import multiprocessing
from multiprocessing import Process, Queue

MASK = (1 << 64) - 1
def mix64(x):
    x = (x + 0x9e3779b97f4a7c15) & MASK
    x ^= x >> 30; x = (x * 0xbf58476d1ce4e5b9) & MASK
    x ^= x >> 27; x = (x * 0x94d049bb133111eb) & MASK
    return x ^ (x >> 31)

POOL_SIZE = 64 << 20
def size_of(i):
    h = mix64(i ^ 0x73697a65)
    if h % 1000 < 600:
        return 4097 + (h >> 20) % 4096            # 4,097-8,192 bytes
    return 16384 + (h >> 20) % (131072 - 16384 + 1)  # 16-128 KiB

def rel_path(i):
    return "g%03d/d%05d/f%07d" % (i // 10000, i // 100, i)

def content(pool, i, version):
    n = size_of(i)
    head = b"cairn snap_bench file %d version %d\n" % (i, version)
    off = mix64((i << 8) | version) % (POOL_SIZE - n)
    return (head + pool[off:off + n - len(head)])[:n]

POOL = None  # made once before the workers fork, shared by them

def work(root, files, mode, w, workers, q):
    pool = POOL
    count = nbytes = 0
    ndirs = (files + 99) // 100
    for d in range(w, ndirs, workers):
        if mode == "create":
            os.makedirs(os.path.join(root, "g%03d/d%05d" % (d // 100, d)), exist_ok=True)
        for i in range(d * 100, min(files, d * 100 + 100)):
            if mode == "create":
                data = content(pool, i, 1)
                with open(os.path.join(root, rel_path(i)), "wb") as f:
                    f.write(data)
            elif i % 100 == 50:
                data = content(pool, i, 2)
                fd = os.open(os.path.join(root, rel_path(i)), os.O_WRONLY)
                try:
                    assert os.pwrite(fd, data, 0) == len(data)
                finally:
                    os.close(fd)
            else:
                continue
            count += 1
            nbytes += len(data)
    q.put((count, nbytes))

def read_all(fd):
    n = 0
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return n
        n += len(b)

def timed_reads(first, other):
    # Page cache dropped here, after this process has started; then open + read(1) of FIRST (the
    # first byte), the whole of FIRST again from offset 0, and OTHER whole from open to EOF.
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    t0 = time.perf_counter()
    fd = os.open(first, os.O_RDONLY)
    assert len(os.read(fd, 1)) == 1
    t1 = time.perf_counter()
    os.lseek(fd, 0, os.SEEK_SET)
    n1 = read_all(fd)
    t2 = time.perf_counter()
    os.close(fd)
    t3 = time.perf_counter()
    fd = os.open(other, os.O_RDONLY)
    n2 = read_all(fd)
    os.close(fd)
    t4 = time.perf_counter()
    assert n1 == os.stat(first).st_size and n2 == os.stat(other).st_size
    ms = lambda a, b: round((b - a) * 1000, 2)
    return {"first_byte_ms": ms(t0, t1), "whole_after_first_byte_ms": ms(t1, t2),
            "first_bytes": n1, "other_whole_ms": ms(t3, t4), "other_bytes": n2}

def main():
    root, files, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "read":
        print(json.dumps(timed_reads(sys.argv[4], sys.argv[5])))
        return
    if mode in ("path", "size", "pick"):
        i = int(sys.argv[4])
        if mode == "pick":
            while size_of(i) < 16384:
                i += 1
            print(i)
        else:
            print(rel_path(i) if mode == "path" else size_of(i))
        return
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    global POOL
    multiprocessing.set_start_method("fork")
    POOL = random.Random(20261127).randbytes(POOL_SIZE)
    q = Queue()
    start = time.monotonic()
    procs = [Process(target=work, args=(root, files, mode, w, workers, q)) for w in range(workers)]
    for p in procs: p.start()
    count = nbytes = 0
    for _ in procs:
        c, b = q.get()
        count += c; nbytes += b
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit("a writer failed")
    secs = time.monotonic() - start
    print(json.dumps({"mode": mode, "files": count, "bytes": nbytes, "seconds": round(secs, 3)}))

main()
EOF
gen() { "$python" "$gen_py" "$@"; }

# --- the run ---------------------------------------------------------------------------------------
fs_type="$(findmnt -n -o FSTYPE --target "$workdir" 2>/dev/null || echo unknown)"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
run_start="${EPOCHREALTIME/[.,]/}"
log "snap_bench: $started $(uname -r) $(nproc) cpus; $workdir on $fs_type; $files files"

# ---- the plain directory (the aws s3 cp source and the local reference)
log "write the set to the plain directory $ext4_dir/ds"
mkdir -p "$ext4_dir/ds"
limit "$python" "$gen_py" "$ext4_dir/ds" "$files" create >"$results/write-ext4.json"
set_bytes="$(jq .bytes "$results/write-ext4.json")"
log "plain: $(jq -c . "$results/write-ext4.json") ($((set_bytes >> 20)) MiB)"

# ---- the Cairn file system
data="$workdir/cairn-data"
mnt="$workdir/mnt"
mkdir -p "$mnt"
log "cairn format $data --object-store $url --tiering-delay 1h; mount $mnt"
"$cairn" format "$data" --object-store "$url" --tiering-delay 1h >&2
cairn_mounts+=("$mnt")
"$cairn" mount "$data" "$mnt" >&2
mountpoint -q "$mnt" || die "cairn mount returned but $mnt is not a mount point"
log "write the set through the mount"
mkdir -p "$mnt/ds"
limit "$python" "$gen_py" "$mnt/ds" "$files" create >"$results/write-cairn.json" ||
  die "writing through the Cairn mount failed; see $data/cairn.log"
log "cairn: $(jq -c . "$results/write-cairn.json")"
[[ "$(jq .bytes "$results/write-cairn.json")" == "$set_bytes" ]] || die "the two writes differ in bytes"

# ---- 1. snap create, right after the write
log "1. cairn snap create $mnt s1"
mark
limit "$cairn" snap create "$mnt" s1 --json >"$results/create-s1.json" || die "snap create s1 failed"
took_ms create_ms
log "create s1: $create_ms ms $(jq -c . "$results/create-s1.json")"
[[ -d "$mnt/.snapshots/s1/ds" ]] || die "$mnt/.snapshots/s1/ds does not exist"

# ---- 2. push s1 vs aws s3 cp --recursive vs cp -a
log "2a. local reference: cp -a of the plain directory (+ sync), page cache dropped"
drop_caches
mark
limit cp -a "$ext4_dir/ds" "$ext4_dir/ds-copy"
sync
took_s cp_s
rm -rf --one-file-system "$ext4_dir/ds-copy"
log "cp -a: $cp_s s"

log "2b. cairn snap push $mnt s1, page cache dropped"
drop_caches
mark
limit "$cairn" snap push "$mnt" s1 --json >"$results/push-s1.json" ||
  die "snap push s1 failed; see $data/cairn.log"
took_s push_wall_s
log "push s1: $push_wall_s s $(jq -c . "$results/push-s1.json")"
push_bytes="$(jq .bytes_uploaded "$results/push-s1.json")"
push_secs="$(jq .seconds "$results/push-s1.json")"
push_objects="$(jq .objects_uploaded "$results/push-s1.json")"
(($(jq .files "$results/push-s1.json") == files)) || warn "push s1 reports $(jq .files "$results/push-s1.json") files, expected $files"

log "2c. /usr/bin/aws s3 cp --recursive $ext4_dir/ds s3://bench/awscli/, page cache dropped"
drop_caches
mark
limit "$aws" --endpoint-url "$endpoint" s3 cp --recursive --only-show-errors "$ext4_dir/ds" s3://bench/awscli/ \
  >"$results/awscli.log" 2>&1 || die "aws s3 cp failed: $(tail -5 "$results/awscli.log")"
took_s aws_s
aws_objects="$(s3_objects awscli)"
log "aws s3 cp: $aws_s s, $aws_objects objects in s3rver"
((aws_objects == files)) || warn "s3rver holds $aws_objects objects under awscli/, expected $files"
cairn_objects_on_disk="$(s3_objects cairn)"

push_bps="$(div "$push_bytes" "$push_secs" 0)"
push_wall_bps="$(div "$push_bytes" "$push_wall_s" 0)"
aws_bps="$(div "$set_bytes" "$aws_s" 0)"
cp_bps="$(div "$set_bytes" "$cp_s" 0)"
push_vs_aws="$(div "$push_bps" "$aws_bps" 2)"
objects_ratio="$(div "$push_objects" "$aws_objects" 5)"

# ---- 3. restore to mountable
log "3. cairn snap restore $url s1 + cairn mount, page cache dropped"
rdata="$workdir/restored-data"
rmnt="$workdir/restored-mnt"
mkdir -p "$rmnt"
"$cairn" snap list "$url" --json >"$results/list-s1.json" || warn "snap list $url failed"
drop_caches
mark
limit "$cairn" snap restore "$url" s1 "$rdata" --json >"$results/restore-s1.json" ||
  die "snap restore failed"
took_s restore_cmd_s
cairn_mounts+=("$rmnt")
limit "$cairn" mount "$rdata" "$rmnt" >&2 || die "mount of the restored file system failed"
took_s restore_s
mountpoint -q "$rmnt" || die "cairn mount returned but $rmnt is not a mount point"
restore_per_m="$(div "$(echo "$restore_s * 1000000" | bc -l)" "$files" 1)"
log "restore: $restore_cmd_s s, mountable after $restore_s s ($restore_per_m s per million files)" \
  "$(jq -c . "$results/restore-s1.json")"

# ---- 4. first byte after restore
mid="$(gen - "$files" pick $((files / 2)))"
other="$(gen - "$files" pick $((files / 4)))"
mid_path="ds/$(gen - "$files" path "$mid")"
other_path="ds/$(gen - "$files" path "$other")"
mid_size="$(gen - "$files" size "$mid")"
other_size="$(gen - "$files" size "$other")"
log "4. first byte: $mid_path ($mid_size B), then whole; then $other_path ($other_size B) cold"
# Timed inside one Python process (snapgen.py's `read`), which drops the page cache itself: a
# `head -c1` would add the fork and exec of head to the few ms measured here.
limit "$python" "$gen_py" - "$files" read "$rmnt/$mid_path" "$rmnt/$other_path" \
  >"$results/read-restored.json" || die "reading the restored files failed"
log "restored: $(jq -c . "$results/read-restored.json")"
"$cairn" tier status "$rmnt" >"$results/tier-status-restored-after-reads.txt" 2>&1 || true
limit "$python" "$gen_py" - "$files" read "$ext4_dir/$mid_path" "$ext4_dir/$other_path" \
  >"$results/read-ext4.json" || die "reading the plain files failed"
log "ext4: $(jq -c . "$results/read-ext4.json")"
ttfb_ms="$(jq .first_byte_ms "$results/read-restored.json")"
whole_after_ms="$(jq .whole_after_first_byte_ms "$results/read-restored.json")"
other_cold_ms="$(jq .other_whole_ms "$results/read-restored.json")"
ext4_ttfb_ms="$(jq .first_byte_ms "$results/read-ext4.json")"
ext4_whole_after_ms="$(jq .whole_after_first_byte_ms "$results/read-ext4.json")"
ext4_other_ms="$(jq .other_whole_ms "$results/read-ext4.json")"
# The literal `head -c1`, page cache dropped, on a third file of the restored tree (first access),
# and the cost of running head at all (warm, on the plain copy).
third="$("$python" "$gen_py" - "$files" pick $((files * 3 / 4)))"
third_path="ds/$("$python" "$gen_py" - "$files" path "$third")"
drop_caches
mark
head -c1 "$rmnt/$third_path" >/dev/null || die "head -c1 of the restored $third_path failed"
took_ms head_ms
head -c1 "$ext4_dir/$third_path" >/dev/null
mark
head -c1 "$ext4_dir/$third_path" >/dev/null
took_ms head_warm_ms
log "head -c1 of the restored $third_path, cold: $head_ms ms; head -c1 of a cached file: $head_warm_ms ms"
# Checks (untimed): the bytes read are the bytes written, and the restored tree is complete.
cmp "$rmnt/$mid_path" "$ext4_dir/$mid_path" || die "restored $mid_path differs from the original"
cmp "$rmnt/$other_path" "$ext4_dir/$other_path" || die "restored $other_path differs from the original"
cmp "$rmnt/$third_path" "$ext4_dir/$third_path" || die "restored $third_path differs from the original"
mark
restored_count="$(find "$rmnt/ds" -type f | wc -l)"
took_s restored_find_s
((restored_count == files)) || warn "the restored tree has $restored_count files, expected $files"
log "restored tree: $restored_count files (find: $restored_find_s s)"
unmount_cairn "$rmnt"

# ---- 5. incremental: 1 % modified, s2
log "5. modify 1 % of the files through $mnt"
limit "$python" "$gen_py" "$mnt/ds" "$files" modify >"$results/modify.json" || die "modifying files failed"
modified_files="$(jq .files "$results/modify.json")"
modified_bytes="$(jq .bytes "$results/modify.json")"
log "modified: $(jq -c . "$results/modify.json")"
mark
limit "$cairn" snap create "$mnt" s2 --json >"$results/create-s2.json" || die "snap create s2 failed"
took_ms create2_ms
log "create s2: $create2_ms ms"
drop_caches
mark
limit "$cairn" snap push "$mnt" s2 --json >"$results/push-s2.json" ||
  die "snap push s2 failed; see $data/cairn.log"
took_s push2_wall_s
log "push s2: $push2_wall_s s $(jq -c . "$results/push-s2.json")"
push2_bytes="$(jq .bytes_uploaded "$results/push-s2.json")"
push2_objects="$(jq .objects_uploaded "$results/push-s2.json")"
push2_secs="$(jq .seconds "$results/push-s2.json")"
incr_fraction="$(div "$push2_bytes" "$push_bytes" 4)"
# The frozen view still shows s1's bytes of a modified file; the live tree shows the new ones.
mod_path="ds/$(gen - "$files" path 50)"
cmp -s "$mnt/.snapshots/s1/$mod_path" "$ext4_dir/$mod_path" ||
  die "$mnt/.snapshots/s1/$mod_path no longer shows the content of s1"
cmp -s "$mnt/$mod_path" "$ext4_dir/$mod_path" && die "$mnt/$mod_path was not modified"
"$cairn" snap list "$mnt" --json >"$results/list-mount.json" 2>&1 || true
"$cairn" snap list "$url" --json >"$results/list-url.json" 2>&1 || true
"$cairn" status "$mnt" >"$results/status.txt" 2>&1 || true
unmount_cairn "$mnt"
cp "$data/cairn.log" "$results/cairn.log" 2>/dev/null || true
cp "$rdata/cairn.log" "$results/cairn-restored.log" 2>/dev/null || true
s3_bytes="$(du -sb "$s3_dir/bench" | cut -f1)"
t0="$run_start"
took_s run_s

# --- results ---------------------------------------------------------------------------------------
met() {  # VALUE OP LIMIT: "yes" / "no" / "-"
  [[ "$1" =~ ^[0-9.]+$ ]] || { echo "-"; return; }
  [[ "$(echo "$1 $2 $3" | bc -l)" == 1 ]] && echo yes || echo no
}
json="$results/snap_bench.json"
jq -n \
  --arg started "$started" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --arg fs "$fs_type" \
  --argjson files "$files" --argjson set_bytes "$set_bytes" \
  --argjson write_ext4 "$(cat "$results/write-ext4.json")" \
  --argjson write_cairn "$(cat "$results/write-cairn.json")" \
  --argjson create_ms "$create_ms" --argjson create_json "$(cat "$results/create-s1.json")" \
  --argjson cp_s "$cp_s" --argjson cp_bps "$cp_bps" \
  --argjson push_wall_s "$push_wall_s" --argjson push_bps "$push_bps" \
  --argjson push_wall_bps "$push_wall_bps" --argjson push "$(cat "$results/push-s1.json")" \
  --argjson cairn_objects_on_disk "$cairn_objects_on_disk" \
  --argjson aws_s "$aws_s" --argjson aws_bps "$aws_bps" --argjson aws_objects "$aws_objects" \
  --argjson push_vs_aws "$push_vs_aws" --argjson objects_ratio "$objects_ratio" \
  --argjson restore_cmd_s "$restore_cmd_s" --argjson restore_s "$restore_s" \
  --argjson restore_per_m "$restore_per_m" --argjson restore "$(cat "$results/restore-s1.json")" \
  --arg mid_path "$mid_path" --argjson mid_size "$mid_size" \
  --arg other_path "$other_path" --argjson other_size "$other_size" \
  --argjson ttfb_ms "$ttfb_ms" --argjson whole_after_ms "$whole_after_ms" \
  --argjson other_cold_ms "$other_cold_ms" --argjson ext4_ttfb_ms "$ext4_ttfb_ms" \
  --argjson ext4_whole_after_ms "$ext4_whole_after_ms" --argjson ext4_other_ms "$ext4_other_ms" \
  --argjson head_ms "$head_ms" --argjson head_warm_ms "$head_warm_ms" --arg third_path "$third_path" \
  --argjson restored_count "$restored_count" --argjson restored_find_s "$restored_find_s" \
  --argjson modify "$(cat "$results/modify.json")" --argjson create2_ms "$create2_ms" \
  --argjson push2_wall_s "$push2_wall_s" --argjson push2 "$(cat "$results/push-s2.json")" \
  --argjson incr_fraction "$incr_fraction" --argjson s3_bytes "$s3_bytes" --argjson run_s "$run_s" \
  '{started: $started, kernel: $kernel, cpus: $cpus, workdir_fs: $fs, files: $files,
    set_bytes: $set_bytes, write_plain: $write_ext4, write_cairn: $write_cairn,
    create_s1: {wall_ms: $create_ms, result: $create_json},
    cp_a: {seconds: $cp_s, bytes_per_s: $cp_bps},
    push_s1: {wall_s: $push_wall_s, bytes_per_s: $push_bps, wall_bytes_per_s: $push_wall_bps,
              result: $push, objects_in_s3rver: $cairn_objects_on_disk},
    awscli: {wall_s: $aws_s, bytes_per_s: $aws_bps, objects: $aws_objects},
    push_vs_awscli_bytes_per_s: $push_vs_aws, push_vs_awscli_objects: $objects_ratio,
    restore: {restore_s: $restore_cmd_s, mountable_s: $restore_s,
              s_per_million_files: $restore_per_m, result: $restore,
              restored_files_counted: $restored_count, find_restored_tree_s: $restored_find_s},
    first_byte: {file: $mid_path, size: $mid_size, ttfb_ms: $ttfb_ms,
                 whole_after_first_byte_ms: $whole_after_ms,
                 other_file: $other_path, other_size: $other_size, other_whole_cold_ms: $other_cold_ms,
                 ext4: {ttfb_ms: $ext4_ttfb_ms, whole_after_first_byte_ms: $ext4_whole_after_ms,
                        other_whole_cold_ms: $ext4_other_ms},
                 head_c1: {file: $third_path, cold_ms: $head_ms, cached_plain_file_ms: $head_warm_ms}},
    incremental: {modified: $modify, create_s2_wall_ms: $create2_ms, push_s2_wall_s: $push2_wall_s,
                  result: $push2, bytes_fraction_of_s1: $incr_fraction},
    s3rver_bytes_on_disk: $s3_bytes, run_seconds: $run_s}' >"$json"

mb() { div "$1" 1000000 1; }
echo
echo "snap_bench: $files files, $set_bytes bytes ($((set_bytes >> 20)) MiB), $started, $(nproc) cpus, $fs_type"
printf "%-44s | %-26s | %-12s | %s\n" measure value target met
printf -- "---------------------------------------------+----------------------------+--------------+----\n"
row() { printf "%-44s | %-26s | %-12s | %s\n" "$@"; }
row "snap create s1 (wall)" "$create_ms ms" "< 1000 ms" "$(met "$create_ms" '<' 1000)"
row "snap push s1 (wall / reported)" "$push_wall_s s / $(div "$push_secs" 1) s" "" ""
row "snap push s1 bytes/s (uploaded / seconds)" "$(mb "$push_bps") MB/s" "" ""
row "snap push s1 objects" "$push_objects" "" ""
row "aws s3 cp --recursive (wall)" "$aws_s s" "" ""
row "aws s3 cp bytes/s" "$(mb "$aws_bps") MB/s" "" ""
row "aws s3 cp objects" "$aws_objects" "" ""
row "push / awscli bytes/s" "$push_vs_aws" ">= 0.8" "$(met "$push_vs_aws" '>=' 0.8)"
row "push / awscli objects" "$objects_ratio" "" ""
row "cp -a + sync, local (bytes/s)" "$cp_s s, $(mb "$cp_bps") MB/s" "" ""
row "restore + mount (wall)" "$restore_s s (restore $restore_cmd_s)" "" ""
row "restore + mount per million files" "$restore_per_m s" "< 30 s" "$(met "$restore_per_m" '<' 30)"
row "first byte after restore (open + read 1 B)" "$ttfb_ms ms (ext4 $ext4_ttfb_ms)" "" ""
row "  then the whole file ($mid_size B)" "$whole_after_ms ms (ext4 $ext4_whole_after_ms)" "" ""
row "another file, whole, cold ($other_size B)" "$other_cold_ms ms (ext4 $ext4_other_ms)" "" ""
row "head -c1 of a third file (with its exec)" "$head_ms ms (cached: $head_warm_ms)" "" ""
row "1 % modified ($modified_files files)" "$modified_bytes bytes" "" ""
row "snap create s2 (wall)" "$create2_ms ms" "< 1000 ms" "$(met "$create2_ms" '<' 1000)"
row "snap push s2 (wall / reported)" "$push2_wall_s s / $(div "$push2_secs" 1) s" "" ""
row "snap push s2 uploaded" "$push2_bytes B, $push2_objects objects" "" ""
row "bytes_uploaded s2 / s1" "$incr_fraction" "" ""
echo
echo "results: $json; logs in $results; run time $run_s s"
