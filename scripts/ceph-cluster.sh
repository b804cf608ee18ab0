#!/usr/bin/env bash
# Starts and stops a small, throw-away Ceph cluster (Pacific, 16.2) for tests, on ONE machine and on
# loopback only: one monitor, one manager and N OSDs (default 3) on file-backed BlueStore (a sparse
# file per OSD under DIR), cephx on, one replicated pool. Everything it makes lives under DIR:
# ceph.conf, the keyrings, the daemons' data, pid files, admin sockets and logs. It never touches
# /etc/ceph, /var/lib/ceph, /var/run/ceph or systemd, so several clusters can run side by side
# (a different DIR and monitor port each). Daemons run as the caller (root) in the background.
#
# Why: Cairn's tests against RADOS want a real cluster, one that starts in well under a minute,
# uses little memory, replicates across the OSDs of one host (osd_crush_chooseleaf_type = 0),
# survives the loss of one OSD (size 3, min_size 2), and is gone without a trace afterwards.
#
# The manager is started because in Pacific the PG states (`ceph pg stat`, the PG part of
# `ceph -s` and of `ceph health`) come from it: without one, nothing can tell when the pool is
# active+clean. It costs ~150 MiB RSS and a few seconds, overlapped with the OSDs' start; only its
# always-on Python modules are loaded (see MGR_DISABLED_MODULES), devicehealth without its pool.
#
# Usage:
#   ceph-cluster.sh start DIR [--osds N] [--port PORT] [--pool NAME] [--pg-num N] [--osd-size GIB]
#                             [--addr IP] [--ec K+M]
#       --addr: where the daemons listen (default 127.0.0.1; a 10/8 address of a bridge that the
#       caller made for network namespaces, as scripts/cluster.sh --netns does).
#       Creates DIR (absent or empty), bootstraps the cluster, creates the pool (application
#       "cairn"), waits until its PGs are active+clean, prints DIR/ceph.conf on stdout, exits 0 and
#       leaves the daemons running. On failure: the error and the tail of the relevant log on
#       stderr, whatever it started is stopped (DIR is kept for the logs), exit non-zero.
#   ceph-cluster.sh stop DIR [--clean]
#       SIGTERM to every daemon of DIR (by pid file), SIGKILL after a few seconds, waits for them
#       to be gone. --clean also deletes DIR.
#       --ec K+M: the pool is erasure coded (K data + M coding chunks, one per OSD, failure domain
#       osd, overwrites allowed as RADOS writes at offsets need); it needs K+M OSDs. Without it,
#       the pool is replicated.
#   ceph-cluster.sh create-pool DIR NAME [--pg-num N] [--ec K+M]
#       Another pool on the running cluster, made and waited for as at start.
#   ceph-cluster.sh kill-osd DIR ID     kill -9 of osd.ID (fault tests)
#   ceph-cluster.sh start-osd DIR ID    starts osd.ID again
#
# Clients: ceph -c DIR/ceph.conf ..., rados -c DIR/ceph.conf -p cairn ..., or librados with that
# conf file (it names the admin keyring). Monitor address: v2:127.0.0.1:PORT (msgr2 only).
set -Eeuo pipefail

readonly MARKER="# ceph-cluster.sh test cluster"
readonly START_TIMEOUT="${CEPH_CLUSTER_TIMEOUT:-180}" # seconds to wait for active+clean
readonly MON_ID=a
readonly MGR_ID=x
# Manager modules never loaded: the mgr would otherwise import every module in
# /usr/share/ceph/mgr at start (time and memory) although none of these is enabled. The always-on
# ones (balancer, crash, devicehealth, pg_autoscaler, progress, status, ...) must stay: listing
# them here would put the cluster in HEALTH_ERR (MGR_MODULE_ERROR).
readonly MGR_DISABLED_MODULES=(restful iostat nfs prometheus dashboard cephadm diskprediction_local
  insights alerts influx localpool mirroring osd_perf_query osd_support selftest snap_schedule
  stats telegraf test_orchestrator zabbix k8sevents rook)

DIR=""
CONF=""
CURRENT_LOG="" # the log to show if a step fails
START_OK=0

log() { echo "ceph-cluster: $*" >&2; }

