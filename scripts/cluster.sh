#!/usr/bin/env bash
# Starts and stops a whole Cairn test cluster on ONE machine, on loopback only: PostgreSQL for the
# shared metadata (127.0.0.1), a Ceph cluster (scripts/ceph-cluster.sh: 1 monitor, 1 manager,
# file-backed BlueStore OSDs, pool "cairn" of size 3 / min_size 2) for the segments, and N Cairn
# nodes, each with its own data directory and mount. Everything lives under DIR.
#
# Usage:
#   cluster.sh start DIR [--nodes N] [--osds N] [--pg-port P] [--mon-port P] [--lease D] [--netns]
#                        [--osd-size GIB]   (each OSD's sparse file; default 4)
#                        [--ec K+M]         (an erasure-coded pool, K+M <= OSDs; default replicated)
#       Starts it all (default 2 nodes, 3 OSDs), formats node 1, joins the others, mounts node K
#       at DIR/mnt/K, and writes DIR/env (META, CEPH_CONF, PG_PORT, NODES) for the commands below.
#       --nodes 0: only PostgreSQL and Ceph (tests that format file systems of their own).
#       --netns: each node's daemon runs in a network namespace of its own (cairnID-K), joined by
#       a veth pair to a bridge (cbID, 10.233.ID.1/24) where PostgreSQL and Ceph listen, so that
#       a node can be cut off. Its mount stays in the caller's mount namespace.
#   cluster.sh stop DIR [--clean]        unmounts every node, stops Ceph and PostgreSQL
#   cluster.sh kill-node DIR K           kill -9 of node K's daemon (its mount is left dead)
#   cluster.sh mount-node DIR K [OPTS]   (re)mounts node K, with more `cairn mount` options
#   cluster.sh restart-pg DIR            stops PostgreSQL fast and starts it again
#   cluster.sh cut-node DIR K            (--netns) takes node K's link down: it reaches nothing
#   cluster.sh heal-node DIR K           brings it back
#
# The cairn binary: $CAIRN, else build/src/cairn of this checkout.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CAIRN=${CAIRN:-$HERE/../build/src/cairn}
PG_BIN=/usr/lib/postgresql/15/bin

die() { echo "cluster.sh: $*" >&2; exit 1; }
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
  local dir=$1 port=$2 listen=${3:-127.0.0.1}
  # Keepalives and the idle-in-transaction limit: a node cut off mid-transaction loses its locks
  # within seconds, not hours (docs/ARCHITECTURE.md, "Cluster").
  as_pg "$PG_BIN/pg_ctl" -w -t 60 -D "$dir/pg/data" -l "$dir/pg/server.log" \
    -o "-k $dir/pg -c listen_addresses=$listen -p $port -c max_connections=300 -c fsync=on \
        -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 \
        -c tcp_user_timeout=15000 -c idle_in_transaction_session_timeout=15000" \
    start >/dev/null || { tail -20 "$dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
}

pg_stop() {
  local dir=$1
  [[ -f "$dir/pg/data/postmaster.pid" ]] || return 0
  as_pg "$PG_BIN/pg_ctl" -w -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
}

mount_node() {
  local dir=$1 k=$2
  shift 2
  # shellcheck disable=SC1091
  source "$dir/env"
  mkdir -p "$dir/mnt/$k"
  local in_ns=() extra=("$@")
  [[ -n "${NETNS_ID:-}" ]] && in_ns=(nsenter "--net=/run/netns/cairn$NETNS_ID-$k" --)
  [[ " $* " == *" --lease "* ]] || extra+=(--lease "${LEASE:-1s}")
  "${in_ns[@]}" "$CAIRN" mount "$dir/node$k" "$dir/mnt/$k" --metrics-address '' "${extra[@]}" \
    >>"$dir/node$k.out" 2>&1 || { cat "$dir/node$k.out" >&2; die "node $k did not mount"; }
}

