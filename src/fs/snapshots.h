// fs::Snapshots: the snapshots of one file system, as its metadata store records them. One
// component over kv::KvStore's snapshot interface (create, open a read-only view, drop, list,
// SnapshotsHold), the same on every store: a RocksDB checkpoint on a single node, an epoch of the
// shared tables on a cluster, either as cheap at ten million files as at ten thousand.
//
// A snapshot is the store's snapshot plus an 'N' record naming it, written with it (on a cluster
// in the same transaction, so every node sees both or neither). Its index is the store's snapshot
// id and names its view's inode numbers (fs/snapshot_view.h). FileSystem serves the views'
// inodes, pushes and restores; this class keeps the catalog: which snapshots exist, their views,
// and which segments they hold.
//
// Segments: a segment stays while some snapshot holds its record (KvStore::SnapshotsHold), since
// the snapshot's extents may point into it. RemoveUnlessHeld asks under the lock that Create also
// holds, so on a node a segment is either removed before a snapshot is taken (and then nothing in
// it refers to the segment) or seen held by it. Across nodes no lock is needed: a node removes
// only its own sealed segments that no committed extent maps (their live bytes, read before the
// question, are 0), and no later snapshot can map what nothing maps. Snapshots made by an older
// Cairn on a cluster list their segments in their record (pins).
//
// Shared (cluster): other nodes create and delete snapshots, so the catalog reads the records
// again when asked to (Refresh) and at most once a lease for lookups; a single node reads them
// once, at Load.
// Thread-safety: every method may be called from many threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fs/snapshot_view.h"
#include "kv/kv_store.h"
#include "meta/schema.h"

namespace cairn::fs {

struct SnapshotInfo {
  std::string name;
  uint32_t index = 0;
  meta::Timespec created;
  uint64_t files = 0, bytes = 0;  // as the snapshot holds them
  std::vector<std::string> pushed_to;
};

class Snapshots {
 public:
  struct Options {
    std::string dir;       // DATA_DIR/snapshots: checkpoints (single node), exports (cluster)
    bool shared = false;   // a cluster's store, which other nodes change
    int64_t lease_ns = 0;  // shared: how long a lookup trusts the records it read
  };
  // What the file system does for the catalog: make everything a snapshot may point at durable
  // before it is taken, and drop what the kernel holds of a name under .snapshots.
  struct Host {
    std::function<Status()> sync_data;
    std::function<void(std::string name)> name_gone;
  };
  Snapshots(kv::KvStore* kv, Options options, Host host);

  // At mount: reads the records, drops store snapshots that no record names (a creation or
  // deletion cut short by a crash) and, shared, exports of snapshots deleted since.
  Status Load();
  // kExists for a name taken, kInvalid for a bad name, kNoSpace past meta::kMaxSnapshotIndex.
  Result<SnapshotInfo> Create(std::string_view name);
  // By creation time.
  std::vector<SnapshotInfo> List();
  // The record goes first, then the store's snapshot (its history, or its checkpoint once its last
  // reader closes); segments it alone held go at the next compaction. REQUIRES: no push of it runs.
  Status Delete(std::string_view name);
  // Shared: the catalog as the records say now. Nothing on a single node.
  Status Refresh();
  // Refresh, at most once a lease (lookups and listings of .snapshots).
  Status RefreshForLookup();

  // kNotFound when there is none (shared: after reading the records once more).
  Result<std::shared_ptr<SnapshotView>> View(uint32_t index);
  Result<std::shared_ptr<SnapshotView>> ViewByName(std::string_view name);
  // Every view, by index.
  std::vector<std::shared_ptr<SnapshotView>> Views();

  // Whether a snapshot holds the segment.
  Result<bool> Pinned(uint64_t segment_id);
  // Runs remove unless a snapshot holds the segment, under the lock Create takes. Returns whether
  // it ran.
  Result<bool> RemoveUnlessHeld(uint64_t segment_id, const std::function<Status()>& remove);
  // Keeps in snapshot name's record that it is (pushed) or no longer is at url.
  Status NotePushed(std::string_view name, const std::string& url, bool pushed);
  // The snapshot as a RocksDB checkpoint in view.dir(), the form a push uploads and a restore
  // opens: a single node's snapshot is one already; a cluster's is written out once.
  Status Export(SnapshotView& view);

 private:
  std::shared_ptr<SnapshotView> NewView(const meta::SnapshotRecord& rec);
  Status RefreshLocked();      // REQUIRES: mu_
  void RecomputePinsLocked();  // REQUIRES: mu_ and views_mu_

  kv::KvStore* const kv_;
  const Options options_;
  const Host host_;
  std::mutex mu_;              // creation and deletion, pins, segment removal
  std::set<uint64_t> pinned_;  // GUARDED_BY(mu_): the pins of older Cairns' records
  std::shared_mutex views_mu_;
  std::map<uint32_t, std::shared_ptr<SnapshotView>> views_;  // GUARDED_BY(views_mu_)
  std::atomic<int64_t> read_at_{INT64_MIN / 2};  // MonotonicNs of the last read of the records
};

}  // namespace cairn::fs
