// The settings of a file system: fixed at format time (Superblock, stored in DATA_DIR/cairn.json)
// and chosen at mount time (MountOptions).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::fs {

constexpr uint32_t kFormatVersion = 1;
constexpr const char* kSuperblockFile = "cairn.json";

// Where data tiers to and when (docs/ARCHITECTURE.md, "Tiers"). Stored in the superblock.
struct TierSettings {
  std::string object_store;      // URL: file:///path or s3://bucket/prefix
  uint64_t nvme_capacity = 0;    // bytes of NVMe Cairn may fill; 0: the data directory's fs
  double high_watermark = 0.90;  // above this fraction of capacity, evict ...
  double low_watermark = 0.80;   // ... down to this one
  double tiering_delay_s = 10;   // a sealed segment uploads this long after sealing
  double seal_timeout_s = 5;     // an open segment with data seals after this long (0: never)
  double retention_s = 0;        // uploaded and unread this long: evicted (0: only for space)
};

// Cluster mode (docs/ARCHITECTURE.md, "Cluster"): the metadata in PostgreSQL and the segments in
// a Ceph RADOS pool, shared by every node; each node keeps its own data directory with this
// section in its superblock. Empty `meta`: the single-node file system (RocksDB, local segments).
struct ClusterSettings {
  std::string meta;       // libpq connection string of the shared metadata database
  std::string ceph_conf;  // ceph.conf of the cluster whose pool holds the segments
  std::string ceph_user = "admin";
  std::string pool = "cairn";
  uint32_t node = 0;  // this node's number in the cluster (from 1)
  bool enabled() const { return !meta.empty(); }
};

struct Superblock {
  uint32_t format_version = kFormatVersion;
  std::string uuid;
  uint64_t inline_max = 4096;           // files up to this size live in the inode record
  uint64_t segment_size = 64ull << 20;  // bytes per segment file
  int64_t created = 0;                  // seconds since the epoch
  TierSettings tier;
  std::string restored_from;  // the manifest key of the snapshot it was restored from, if any
  ClusterSettings cluster;
};

struct FormatOptions {
  uint64_t inline_max = 4096;
  uint64_t segment_size = 64ull << 20;
  TierSettings tier;  // tier.object_store empty: file://DATA_DIR/objects
  // Cluster mode: create the shared file system in this database and pool (node 1 is this one).
  ClusterSettings cluster;
  // Restore (fs/snapshot_restore.cc): the new file system's uuid (empty: a fresh one), and what
  // fills DATA_DIR/meta instead of an empty root directory.
  std::string uuid;
  std::string restored_from;
  std::function<Status(const std::string& data_dir)> fill_meta;
};

struct MountOptions {
  // A read of data only in the object store gives up (EIO) after this long without success.
  double remote_timeout_s = 30.0;
  // Prometheus /metrics on this loopback address ("127.0.0.1:PORT"; port 0: any free port, shown
  // by `cairn status`; empty: off).
  std::string metrics_address = "127.0.0.1:0";
  // Compaction: run every this many seconds (0 = never in the background) on sealed segments
  // whose live fraction is below the threshold.
  double compaction_interval_s = 10.0;
  double compaction_threshold = 0.5;
  // Cluster mode: a cached inode record is read again from the shared metadata when it is older
  // than this (attributes other nodes changed show within it); open always reads it again.
  double lease_s = 1.0;
  // Cluster mode: announce this node's namespace and attribute changes to the other nodes and
  // hear theirs (PostgreSQL NOTIFY), so that they show at once rather than within the lease.
  bool notify = true;
  // Cluster mode, while the node hears the notices: how long the kernel keeps names and
  // attributes, and the node its cached records and directories (a notice drops them at once).
  // When notices may be missed (the listener is away, or notify is off) it is the lease.
  double notice_timeout_s = 30.0;
  // Cluster mode: how often the node records that it is up and its I/O rates ('H' record).
  double heartbeat_s = 5.0;
};

// file://<data_dir>/objects: the object store of a file system formatted without one.
std::string DefaultObjectStore(const std::string& data_dir);
// A fresh random (version 4) UUID, which names a file system and prefixes its objects.
std::string NewUuid();
// Creates a file system in data_dir, which must be empty or absent.
Status Format(const std::string& data_dir, const FormatOptions& options);
Result<Superblock> ReadSuperblock(const std::string& data_dir);
// Takes DATA_DIR/lock (flock, exclusive, non-blocking): one process at a time opens a file
// system. Returns the fd that holds the lock; kBusy when another process holds it.
Result<int> LockDataDir(const std::string& data_dir);

// Offline check: metadata consistency and every extent's checksum. Problems are appended to
// `problems` (human-readable). Returns an error only when the check could not run.
struct FsckReport {
  std::vector<std::string> problems;  // inconsistencies and corrupt data: exit non-zero
  std::vector<std::string> notes;     // harmless leftovers of a crash (reclaimed at mount)
  uint64_t inodes = 0, dentries = 0, extents = 0, bytes_verified = 0, segments = 0;
  uint64_t bytes_remote = 0;  // in evicted segments: only in the object store, not verified
};
Result<FsckReport> Fsck(const std::string& data_dir);

// Cluster mode (fs/cluster.cc). Adds this data directory to the cluster file system whose
// metadata is at settings.meta: a new node number, the shared superblock copied into
// DATA_DIR/cairn.json. kExists when data_dir already holds a file system.
Result<Superblock> JoinCluster(const std::string& data_dir, ClusterSettings settings);
struct Member {
  uint32_t node = 0;
  std::string host, data_dir;
  int64_t joined = 0, last_mount = 0;  // seconds since the epoch
  // From the node's heartbeat ('H' record), written every few seconds while it is mounted.
  std::string state;  // "up", "down" (no heartbeat for 3 intervals), "unmounted", "never mounted"
  int64_t last_seen = 0;                               // the last heartbeat (the node's clock)
  double read_bytes_per_s = 0, write_bytes_per_s = 0;  // over the last heartbeat interval
  double read_ops_per_s = 0, write_ops_per_s = 0;
};
Result<std::vector<Member>> ListMembers(const std::string& data_dir);

}  // namespace cairn::fs
