// FileSystem: the one facade over metadata (meta/), data (data/) and the inode cache that FUSE,
// the CLI's daemon and tests call. No FUSE types here: requests arrive as inode numbers, names and
// byte ranges; replies are `struct stat` and Status codes (mapped to errno once, by ToErrno).
//
// Consistency: every namespace change is one atomic KV write batch. Namespace changes lock the
// inodes they touch (fs/txn.h): changes of different directories run in parallel, and so do data
// reads and writes of different files (per-inode locks, see inode_cache.h). Durability
// (docs/ARCHITECTURE.md): data is appended to a segment before the batch that points at it commits;
// Fsync makes a file durable, FsyncDir the whole namespace; Shutdown makes everything durable.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "data/segment_store.h"
#include "fs/dir_cache.h"
#include "fs/inode_cache.h"
#include "fs/options.h"
#include "fs/snapshot_view.h"
#include "fs/snapshots.h"
#include "kv/kv_store.h"
#include "meta/meta_store.h"
#include "snap/manifest.h"
#include "tier/tier_engine.h"

namespace cairn::kv {
class PgKvStore;
}
namespace cairn::data {
class RadosSegments;
}

namespace cairn::fs {

// Who is asking: the owner of what gets created.
struct Context {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode;  // permission bits (and suid/sgid/sticky)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<meta::Timespec> atime;  // a value, or now when *_now is set
  std::optional<meta::Timespec> mtime;
  bool atime_now = false;
  bool mtime_now = false;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = 0;
};

// The kernel's caches, as the FUSE adapter exposes them: changes made without a kernel request
// (import --refresh) invalidate what the kernel may hold. Calls must not hold FileSystem locks.
class KernelCache {
 public:
  virtual ~KernelCache() = default;
  virtual void InvalidateEntry(uint64_t parent, std::string_view name) = 0;
  virtual void InvalidateInode(uint64_t ino) = 0;
  // Drops only the attributes (size, times): safe from within a request for that inode.
  virtual void InvalidateAttributes(uint64_t ino) = 0;
};

// Where a tree's bytes are (cairn tier location).
struct Location {
  uint64_t files = 0;
  uint64_t local_bytes = 0;   // on NVMe (segments on NVMe, inline data, cached objects)
  uint64_t remote_bytes = 0;  // only in the object store
};

struct ImportReport {
  uint64_t import_id = 0;
  uint64_t listed = 0;  // keys listed
  uint64_t files_created = 0, files_updated = 0, files_deleted = 0, files_unchanged = 0;
  uint64_t dirs_created = 0;
  uint64_t bytes = 0;                                        // of the files created or updated
  std::vector<std::pair<std::string, std::string>> skipped;  // key, reason
};

// What a push did (cairn snap push).
struct PushReport {
  std::string url;
  std::string manifest_key;
  uint64_t segments = 0, metadata_files = 0;
  uint64_t objects_uploaded = 0, objects_present = 0;
  uint64_t bytes_uploaded = 0, bytes_present = 0;
  uint64_t files = 0, file_bytes = 0;
  double seconds = 0;
};

struct RemoteDeleteReport {
  std::string manifest_key;
  uint64_t objects_deleted = 0, bytes_deleted = 0;
  uint64_t objects_kept = 0;  // still referenced (by the live tree or another snapshot)
};

struct Stats {
  uint64_t files = 0;        // regular files
  uint64_t directories = 0;  // including the root
  uint64_t symlinks = 0;
  uint64_t bytes = 0;  // sum of regular file sizes
  uint64_t inline_files = 0;
  uint64_t inline_bytes = 0;
  uint64_t segments = 0;
  uint64_t space_used = 0;  // bytes in segment files
  uint64_t space_live = 0;  // bytes of segments that extents still map
  uint64_t compacted_segments = 0;
  uint64_t cached_inodes = 0;
};

// Cluster mode, for cairn status: this node, the members, the pool.
struct ClusterStats {
  uint32_t node = 0;
  uint64_t members = 0;
  std::vector<Member> nodes;  // every member, with its state and last heartbeat's rates
  std::string pool;
  uint64_t pool_bytes = 0, pool_objects = 0;  // the whole pool, as Ceph counts it
  uint64_t conflict_retries = 0;              // changes rerun after another node's (this node)
};

// What one change does to the totals (Stats) and to segments' live bytes. Staged into the
// change's own batch as counter additions ('M' totals, 'L' live bytes) and applied in memory
// once that batch committed, so a mount reads the totals instead of scanning every record.
struct Accounting {
  int64_t files = 0, directories = 0, symlinks = 0, bytes = 0, inline_files = 0, inline_bytes = 0;
  std::vector<std::pair<uint64_t, int64_t>> live;  // segment id -> live bytes
  // Adds after's contribution and removes before's. Either may be null.
  void Add(const meta::Inode* before, const meta::Inode* after);
};

struct Engines;

class FileSystem {
 public:
  // Opens a formatted data directory and takes its lock (kBusy when another process holds it),
  // over the engines its superblock names (OpenEngines). Orphans left by a crash are reclaimed
  // here.
  static Result<std::unique_ptr<FileSystem>> Open(const std::string& data_dir,
                                                  const MountOptions& options = {});
  // The same over engines the caller built (a test's in-memory metadata store): the metadata
  // must hold a formatted file system (a root directory at least).
  static Result<std::unique_ptr<FileSystem>> OpenWith(const std::string& data_dir, Engines engines,
                                                      const MountOptions& options = {});
  ~FileSystem();