cmd_start() {
  local dir=${1:?DIR}; shift
  local nodes=2 osds=3 pg_port=0 mon_port=0 lease=1s netns=0 osd_size=4 ec=()
  while (($#)); do
    case $1 in
      --osd-size) osd_size=${2:?}; shift 2 ;;
      --ec) ec=(--ec "${2:?}"); shift 2 ;;
      --netns) netns=1; shift ;;
      --nodes) nodes=${2:?}; shift 2 ;;
      --osds) osds=${2:?}; shift 2 ;;
      --pg-port) pg_port=${2:?}; shift 2 ;;
      --mon-port) mon_port=${2:?}; shift 2 ;;
      --lease) lease=${2:?}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ "$nodes" =~ ^[0-9]+$ ]] || die "--nodes must be a number (0: only the engines)"
  [[ -x "$CAIRN" ]] || die "no cairn binary at $CAIRN (build first, or set CAIRN)"
  if [[ -e "$dir" ]] && [[ -n "$(ls -A "$dir")" ]]; then die "$dir is not empty"; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  ((pg_port)) || pg_port=$((20000 + RANDOM % 20000))
  ((mon_port)) || mon_port=$((40000 + RANDOM % 20000))

  local addr=127.0.0.1 ns_id=""
  if ((netns)); then
    ns_id=$((20 + RANDOM % 200))
    while ip link show "cb$ns_id" >/dev/null 2>&1; do ns_id=$((20 + RANDOM % 200)); done
    addr=10.233.$ns_id.1
    echo "NETNS_ID=$ns_id" >"$dir/env.netns"  # for stop, should start fail half way
    ip link add "cb$ns_id" type bridge
    ip addr add "$addr/24" dev "cb$ns_id"
    ip link set "cb$ns_id" up
    for ((k = 1; k <= nodes; ++k)); do
      local ns=cairn$ns_id-$k
      ip netns add "$ns"
      ip link add "cv${ns_id}h$k" type veth peer name "cv${ns_id}n$k"
      ip link set "cv${ns_id}n$k" netns "$ns"
      ip link set "cv${ns_id}h$k" master "cb$ns_id"
      ip link set "cv${ns_id}h$k" up
      ip -n "$ns" addr add "10.233.$ns_id.$((10 + k))/24" dev "cv${ns_id}n$k"
      ip -n "$ns" link set "cv${ns_id}n$k" up
      ip -n "$ns" link set lo up
    done
  fi

  mkdir -p "$dir/pg"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir/pg" && chmod 755 "$dir"
  as_pg "$PG_BIN/initdb" -A trust -U postgres -E UTF8 -D "$dir/pg/data" >/dev/null
  if ((netns)); then
    echo "host all all 10.233.$ns_id.0/24 trust" | as_pg tee -a "$dir/pg/data/pg_hba.conf" >/dev/null
    pg_start "$dir" "$pg_port" "127.0.0.1,$addr"
  else
    pg_start "$dir" "$pg_port"
  fi
  as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres cairn

  local conf
  conf=$("$HERE/ceph-cluster.sh" start "$dir/ceph" --osds "$osds" --port "$mon_port" \
    --pool cairn --addr "$addr" --osd-size "$osd_size" "${ec[@]}") || die "Ceph did not start"
  local meta="host=$addr port=$pg_port user=postgres dbname=cairn"
  cat >"$dir/env" <<ENV
META='$meta'
CEPH_CONF='$conf'
PG_PORT=$pg_port
NODES=$nodes
LEASE=$lease
NETNS_ID=$ns_id
ENV
  ((nodes)) && "$CAIRN" format "$dir/node1" --meta "$meta" --ceph-conf "$conf" --pool cairn >/dev/null
  for ((k = 2; k <= nodes; ++k)); do
    "$CAIRN" cluster join "$dir/node$k" --meta "$meta" --ceph-conf "$conf" --pool cairn >/dev/null
  done
  for ((k = 1; k <= nodes; ++k)); do mount_node "$dir" "$k"; done
  echo "$dir/env"
}

cmd_stop() {
  local dir=${1:?DIR} clean=${2:-}
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/env" ]]; then
    # shellcheck disable=SC1091
    source "$dir/env"
    for ((k = 1; k <= NODES; ++k)); do
      if mountpoint -q "$dir/mnt/$k" 2>/dev/null || grep -q " $dir/mnt/$k " /proc/mounts; then
        "$CAIRN" unmount "$dir/mnt/$k" --timeout 60 >/dev/null 2>&1 ||
          fusermount3 -uz "$dir/mnt/$k" 2>/dev/null || umount -l "$dir/mnt/$k" 2>/dev/null || true
      fi
      if [[ -f "$dir/node$k/cairn.pid" ]]; then
        kill -9 "$(cat "$dir/node$k/cairn.pid")" 2>/dev/null || true
      fi
    done
  fi
  [[ -d "$dir/ceph" ]] && "$HERE/ceph-cluster.sh" stop "$dir/ceph" >/dev/null 2>&1 || true
  pg_stop "$dir"
  if [[ -f "$dir/env.netns" ]]; then
    # shellcheck disable=SC1091
    source "$dir/env.netns"
    for ns in $(ip netns list | awk '{print $1}' | grep "^cairn$NETNS_ID-" || true); do
      ip netns del "$ns" || true  # takes the veth pairs with it
    done
    ip link del "cb$NETNS_ID" 2>/dev/null || true
  fi
  if [[ "$clean" == --clean ]]; then rm -rf "$dir"; fi
}

cmd_kill_node() {
  local dir=${1:?DIR} k=${2:?K}
  kill -9 "$(cat "$dir/node$k/cairn.pid")"
  for _ in $(seq 50); do
    kill -0 "$(cat "$dir/node$k/cairn.pid")" 2>/dev/null || break
    sleep 0.1
  done
  fusermount3 -uz "$dir/mnt/$k" 2>/dev/null || umount -l "$dir/mnt/$k" 2>/dev/null || true
}

cmd_restart_pg() {
  local dir=${1:?DIR}
  # shellcheck disable=SC1091
  source "$dir/env"
  pg_stop "$dir"
  if [[ -n "$NETNS_ID" ]]; then
    pg_start "$dir" "$PG_PORT" "127.0.0.1,10.233.$NETNS_ID.1"
  else
    pg_start "$dir" "$PG_PORT"
  fi
}

cmd_link() {
  local dir=${1:?DIR} k=${2:?K} state=$3
  # shellcheck disable=SC1091
  source "$dir/env"
  [[ -n "$NETNS_ID" ]] || die "the cluster in $dir was started without --netns"
  ip link set "cv${NETNS_ID}h$k" "$state"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  kill-node) shift; cmd_kill_node "$@" ;;
  mount-node) shift; mount_node "$@" ;;
  restart-pg) shift; cmd_restart_pg "$@" ;;
  cut-node) shift; cmd_link "${1:-}" "${2:-}" down ;;
  heal-node) shift; cmd_link "${1:-}" "${2:-}" up ;;
  *) die "usage: cluster.sh start|stop|kill-node|mount-node|restart-pg|cut-node|heal-node DIR ..." ;;
esac