show_log_tail() {
  local f=$1
  [ -n "$f" ] && [ -s "$f" ] || return 0
  echo "---- last lines of $f ----" >&2
  tail -n 30 "$f" >&2
  echo "----" >&2
}

die() {
  log "ERROR: $*"
  show_log_tail "$CURRENT_LOG"
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^# Clients:/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ceph CLI against this cluster; never hangs for long. Its errors go to DIR/log/cli.log.
cephc() {
  echo "+ ceph $*" >>"$DIR/log/cli.log"
  timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@" 2>>"$DIR/log/cli.log"
}

# Where the Python `ceph` CLI is not installed (a machine that carries only the daemons'
# binaries), the few monitor commands a cluster needs go through cairn-cephctl (librados,
# tests/tools/cephctl.cc; $CAIRN_CEPHCTL), no manager runs, and a pool is ready when an object
# can be written to it.
NO_CLI=0
if ! command -v ceph >/dev/null 2>&1 || [ -n "${CAIRN_CEPHCTL_ONLY:-}" ]; then NO_CLI=1; fi
monc() {
  echo "+ mon $1" >>"$DIR/log/cli.log"
  timeout 90 "${CAIRN_CEPHCTL:-cairn-cephctl}" "$CONF" "$1" 2>>"$DIR/log/cli.log"
}

set_dir() {
  [ -n "${1:-}" ] || usage
  DIR=$(realpath -m -- "$1")
  CONF="$DIR/ceph.conf"
}

require_cluster_dir() {
  if ! { [ -f "$CONF" ] && grep -qxF "$MARKER" "$CONF"; }; then
    die "$DIR is not a cluster made by ceph-cluster.sh (no $CONF)"
  fi
}

# ---------------------------------------------------------------- processes

# Prints the pid of daemon NAME (e.g. osd.0) if it is running for this DIR, else nothing.
daemon_pid() {
  local pidf="$DIR/run/$1.pid" pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  # The pid must still be one of our daemons (pids get reused).
  if tr "\\0" " " 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $CONF "; then
    echo "$pid"
  fi
}

# Pids of every daemon of this DIR: by pid file, plus any started with our conf that has not
# written its pid file yet.
all_daemon_pids() {
  local f name
  for f in "$DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    daemon_pid "$name"
  done
  local re
  re=$(printf '%s' "$CONF" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
  pgrep -f -- "^ceph-(mon|mgr|osd) .*-c $re " || true
}

# SIGTERM, then SIGKILL after GRACE seconds; waits until they are gone.
stop_pids() {
  local grace=$1
  shift
  local pids=("$@") i alive
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || return 0
    sleep 0.1
  done
  log "daemons still alive after ${grace}s, sending SIGKILL"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || return 0
    sleep 0.1
  done
  log "WARNING: some daemons did not exit: ${pids[*]}"
}

# OSDs and the manager first (while the monitor is there to hear that they go down, which makes
# them quick), then the monitor, then anything left that still uses this DIR's conf.
stop_all_daemons() {
  local group type f pid pids
  for group in "osd mgr" mon; do
    pids=()
    for type in $group; do
      for f in "$DIR/run/$type".*.pid; do
        [ -e "$f" ] || continue
        pid=$(daemon_pid "$(basename "$f" .pid)")
        [ -z "$pid" ] || pids+=("$pid")
      done
    done
    stop_pids 10 "${pids[@]}"
  done
  mapfile -t pids < <(all_daemon_pids | sort -u)
  stop_pids 5 "${pids[@]}"
  rm -f "$DIR"/run/*.pid
}

# Starts daemon TYPE ID (ceph-TYPE forks into the background once it is up; its exit status
# says whether initialisation worked). setsid: the daemon leaves the caller's session.
start_daemon() {
  local type=$1 id=$2
  CURRENT_LOG="$DIR/log/$type.$id.log"
  if ! setsid -w "ceph-$type" -c "$CONF" -i "$id" >"$DIR/log/$type.$id.out" 2>&1; then
    show_log_tail "$DIR/log/$type.$id.out"
    die "ceph-$type -i $id failed to start"
  fi
}

# ---------------------------------------------------------------- bootstrap

port_is_free() {
  python3 - "$1" "$ADDR" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind((sys.argv[2], int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

pick_free_port() {
  python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$ADDR"
}

write_conf() {
  local port=$1 fsid=$2 size=$3 min_size=$4 pg_num=$5 osd_bytes=$6
  cat >"$CONF" <<EOF
$MARKER
# Throw-away test cluster in $DIR, loopback only; every path is under DIR.
[global]
fsid = $fsid
mon_host = [v2:$ADDR:$port]
mon_initial_members = $MON_ID
public_network = $NETWORK
cluster_network = $NETWORK
public_addr = $ADDR
cluster_addr = $ADDR
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
keyring = $DIR/\$cluster.\$name.keyring
run_dir = $DIR/run
crash_dir = $DIR/crash
mon_cluster_log_file = $DIR/log/ceph.log
osd_crush_chooseleaf_type = 0
osd_pool_default_size = $size
osd_pool_default_min_size = $min_size
osd_pool_default_pg_num = $pg_num
osd_pool_default_pgp_num = $pg_num
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = $([ "$size" = 1 ] && echo true || echo false)
mon_allow_pool_delete = true
mon_data_avail_warn = 10
mgr_stats_period = 2
mon_warn_on_pool_no_redundancy = false
mon_pg_warn_min_per_osd = 0
mon_osd_reporter_subtree_level = osd
mon_osd_min_down_reporters = 1
mgr_initial_modules =
mgr_disabled_modules = ${MGR_DISABLED_MODULES[*]}

[mon]
mon_data = $DIR/mon.\$id
keyring = $DIR/mon.\$id/keyring
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$cluster-\$name.asok
log_file = $DIR/log/\$name.log
mon_memory_autotune = false
mon_memory_target = 268435456
rocksdb_cache_size = 33554432
mon_osd_cache_size = 20

[mgr]
mgr_data = $DIR/mgr.\$id
keyring = $DIR/mgr.\$id/keyring
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$cluster-\$name.asok
log_file = $DIR/log/\$name.log

[osd]
osd_data = $DIR/osd.\$id
osd_journal = $DIR/osd.\$id/journal
keyring = $DIR/osd.\$id/keyring
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$cluster-\$name.asok
log_file = $DIR/log/\$name.log
osd_objectstore = bluestore
bluestore_block_path = $DIR/osd.\$id/block.img
bluestore_block_create = true
bluestore_block_size = $osd_bytes
bluestore_fsck_on_mkfs = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
rocksdb_cache_size = 33554432
osd_map_cache_size = 20
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1
osd_scrub_min_interval = 31536000
osd_scrub_max_interval = 31536000
osd_deep_scrub_interval = 31536000
osd_crush_update_on_start = true
EOF
}

# One keyring holding every key (mon., client.admin, mgr.x, osd.N) with its caps: ceph-mon --mkfs
# imports all of them, so no `ceph auth` call is needed later. Each daemon also gets its own.
make_keys() {
  make_keys_verbose "$@" >/dev/null
}

make_keys_verbose() {
  local osds=$1 kr="$DIR/bootstrap.keyring" i
  ceph-authtool --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *'
  ceph-authtool --create-keyring "$DIR/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
  ceph-authtool "$kr" --import-keyring "$DIR/ceph.client.admin.keyring"
  mkdir -p "$DIR/mgr.$MGR_ID"
  ceph-authtool --create-keyring "$DIR/mgr.$MGR_ID/keyring" --gen-key -n "mgr.$MGR_ID" \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
  ceph-authtool "$kr" --import-keyring "$DIR/mgr.$MGR_ID/keyring"
  for ((i = 0; i < osds; i++)); do
    mkdir -p "$DIR/osd.$i"
    ceph-authtool --create-keyring "$DIR/osd.$i/keyring" --gen-key -n "osd.$i" \
      --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
    ceph-authtool "$kr" --import-keyring "$DIR/osd.$i/keyring"
  done
  chmod 600 "$DIR"/*.keyring "$DIR"/*/keyring
}

mkfs_mon() {
  local port=$1 fsid=$2
  CURRENT_LOG="$DIR/log/mon.$MON_ID.log"
  monmaptool --create --fsid "$fsid" --addv "$MON_ID" "[v2:$ADDR:$port]" \
    --enable-all-features --set-min-mon-release 16 "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i "$MON_ID" --monmap "$DIR/monmap" \
    --keyring "$DIR/bootstrap.keyring" >"$DIR/log/mon.$MON_ID.out" 2>&1 ||
    { show_log_tail "$DIR/log/mon.$MON_ID.out"; die "ceph-mon --mkfs failed"; }
  rm -f "$DIR/bootstrap.keyring" "$DIR/monmap"
}

# Registers osd.ID in the OSD map (its key is already known to the monitor).
register_osd() {
  local id=$1 uuid=$2
  CURRENT_LOG="$DIR/log/cli.log"
  if ((NO_CLI)); then
    monc "{\"prefix\": \"osd new\", \"uuid\": \"$uuid\", \"id\": $id}" >/dev/null ||
      die "osd new for osd.$id failed"
    return
  fi
  cephc osd new "$uuid" "$id" >/dev/null ||
    die "ceph osd new for osd.$id failed"
}

# Registers the OSDs, makes their BlueStores in parallel, starts them.
create_osds() {
  local n=$1 i uuid pids=()
  for ((i = 0; i < n; i++)); do
    uuid=$(cat /proc/sys/kernel/random/uuid)
    register_osd "$i" "$uuid"
    ceph-osd -c "$CONF" -i "$i" --mkfs --osd-uuid "$uuid" >"$DIR/log/osd.$i.out" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    CURRENT_LOG="$DIR/log/osd.$i.log"
    wait "${pids[$i]}" || { show_log_tail "$DIR/log/osd.$i.out"; die "ceph-osd --mkfs of osd.$i failed"; }
  done
  # Start them in parallel: each spends a few seconds mounting its store.
  pids=()
  for ((i = 0; i < n; i++)); do
    start_daemon osd "$i" &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || { CURRENT_LOG=""; die "osd.$i did not start"; }
  done
}

# create_pool NAME PG_NUM [K+M]: replicated (the defaults of ceph.conf), or erasure coded.
# Prints the number of OSDs that act for each PG.
create_pool() {
  local pool=$1 pg_num=$2 ec=${3:-} k m
  CURRENT_LOG="$DIR/log/cli.log"
  if ((NO_CLI)); then
    [ -z "$ec" ] || die "--ec needs the ceph CLI"
    monc "{\"prefix\": \"osd pool create\", \"pool\": \"$pool\", \"pg_num\": $pg_num, \"pgp_num\": $pg_num, \"pool_type\": \"replicated\", \"autoscale_mode\": \"off\"}" \
      >/dev/null || die "osd pool create $pool failed"
    monc "{\"prefix\": \"osd pool application enable\", \"pool\": \"$pool\", \"app\": \"cairn\"}" \
      >/dev/null || die "osd pool application enable $pool cairn failed"
    monc "{\"prefix\": \"osd pool get\", \"pool\": \"$pool\", \"var\": \"size\", \"format\": \"json\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'
    return
  fi
  if [ -z "$ec" ]; then
    cephc osd pool create "$pool" "$pg_num" "$pg_num" replicated --autoscale-mode=off >/dev/null ||
      die "ceph osd pool create $pool failed"
    cephc osd pool get "$pool" size -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'
  else
    [[ "$ec" =~ ^([1-9][0-9]*)\+([1-9][0-9]*)$ ]] || die "--ec must be K+M (e.g. 2+1), not $ec"
    k=${BASH_REMATCH[1]} m=${BASH_REMATCH[2]}
    ((k + m <= OSDS)) || die "--ec $ec needs $((k + m)) OSDs; the cluster has $OSDS"
    cephc osd erasure-code-profile set "cairn-$k-$m" k="$k" m="$m" crush-failure-domain=osd \
      --force >/dev/null || die "ceph osd erasure-code-profile set failed"
    cephc osd pool create "$pool" "$pg_num" "$pg_num" erasure "cairn-$k-$m" --autoscale-mode=off \
      >/dev/null || die "ceph osd pool create $pool (erasure $ec) failed"
    # Segments are written at offsets (appends); an EC pool takes them only with overwrites on.
    cephc osd pool set "$pool" allow_ec_overwrites true >/dev/null ||
      die "ceph osd pool set $pool allow_ec_overwrites failed"
    echo $((k + m))
  fi
  cephc osd pool application enable "$pool" cairn >/dev/null ||
    die "ceph osd pool application enable $pool cairn failed"
}

# Exit 0 if `ceph pg dump pgs_brief -f json` (stdin) shows at least PG_NUM PGs of pool POOL_ID,
# each active+clean on SIZE OSDs.
pgs_clean() {
  python3 -c '
import json, sys
try:
    pgs = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
pgs = pgs.get("pg_stats", []) if isinstance(pgs, dict) else pgs
pgs = [p for p in pgs if p["pgid"].split(".")[0] == sys.argv[3]]
ok = [p for p in pgs if p["state"] == "active+clean" and len(p["acting"]) == int(sys.argv[2])]
sys.exit(0 if len(pgs) >= int(sys.argv[1]) and len(ok) == len(pgs) else 1)
' "$1" "$2" "$3"
}

# Waits until every PG of the pool is active+clean with SIZE OSDs acting (so the OSDs it needs
# are up).
wait_active_clean() {
  local pool=$1 pg_num=$2 size=$3 deadline=$((SECONDS + START_TIMEOUT)) i id
  if ((NO_CLI)); then
    # No manager to report PG states: the pool is ready when an object can be written to it
    # (a write needs its PG active with min_size OSDs) and read back.
    CURRENT_LOG="$DIR/log/cli.log"
    while ((SECONDS < deadline)); do
      if timeout 20 rados -c "$CONF" -p "$pool" put cairn-probe "$CONF" 2>>"$DIR/log/cli.log" &&
        timeout 20 rados -c "$CONF" -p "$pool" rm cairn-probe 2>>"$DIR/log/cli.log"; then
        return 0
      fi
      sleep 0.5
    done
    die "pool $pool did not take a write after ${START_TIMEOUT}s"
  fi
  CURRENT_LOG="$DIR/log/mgr.$MGR_ID.log"
  id=$(cephc osd pool ls detail -f json | python3 -c '
import json, sys
print(next(p["pool_id"] for p in json.load(sys.stdin) if p["pool_name"] == sys.argv[1]))' "$pool")
  while ((SECONDS < deadline)); do
    if cephc pg dump pgs_brief -f json | pgs_clean "$pg_num" "$size" "$id"; then
      return 0
    fi
    sleep 0.5
  done
  log "ceph -s: $(cephc -s || true)"
  for ((i = 0; i < OSDS; i++)); do show_log_tail "$DIR/log/osd.$i.log"; done
  die "PGs of pool $pool not active+clean after ${START_TIMEOUT}s"
}

# A command failed under set -e: say which, with the log of the step it was in.
on_error() {
  trap - ERR
  log "ERROR: line $1: '$2' failed"
  show_log_tail "$CURRENT_LOG"
}

on_start_exit() {
  local rc=$?
  [ "$START_OK" = 1 ] && return 0
  [ $rc = 0 ] && rc=1
  log "start failed; stopping what was started (logs kept in $DIR/log)"
  stop_all_daemons 2>/dev/null || true
  exit $rc
}

cmd_start() {
  set_dir "${1:-}"
  shift
  OSDS=3
  ADDR=127.0.0.1
  local port="" pool=cairn pg_num=8 osd_gib=4 ec="" acting
  while [ $# -gt 0 ]; do
    case $1 in
      --osds) OSDS=${2:?}; shift 2 ;;
      --port) port=${2:?}; shift 2 ;;
      --pool) pool=${2:?}; shift 2 ;;
      --pg-num) pg_num=${2:?}; shift 2 ;;
      --osd-size) osd_gib=${2:?}; shift 2 ;;
      --addr) ADDR=${2:?}; shift 2 ;;
      --ec) ec=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ "$OSDS" =~ ^[1-9][0-9]*$ ]] || die "--osds must be a positive number"
  [[ "$ADDR" =~ ^(127|10)\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "--addr must be a loopback (127/8) or test-namespace (10/8) address"
  if [[ "$ADDR" == 127.* ]]; then NETWORK=127.0.0.0/8; else NETWORK=$ADDR/32; fi
  [[ "$pg_num" =~ ^[1-9][0-9]*$ ]] || die "--pg-num must be a positive number"
  [[ "$osd_gib" =~ ^[1-9][0-9]*$ ]] || die "--osd-size must be a positive number of GiB"
  if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR exists and is not empty"; fi
  if [ -n "$port" ]; then
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then die "bad --port $port"; fi
    port_is_free "$port" || die "port $ADDR:$port is in use"
  else
    port=$(pick_free_port)
  fi
  local size=$((OSDS < 3 ? OSDS : 3))
  local min_size=$((size - size / 2)) # 3 -> 2, 2 -> 1, 1 -> 1
  local fsid t0=$SECONDS i
  fsid=$(cat /proc/sys/kernel/random/uuid)

  mkdir -p "$DIR"/{run,log,crash}
  trap on_start_exit EXIT
  trap 'on_error $LINENO "$BASH_COMMAND"' ERR
  write_conf "$port" "$fsid" "$size" "$min_size" "$pg_num" $((osd_gib << 30))
  make_keys "$OSDS"
  mkfs_mon "$port" "$fsid"
  start_daemon mon "$MON_ID"
  # Module options are read from the monitor's config database, not from ceph.conf. Without
  # this, devicehealth makes a pool of its own (device_health_metrics).
  CURRENT_LOG="$DIR/log/cli.log"
  if ((!NO_CLI)); then
    cephc config set mgr mgr/devicehealth/enable_monitoring false --force >/dev/null
    start_daemon mgr "$MGR_ID"
  fi

  create_osds "$OSDS"

  acting=$(create_pool "$pool" "$pg_num" "$ec")
  wait_active_clean "$pool" "$pg_num" "$acting"
  START_OK=1
  log "cluster up in $((SECONDS - t0))s: mon v2:$ADDR:$port, $OSDS OSDs, pool $pool (${ec:+erasure $ec, }$acting OSDs per PG, $pg_num PGs)"
  echo "$CONF"
}

cmd_stop() {
  set_dir "${1:-}"
  shift
  local clean=0
  [ "${1:-}" = --clean ] && { clean=1; shift; }
  [ $# = 0 ] || usage
  if [ ! -e "$DIR" ]; then log "$DIR does not exist"; return 0; fi
  require_cluster_dir
  stop_all_daemons
  if [ $clean = 1 ]; then rm -rf -- "$DIR"; fi
  log "stopped $DIR"
}

cmd_kill_osd() {
  set_dir "${1:-}"
  local id=${2:?usage: kill-osd DIR ID} pid
  require_cluster_dir
  pid=$(daemon_pid "osd.$id")
  [ -n "$pid" ] || die "osd.$id is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  log "killed osd.$id (pid $pid)"
}

cmd_start_osd() {
  set_dir "${1:-}"
  local id=${2:?usage: start-osd DIR ID}
  require_cluster_dir
  [ -d "$DIR/osd.$id" ] || die "no osd.$id in $DIR"
  [ -z "$(daemon_pid "osd.$id")" ] || die "osd.$id is already running"
  rm -f "$DIR/run/osd.$id.pid"
  start_daemon osd "$id"
  log "started osd.$id"
}

cmd_create_pool() {
  set_dir "${1:-}"
  local pool=${2:?usage: create-pool DIR NAME [--pg-num N] [--ec K+M]} pg_num=8 ec="" acting
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --pg-num) pg_num=${2:?}; shift 2 ;;
      --ec) ec=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  require_cluster_dir
  [[ "$pg_num" =~ ^[1-9][0-9]*$ ]] || die "--pg-num must be a positive number"
  OSDS=$(ls -d "$DIR"/osd.* 2>/dev/null | wc -l)
  acting=$(create_pool "$pool" "$pg_num" "$ec")
  wait_active_clean "$pool" "$pg_num" "$acting"
  log "pool $pool: ${ec:+erasure $ec, }$acting OSDs per PG, $pg_num PGs"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill-osd) cmd_kill_osd "$@" ;;
    start-osd) cmd_start_osd "$@" ;;
    create-pool) cmd_create_pool "$@" ;;
    *) usage ;;
  esac
}

main "$@"
