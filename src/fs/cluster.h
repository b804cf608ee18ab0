// Cluster mode, the parts below FileSystem (docs/ARCHITECTURE.md, "Cluster"): which metadata
// store and segment backend a superblock names, the shared superblock and the member records in
// the shared metadata, and the superblock's JSON form.
//
// Keys of the shared metadata used only by a cluster (next to those of meta/schema.h):
//   'C' "superblock"   -> the shared superblock (JSON, without any node's cluster section)
//   'K' node           -> a member record (JSON: host, data directory, joined, last mount)
//   'H' node           -> the node's heartbeat (JSON: state, seen, interval, I/O rates)
//   'M' "next_node"    -> the next node number (meta::ReserveIds)
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "data/segment_file.h"
#include "fs/options.h"
#include "kv/kv_store.h"

namespace cairn::kv {
class PgKvStore;
}
namespace cairn::data {
class RadosSegments;
}

namespace cairn::fs {

// The engines a file system runs on. FileSystem::Open builds them from the superblock
// (OpenEngines); a test may hand in its own (an in-memory metadata store, say).
struct Engines {
  std::unique_ptr<kv::KvStore> kv;
  std::shared_ptr<data::SegmentBackend> segments;  // null: the data directory's files
  // The same engines as what they are, where a feature needs that (else null): a cluster hears
  // other nodes' changes through PostgreSQL's notices and asks RADOS for the pool's usage.
  kv::PgKvStore* pg = nullptr;
  data::RadosSegments* rados = nullptr;
};
// The metadata store and segment backend a superblock names (below).
Result<Engines> OpenEngines(const std::string& data_dir, const Superblock& super);

// The metadata store of a file system: DATA_DIR/meta (RocksDB), or the cluster's PostgreSQL.
Result<std::unique_ptr<kv::KvStore>> OpenMetaStore(const std::string& data_dir,
                                                   const Superblock& super);
// Where its segments live: null for the data directory's own files, else the cluster's pool.
Result<std::shared_ptr<data::SegmentBackend>> OpenSegmentBackend(const Superblock& super);

// Whether the cluster's file system was formatted with an object store that every node shares
// (--object-store): then sealed segments tier out of the pool. Without one, each node has a
// file:// store of its own that no other node can read, and segments stay in the pool.
Result<bool> HasSharedObjectStore(kv::KvStore& kv);

// Format's cluster half: checks the database and the pool, and writes the root directory, the
// shared superblock and node 1 in one transaction that fails (kExists) when the database already
// holds a file system. Sets super->cluster.node.
// restored_meta: a restore (fs/snapshot_restore.cc): the RocksDB metadata of the snapshot,
// copied into the database, which must be empty, instead of a new root directory. Its segments
// become node 1's (node 1 manages them: removal, refs), its orphans too.
Status CreateClusterFileSystem(Superblock* super, const std::string& data_dir,
                               const std::string& restored_meta);
// Records this node's mount time in its member record.
Status RecordMount(kv::KvStore* kv, const Superblock& super, const std::string& data_dir);

// A node's heartbeat: what it did over the last interval.
struct Heartbeat {
  bool mounted = true;  // false: the last one, written at unmount
  double interval_s = 0;
  double read_bytes_per_s = 0, write_bytes_per_s = 0, read_ops_per_s = 0, write_ops_per_s = 0;
};
Status WriteHeartbeat(kv::KvStore* kv, uint32_t node, const Heartbeat& beat);
// Every member with its state, from the member records and heartbeats (now: seconds since the
// epoch, to judge whether a heartbeat is late).
Result<std::vector<Member>> ReadMembers(kv::KvStore& kv, int64_t now);
// A member as `cairn cluster members --json` and `cairn status --json` show it.
nlohmann::json MemberJson(const Member& m);

void StageRootDirectory(kv::WriteBatch* batch);
std::string SuperblockJson(const Superblock& sb, bool with_cluster);
Status WriteSuperblock(const std::string& data_dir, const Superblock& sb);
// `where` names the text in errors; data_dir gives the default object store.
Result<Superblock> ParseSuperblock(std::string_view text, const std::string& where,
                                   const std::string& data_dir);

}  // namespace cairn::fs