  const std::string& data_dir() const { return data_dir_; }
  const Superblock& superblock() const { return super_; }

  // Kernel-visible references: Lookup, the creating calls and Remember add one lookup each.
  Result<struct stat> Lookup(uint64_t parent, std::string_view name);
  Result<struct stat> Remember(uint64_t ino);
  void Forget(uint64_t ino, uint64_t n);
  Result<struct stat> GetAttr(uint64_t ino);
  Result<struct stat> SetAttr(uint64_t ino, const SetAttrRequest& req);

  Result<struct stat> Mknod(const Context& ctx, uint64_t parent, std::string_view name,
                            uint32_t mode, uint64_t rdev);
  Result<struct stat> Mkdir(const Context& ctx, uint64_t parent, std::string_view name,
                            uint32_t mode);
  Result<struct stat> Symlink(const Context& ctx, uint64_t parent, std::string_view name,
                              std::string_view target);
  Result<struct stat> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status Unlink(uint64_t parent, std::string_view name);
  Status Rmdir(uint64_t parent, std::string_view name);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, unsigned flags);
  Result<std::string> Readlink(uint64_t ino);

  // Open/Create count an open handle until Release.
  Status Open(uint64_t ino, int flags);
  Result<struct stat> Create(const Context& ctx, uint64_t parent, std::string_view name,
                             uint32_t mode, int flags);
  Result<size_t> Read(uint64_t ino, uint64_t offset, size_t size, char* out);
  Result<size_t> Write(uint64_t ino, uint64_t offset, const char* data, size_t size);
  Status Release(uint64_t ino);
  Status Fsync(uint64_t ino);
  Status FsyncDir(uint64_t ino);
  // mode: 0 (extend), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE.
  Status Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);

  // A directory handle: the listing (".", ".." first) is taken at the handle's first DirHandle
  // (a snapshot view's at OpenDir), and readdir pages through that copy.
  Result<uint64_t> OpenDir(uint64_t ino);
  Result<std::shared_ptr<const std::vector<DirEntry>>> DirHandle(uint64_t handle);
  void ReleaseDir(uint64_t handle);

  Status SetXattr(uint64_t ino, std::string_view name, std::string_view value, int flags);
  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name);

  Result<struct statvfs> StatFs();
  Stats GetStats();
  // Cluster mode only (kInvalid otherwise).
  Result<ClusterStats> GetClusterStats();

  // How long the kernel may keep a name or attributes it was given of inode ino (0: an absence)
  // (FUSE entry and attribute timeouts): `configured` on a single node and for what a snapshot
  // holds (it never changes); on a cluster MountOptions::notice_timeout_s while other nodes'
  // changes are heard, else the lease.
  double KernelTimeout(double configured, uint64_t ino) const;

  // The object tier (fs/tier_ops.cc). ino names a file or the root of a tree.
  tier::TierEngine& tier() { return *tier_; }
  // The kernel's caches (null: none, before the mount goes). In cluster mode with notices on
  // (MountOptions::notify), the node then hears other nodes' changes and drops what it and the
  // kernel cached of them at once (fs/cluster.cc).
  void SetKernelCache(KernelCache* kernel);
  Result<Location> TierLocation(uint64_t ino);
  // Warms the tree onto NVMe; returns the bytes that found no room.
  Result<uint64_t> TierFetch(uint64_t ino, const tier::TierEngine::Progress& progress);
  // The same for several trees at once (one parallel fetch: the native client's hydration).
  Result<uint64_t> TierFetch(std::span<const uint64_t> inos,
                             const tier::TierEngine::Progress& progress);
  // Evicts the tree's uploaded data; returns {bytes freed, bytes not uploaded yet}.
  Result<std::pair<uint64_t, uint64_t>> TierRelease(uint64_t ino);

  // cairn import (fs/import_ops.cc): mirrors the keys of url under directory dest. With refresh,
  // an earlier import of url into dest picks up new, changed and deleted objects.
  // list_parallel: see tier::ListForImport.
  using ImportProgress = std::function<void(std::string_view phase, uint64_t done)>;
  Result<ImportReport> Import(const Context& ctx, uint64_t dest, const std::string& url,
                              bool refresh, int list_parallel, const ImportProgress& progress);
  // The native client's index of a tree (fs/dataset_ops.cc, include/cairn/client.h): every
  // regular file under dir (a path from the root, "" or "/" for the root), directory by
  // directory (its files in name order, then its subdirectories), with what reading it needs. Each
  // file's records are read as they are at that moment, without locks: a file changed during the
  // walk may show its old extents (which still hold the old bytes, checksummed) or fail a read.
  struct IndexedFile {
    std::string path;  // relative to dir
    uint64_t ino = 0;
    uint64_t size = 0;
    std::string inline_data;  // the whole file when it is stored inline
    bool mount_only = false;  // imported data: read it through the mount ...
    std::string etag;         // ... or from the daemon's cache of this version of its object
    std::vector<meta::Extent> extents;
  };
  Result<std::vector<IndexedFile>> IndexTree(std::string_view dir);

  // Snapshots (fs/snapshot_ops.cc, fs/snapshot_push.cc). Creation checkpoints the metadata and
  // pins the segments; the snapshot shows at .snapshots/<name>, read-only.
  Result<SnapshotInfo> CreateSnapshot(std::string_view name);
  std::vector<SnapshotInfo> ListSnapshots();
  Status DeleteSnapshot(std::string_view name);
  // Uploads what snapshot `name` needs that url (empty: the file system's own object store)
  // lacks, then its manifest. progress(phase, done_bytes, total_bytes).
  using PushProgress = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;
  Result<PushReport> PushSnapshot(std::string_view name, const std::string& url,
                                  const PushProgress& progress);
  // Deletes the pushed snapshot `name` of this file system from url, and the objects of this
  // file system that nothing else references (docs/ARCHITECTURE.md, "Snapshots").
  Result<RemoteDeleteReport> DeleteRemoteSnapshot(std::string_view name, const std::string& url);

  // Compacts sealed segments whose live fraction is below the threshold; returns how many.
  Result<size_t> CompactOnce(double live_threshold);
  // Flushes everything, reclaims orphans, seals the open segment. Idempotent.
  Status Shutdown();

 private:
  class Txn;
  // The one retry driver: runs op(Txn&) or op() until it neither met a lock-order conflict nor
  // (cluster) another node's change (fs/txn.h).
  template <typename Op>
  auto RunOp(Op&& op);
  // One namespace change: body stages it into the Txn it is given (a meta/ops.h operation);
  // RunChange commits it, through RunOp.
  using ChangeBody = std::function<Result<struct stat>(Txn&)>;
  Result<struct stat> RunChange(const ChangeBody& body);
  // The entry parent/name as the node knows it. locked: parent's record as a Txn that holds its
  // lock has it (then only a directory cached at that record answers), or null.
  Result<meta::Dentry> DentryFor(uint64_t parent, const meta::Inode* locked, std::string_view name);
  // Cluster mode: reads directory parent whole into dir_cache_ (and its entries' inode records into
  // the inode cache).
  Status LoadDir(uint64_t parent);
  // Cluster mode: the records of the entries of a cached directory (PrimeDir), or of these
  // entries, read in one round trip into the inode cache as of `started`.
  void PrimeDir(uint64_t parent);
  void PrimeInodes(const std::vector<std::pair<std::string, meta::Dentry>>& entries,
                   int64_t started);
  // Cluster mode: whether other nodes' changes are being heard now.
  bool Listening() const;
  struct Counters {  // the in-memory totals (Stats); persisted copies in 'M' keys
    std::atomic<int64_t> files{0}, directories{0}, symlinks{0}, bytes{0}, inline_files{0},
        inline_bytes{0};
  };

  FileSystem(std::string data_dir, Superblock super, MountOptions options);
  static Result<std::unique_ptr<FileSystem>> OpenLocked(const std::string& data_dir,
                                                        Superblock super, int lock_fd,
                                                        Engines engines,
                                                        const MountOptions& options);
  Status Load(Engines engines);
  Status StartCompactor();
  void CompactorLoop();

  struct stat ToStat(const meta::Inode& inode) const;
  // Accounting: staged into a change's batch, applied once it committed.
  void Stage(const Accounting& a, kv::WriteBatch* batch) const;
  void Apply(const Accounting& a);
  // The totals as the metadata holds them; recomputes and writes them (and every inode's
  // `stored`) once, for a file system made before they were kept.
  Status LoadAccounting();
  // The totals as stored (every node's shard summed).
  Status ReadTotals(Counters* out);
  Result<std::shared_ptr<InodeState>> Dir(uint64_t ino);
  // Whether ino's cached record says it has no extended attributes.
  Result<bool> HasNoXattrs(uint64_t ino);
  Result<struct stat> MakeNode(const Context& ctx, uint64_t parent, std::string_view name,
                               uint32_t mode, uint64_t rdev, std::string_view symlink_target);
  Status RemoveEntry(uint64_t parent, std::string_view name, bool dir);
  // Reclaims an unlinked inode once nothing refers to it.
  void MaybeReclaim(uint64_t ino, const std::shared_ptr<InodeState>& state);
  Status ReclaimLocked(InodeState& state);  // REQUIRES: state.lock held exclusive
  // Reclaims every inode marked orphan (at mount, and at unmount when no handle is left).
  Result<size_t> ReclaimOrphans();
  Result<bool> IsAncestor(uint64_t maybe_ancestor, uint64_t ino);

  // Data path helpers. REQUIRES: state.lock held exclusive, unless said otherwise.
  using LiveDeltas = std::vector<std::pair<uint64_t, int64_t>>;  // segment id -> live bytes
  // Work on `inode`, a copy of the cached record, adding to batch; CommitData installs it.
  Status WriteLocked(meta::Inode& inode, uint64_t offset, const char* data, size_t size,
                     kv::WriteBatch* batch, LiveDeltas* live);
  Status AppendRange(uint64_t ino, uint64_t offset, const char* data, size_t size,
                     kv::WriteBatch* batch, LiveDeltas* live);
  // Blobs a write appended and has not committed yet (SegmentStore::Append with uncommitted):
  // compaction leaves their segments alone. Marked committed on destruction.
  class PendingAppends {
   public:
    explicit PendingAppends(data::SegmentStore* segments) : segments_(segments) {}
    PendingAppends(const PendingAppends&) = delete;
    PendingAppends& operator=(const PendingAppends&) = delete;
    ~PendingAppends() {
      for (uint64_t id : ids_) segments_->Committed(id);
    }
    void Add(uint64_t segment_id) { ids_.push_back(segment_id); }

   private:
    data::SegmentStore* segments_;
    std::vector<uint64_t> ids_;
  };
  // Appends [offset, offset + size) to segments without touching the inode, for a commit under
  // the exclusive lock. REQUIRES: state.lock held (shared is enough).
  Status AppendPending(uint64_t ino, uint64_t offset, const char* data, size_t size,
                       std::vector<meta::Extent>* extents, PendingAppends* pending);
  Status PunchLocked(uint64_t ino, uint64_t begin, uint64_t end, kv::WriteBatch* batch,
                     LiveDeltas* live);
  Status TruncateLocked(meta::Inode& inode, uint64_t size, kv::WriteBatch* batch, LiveDeltas* live);
  // fallocate: zero-filled extents for the holes of [begin, end) (inside the file's size).
  Status ReserveLocked(meta::Inode& inode, uint64_t begin, uint64_t end, kv::WriteBatch* batch,
                       LiveDeltas* live);
  Status CommitData(InodeState& state, const meta::Inode& updated, kv::WriteBatch* batch,
                    const LiveDeltas& live);
  // meta: where the inode's extents are (nullptr: the live store); cache_ino: the inode number
  // that names an imported file's cached object; state: the live inode's state, whose cached
  // extents serve the read (REQUIRES: its lock held, shared is enough).
  Result<size_t> ReadLocked(const meta::Inode& inode, uint64_t offset, size_t size, char* out,
                            meta::MetaStore* meta = nullptr, uint64_t cache_ino = 0,
                            InodeState* state = nullptr);
  // The extents of state's file overlapping [begin, end), from its cache (filled when stale).
  Result<std::vector<meta::Extent>> CachedExtents(InodeState& state, uint64_t begin, uint64_t end);
  Status CompactSegment(uint64_t segment_id);
  // Copies an imported file's bytes into segments (before its first change). REQUIRES: the
  // inode's lock held exclusive.
  Status MaterializeLocked(meta::Inode& inode, kv::WriteBatch* batch, LiveDeltas* live);
  Status OpenTier();
  // Snapshots: the catalog (snapshots_), made and loaded at mount.
  Status LoadSnapshots();
  // Single-node push: every segment in ids in dest, uploaded by the tier (dest is the own store)
  // or copied (fs/snapshot_push.cc).
  Status PushSegments(std::string_view name, const std::set<uint64_t>& ids, bool own,
                      tier::ObjectStore* dest, std::vector<snap::SegmentRef>* segs,
                      PushReport* report, const PushProgress& progress);
  // Cluster push: every segment in need (segment -> the bytes the snapshot maps of it) copied
  // to dest, read from the pool or the shared object store (fs/snapshot_push.cc).
  Status CopyClusterSegments(const std::map<uint64_t, uint64_t>& need, tier::ObjectStore* dest,
                             std::vector<snap::SegmentRef>* segs, PushReport* report,
                             const PushProgress& progress);
  Result<struct stat> SnapGetAttr(uint64_t ino);
  Result<struct stat> SnapLookup(uint64_t parent, std::string_view name);
  Result<std::string> SnapReadlink(uint64_t ino);
  Result<size_t> SnapRead(uint64_t ino, uint64_t offset, size_t size, char* out);
  Result<uint64_t> SnapOpenDir(uint64_t ino);
  Result<std::string> SnapGetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> SnapListXattr(uint64_t ino);
  uint64_t AddDirHandle(std::shared_ptr<std::vector<DirEntry>> entries);
  struct stat SnapDirStat();
  // Removes a segment nothing maps, unless a snapshot holds it; rewrites refs/<uuid>.json when
  // it was another file system's.
  Status RemoveSegment(uint64_t segment_id);
  Status WriteRefs();
  // The object store a push or remote delete goes to: the file system's own (url empty or
  // equal to it) or another one, opened for the call.
  struct Destination {
    bool own = true;
    std::string url;
    tier::ObjectStore* store = nullptr;
    std::unique_ptr<tier::ObjectStore> opened;
  };
  Result<Destination> OpenDestination(const std::string& url);
  struct stat ViewStat(uint32_t index, const meta::Inode& inode) const;
  // Calls visit for every inode of the tree at ino (each once, hard links included).
  Status WalkTree(uint64_t ino, const std::function<Status(const meta::Inode&)>& visit);
  Status MoveBlob(uint64_t segment_id, const data::RecordHeader& header, uint64_t blob_offset,
                  uint64_t* moved);
  Status MoveBlobLocked(uint64_t segment_id, const data::RecordHeader& header, uint64_t blob_offset,
                        uint64_t* moved);

  // Cluster mode: reads the record of state's inode again when the cached copy is older than the
  // lease, or always when `force` (open: close-to-open). A record that is gone means another
  // node removed the inode: the state is marked deleted.
  // *changed (if given): whether the record differed from the cached copy.
  Status Revalidate(InodeState& state, bool force = false, bool* changed = nullptr);
  // Cluster mode: after a batch failed with kConflict, the inode's record as stored now.
  void Reload(InodeState& state);
  // Cluster mode: another node changed these keys (null: anything may have changed).
  void OnOtherNodesChanges(const std::vector<std::string>* keys);
  // Drops what the kernel holds of an entry (name non-empty) or an inode, soon, on the
  // invalidation thread: the kernel takes the directory's lock to drop an entry, and the process
  // that holds it may be waiting for this node (a lookup in .snapshots while a refresh drops a
  // deleted snapshot's name would wait for itself). Without a kernel cache, nothing.
  void InvalidateLater(uint64_t ino, std::string name = {});
  void InvalidatorLoop();
  // Cluster mode: writes this node's heartbeat every MountOptions::heartbeat_s until Shutdown.
  void HeartbeatLoop();
  static constexpr int kMaxConflictRuns = 1000;
  static void ConflictRetried();  // counts a run again after another node's change

  const std::string data_dir_;
  const Superblock super_;
  const MountOptions options_;
  // Cluster mode: the node's cache of whole directories (null on a single node).
  std::unique_ptr<DirCache> dir_cache_;
  // Cluster mode: when the last notice of another node's inode change was heard (MonotonicNs).
  std::atomic<int64_t> inode_noticed_at_{0};
  const bool cluster_;      // metadata in PostgreSQL and segments in RADOS, shared by nodes
  const int64_t lease_ns_;  // cluster mode: how long a cached inode record is trusted
  // Cluster mode: records read before this (MonotonicNs) are read again at their next use.
  std::atomic<int64_t> stale_before_{0};
  int lock_fd_ = -1;
  std::unique_ptr<kv::KvStore> kv_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<meta::IdAllocator> inos_;
  std::shared_ptr<data::SegmentBackend> backend_;  // null: the data directory's files
  // Cluster mode: kv_ and backend_ as what they are (null on a single node).
  kv::PgKvStore* pg_ = nullptr;
  data::RadosSegments* rados_ = nullptr;
  std::unique_ptr<data::SegmentStore> segments_;
  std::unique_ptr<InodeCache> cache_;
  std::unique_ptr<tier::TierEngine> tier_;
  KernelCache* kernel_ = nullptr;
  Counters counters_;
  // The invalidation thread and its queue (InvalidateLater), running while kernel_ is set.
  std::mutex inval_mu_;
  std::condition_variable inval_cv_;
  std::deque<std::pair<uint64_t, std::string>> inval_queue_;  // GUARDED_BY(inval_mu_)
  bool inval_stop_ = false;                                   // GUARDED_BY(inval_mu_)
  std::thread invalidator_;

  // Held by renames that move a directory to another parent: they alone change parent pointers,
  // so with it held the loop check's walk up the tree stays true until the rename commits.
  std::mutex rename_mu_;

  // An open directory: its entries once a READDIR read them (snapshot views: at OpenDir).
  struct OpenDirState {
    uint64_t ino = 0;
    std::shared_ptr<const std::vector<DirEntry>> entries;
  };
  // The entries of directory ino, with "." and "..", sorted by name.
  Result<std::shared_ptr<std::vector<DirEntry>>> ListEntries(uint64_t ino);
  std::mutex dirs_mu_;
  uint64_t next_dir_handle_ = 1;                     // GUARDED_BY(dirs_mu_)
  std::unordered_map<uint64_t, OpenDirState> dirs_;  // GUARDED_BY(dirs_mu_)

  std::unique_ptr<Snapshots> snapshots_;
  std::mutex remote_mu_;  // pushes and remote deletes, one at a time
  std::mutex refs_mu_;    // writes of refs/<uuid>.json

  // Data reads and writes served (cairn_read_bytes_total, ... in /metrics; the heartbeat's rates).
  struct Io {
    metrics::Counter& reads = metrics::GetCounter("cairn_reads_total");
    metrics::Counter& read_bytes = metrics::GetCounter("cairn_read_bytes_total");
    metrics::Counter& writes = metrics::GetCounter("cairn_writes_total");
    metrics::Counter& written_bytes = metrics::GetCounter("cairn_written_bytes_total");
  } io_;

  // The background threads: compaction (single node), the heartbeat (cluster).
  std::mutex background_mu_;
  std::condition_variable background_cv_;
  bool stopping_ = false;  // GUARDED_BY(background_mu_)
  std::thread compactor_;
  std::thread heartbeat_;
  std::atomic<uint64_t> compacted_{0};
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // GUARDED_BY(shutdown_mu_)
};

}  // namespace cairn::fs
