// FileSystem: opening a data directory, attributes, the inode life cycle, stats and shutdown.
// Namespace changes are in namespace_ops.cc and rename.cc, the data path in data_ops.cc.
#include "fs/file_system.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/coding.h"
#include "common/logging.h"
#include "data/rados_segments.h"
#include "fs/cluster.h"
#include "fs/txn.h"
#include "kv/pg_kv_store.h"
#include "tier/fault_object_store.h"
#include "tier/metered_object_store.h"

namespace cairn::fs {
namespace {
constexpr unsigned kClusterWriteLanes = 4;
}  // namespace

FileSystem::FileSystem(std::string data_dir, Superblock super, MountOptions options)
    : data_dir_(std::move(data_dir)),
      super_(std::move(super)),
      options_(options),
      cluster_(super_.cluster.enabled()),
      lease_ns_(static_cast<int64_t>(options.lease_s * 1e9)) {}

FileSystem::~FileSystem() {
  Status st = Shutdown();
  if (!st.ok()) log::Error("shutdown: {}", st.ToString());
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<FileSystem>> FileSystem::Open(const std::string& data_dir,
                                                     const MountOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(Superblock super, ReadSuperblock(data_dir));
  // The data directory's lock first: its metadata (RocksDB) takes one too, with a worse message.
  CAIRN_ASSIGN_OR_RETURN(int lock_fd, LockDataDir(data_dir));
  auto engines = OpenEngines(data_dir, super);
  if (!engines) {
    ::close(lock_fd);
    return Err(engines.error());
  }
  return OpenLocked(data_dir, std::move(super), lock_fd, std::move(*engines), options);
}

Result<std::unique_ptr<FileSystem>> FileSystem::OpenWith(const std::string& data_dir,
                                                         Engines engines,
                                                         const MountOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(Superblock super, ReadSuperblock(data_dir));
  CAIRN_ASSIGN_OR_RETURN(int lock_fd, LockDataDir(data_dir));
  return OpenLocked(data_dir, std::move(super), lock_fd, std::move(engines), options);
}

Result<std::unique_ptr<FileSystem>> FileSystem::OpenLocked(const std::string& data_dir,
                                                           Superblock super, int lock_fd,
                                                           Engines engines,
                                                           const MountOptions& options) {
  std::unique_ptr<FileSystem> fs(new FileSystem(data_dir, std::move(super), options));
  fs->lock_fd_ = lock_fd;
  CAIRN_RETURN_IF_ERROR(fs->Load(std::move(engines)));
  // In cluster mode compaction only removes the node's segments that nothing maps any more
  // (CompactOnce; docs/ARCHITECTURE.md, "Cluster").
  if (options.compaction_interval_s > 0) {
    fs->compactor_ = std::thread([p = fs.get()] { p->CompactorLoop(); });
  }
  if (fs->cluster_ && options.heartbeat_s > 0) {
    fs->heartbeat_ = std::thread([p = fs.get()] { p->HeartbeatLoop(); });
  }
  return fs;
}

Status FileSystem::Load(Engines engines) {
  kv_ = std::move(engines.kv);
  pg_ = engines.pg;
  backend_ = std::move(engines.segments);
  rados_ = engines.rados;
  if (!kv_) return Err(Code::kInvalid, "no metadata store");
  if (cluster_ && !pg_) return Err(Code::kInvalid, "cluster metadata is not in PostgreSQL");
  if (pg_ && options_.notify) {
    // Changes of inode records and names are announced to the other nodes (SetKernelCache).
    kv::PgNotices n;
    n.origin = std::to_string(super_.cluster.node);
    n.watched = [](std::string_view key) {
      return !key.empty() && (key[0] == 'I' || key[0] == 'D');
    };
    pg_->Announce(std::move(n));
  }
  meta_ = std::make_unique<meta::MetaStore>(kv_.get());
  if (cluster_) dir_cache_ = std::make_unique<DirCache>([this] { return Listening(); }, lease_ns_);
  inos_ = std::make_unique<meta::IdAllocator>(kv_.get(), "next_ino", meta::kRootIno + 1);
  CAIRN_RETURN_IF_ERROR(inos_->Load());
  data::SegmentStoreOptions seg_opts;
  seg_opts.segment_size = super_.segment_size;
  seg_opts.node = super_.cluster.node;
  // A cluster's appends are replicated RADOS writes, applied one after the other per object:
  // several open segments let concurrent writers of different files proceed in parallel. Open
  // segments cannot be evicted, so they may take at most a quarter of a set NVMe capacity.
  seg_opts.lanes = 1;
  if (cluster_) {
    const uint64_t cap = super_.tier.nvme_capacity;
    seg_opts.lanes = cap == 0 ? kClusterWriteLanes
                              : static_cast<unsigned>(std::clamp<uint64_t>(
                                    cap / (4 * super_.segment_size), 1, kClusterWriteLanes));
  }
  seg_opts.backend = backend_;
  if (cluster_) CAIRN_RETURN_IF_ERROR(RecordMount(kv_.get(), super_, data_dir_));
  CAIRN_ASSIGN_OR_RETURN(segments_, data::SegmentStore::Open(data_dir_, kv_.get(), seg_opts));
  cache_ = std::make_unique<InodeCache>(meta_.get(), 1 << 20, /*keep_unreferenced=*/cluster_);
  CAIRN_RETURN_IF_ERROR(LoadSnapshots());
  CAIRN_RETURN_IF_ERROR(OpenTier());

  // The totals and each segment's live bytes: read, not rebuilt (independent of the file count).
  CAIRN_RETURN_IF_ERROR(LoadAccounting());
  CAIRN_ASSIGN_OR_RETURN(auto root, cache_->Get(meta::kRootIno, 1));
  (void)root;

  // Files unlinked while open when the last session ended: nothing can reach them any more.
  CAIRN_ASSIGN_OR_RETURN(size_t reclaimed, ReclaimOrphans());
  if (reclaimed > 0) log::Info("reclaimed {} orphaned inodes", reclaimed);
  return Status::Ok();
}

struct stat FileSystem::ToStat(const meta::Inode& inode) const {
  struct stat st {};
  st.st_ino = inode.ino;
  st.st_mode = inode.mode;
  st.st_nlink = inode.nlink;
  st.st_uid = inode.uid;
  st.st_gid = inode.gid;
  st.st_rdev = inode.rdev;
  st.st_size = static_cast<off_t>(inode.size);
  st.st_blksize = 128 * 1024;
  // What is stored: a regular file's extents (holes cost nothing), inline bytes in the record,
  // an imported file's object (not yet copied in) at its size.
  uint64_t stored = inode.size;
  if (inode.IsReg() && !inode.is_inline && !inode.is_remote && inode.stored != UINT64_MAX) {
    stored = inode.stored;
  }
  st.st_blocks = static_cast<blkcnt_t>((stored + 511) / 512);
  st.st_atim = {inode.atime.sec, inode.atime.nsec};
  st.st_mtim = {inode.mtime.sec, inode.mtime.nsec};
  st.st_ctim = {inode.ctime.sec, inode.ctime.nsec};
  return st;
}

namespace {
using meta::kAccountingVersion;
using meta::kAccountingVersionKey;
using meta::kTotalBytes;
using meta::kTotalDirectories;
using meta::kTotalFiles;
using meta::kTotalInlineBytes;
using meta::kTotalInlineFiles;
using meta::kTotalSymlinks;
}  // namespace

void Accounting::Add(const meta::Inode* before, const meta::Inode* after) {
  auto apply = [this](const meta::Inode& i, int64_t sign) {
    if (i.IsReg()) {
      files += sign;
      bytes += sign * static_cast<int64_t>(i.size);
      if (i.is_inline && i.size > 0) {
        inline_files += sign;
        inline_bytes += sign * static_cast<int64_t>(i.size);
      }
    } else if (i.IsDir()) {
      directories += sign;
    } else if (i.IsSymlink()) {
      symlinks += sign;
    }
  };
  if (before) apply(*before, -1);
  if (after) apply(*after, +1);
}

void FileSystem::Stage(const Accounting& a, kv::WriteBatch* batch) const {
  auto add = [this, batch](std::string_view name, int64_t delta) {
    if (delta != 0) batch->Add(meta::TotalKey(name, super_.cluster.node), delta);
  };
  add(kTotalFiles, a.files);
  add(kTotalDirectories, a.directories);
  add(kTotalSymlinks, a.symlinks);
  add(kTotalBytes, a.bytes);
  add(kTotalInlineFiles, a.inline_files);
  add(kTotalInlineBytes, a.inline_bytes);
  std::map<uint64_t, int64_t> per_segment;
  for (auto [seg, delta] : a.live) per_segment[seg] += delta;
  for (auto [seg, delta] : per_segment) {
    if (delta != 0) batch->Add(meta::LiveKey(seg), delta);
  }
}

void FileSystem::Apply(const Accounting& a) {
  counters_.files += a.files;
  counters_.directories += a.directories;
  counters_.symlinks += a.symlinks;
  counters_.bytes += a.bytes;
  counters_.inline_files += a.inline_files;
  counters_.inline_bytes += a.inline_bytes;
  for (auto [seg, delta] : a.live) segments_->AddLive(seg, delta);
}

Status FileSystem::LoadAccounting() {
  auto version = kv_->Get(meta::CounterKey(kAccountingVersionKey));
  if (!version && version.error().code() != Code::kNotFound) return version.error();
  if (!version) {
    // A file system from before the totals were kept: one scan of every inode and extent, the
    // last one this data directory needs.
    log::Info("upgrading the metadata: counting every inode and extent once");
    Accounting totals;
    std::map<uint64_t, int64_t> live;
    std::unordered_map<uint64_t, uint64_t> stored;
    {
      auto it = kv_->NewIterator("E", "F");
      for (it->Seek("E"); it->Valid(); it->Next()) {
        CAIRN_ASSIGN_OR_RETURN(meta::Extent e,
                               meta::DecodeExtent(meta::KeyU64(it->key(), true), it->value()));
        live[e.segment_id] += e.length;
        stored[meta::KeyU64(it->key())] += e.length;
      }
      CAIRN_RETURN_IF_ERROR(it->status());
    }
    kv::WriteBatch batch;
    auto flush = [&]() -> Status {
      Status st = kv_->Write(batch, false);
      batch = kv::WriteBatch();
      return st;
    };
    {
      auto it = kv_->NewIterator("I", "J");
      for (it->Seek("I"); it->Valid(); it->Next()) {
        const uint64_t ino = meta::KeyU64(it->key());
        CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta::DecodeInode(ino, it->value()));
        totals.Add(nullptr, &inode);
        auto s = stored.find(ino);
        inode.stored = s == stored.end() ? 0 : s->second;
        batch.Put(meta::InodeKey(ino), meta::EncodeInode(inode));
        if (batch.size() >= 10000) CAIRN_RETURN_IF_ERROR(flush());
      }
      CAIRN_RETURN_IF_ERROR(it->status());
    }
    // The totals are written as values (not additions), with the version key last, in one batch.
    CAIRN_RETURN_IF_ERROR(flush());
    auto put = [&](std::string_view name, int64_t v) {
      batch.Put(meta::CounterKey(name), kv::EncodeCounter(v));
    };
    put(kTotalFiles, totals.files);
    put(kTotalDirectories, totals.directories);
    put(kTotalSymlinks, totals.symlinks);
    put(kTotalBytes, totals.bytes);
    put(kTotalInlineFiles, totals.inline_files);
    put(kTotalInlineBytes, totals.inline_bytes);
    CAIRN_ASSIGN_OR_RETURN(auto old_live, kv::ScanRange(*kv_, meta::LivePrefix(),
                                                        meta::PrefixEnd(meta::LivePrefix())));
    for (const auto& [key, value] : old_live) batch.Delete(key);
    for (auto [seg, bytes] : live) batch.Put(meta::LiveKey(seg), kv::EncodeCounter(bytes));
    std::string v;
    PutFixed64(&v, kAccountingVersion);
    batch.Put(meta::CounterKey(kAccountingVersionKey), v);
    CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
  } else if (version->size() != 8 || DecodeFixed64(version->data()) != kAccountingVersion) {
    return Status(Code::kCorruption, "unknown metadata accounting version");
  }

  CAIRN_RETURN_IF_ERROR(ReadTotals(&counters_));
  // Live bytes: one key per segment. Keys of segments that are gone (a late addition after a
  // removal, or what a restore did not bring) are dropped.
  CAIRN_ASSIGN_OR_RETURN(
      auto lives, kv::ScanRange(*kv_, meta::LivePrefix(), meta::PrefixEnd(meta::LivePrefix())));
  std::set<uint64_t> known;
  for (const auto& seg : segments_->List()) known.insert(seg.id);
  kv::WriteBatch stale;
  for (const auto& [key, value] : lives) {
    const uint64_t seg = meta::KeyU64(key);
    CAIRN_ASSIGN_OR_RETURN(int64_t bytes, kv::DecodeCounter(value));
    if (known.count(seg)) {
      segments_->AddLive(seg, bytes);
    } else if (!cluster_) {  // in a cluster, the other nodes' segments are not in the list
      stale.Delete(key);
    }
  }
  if (!stale.empty()) CAIRN_RETURN_IF_ERROR(kv_->Write(stale, false));
  return Status::Ok();
}

Status FileSystem::ReadTotals(Counters* out) {
  CAIRN_ASSIGN_OR_RETURN(out->files, meta_->ReadTotal(kTotalFiles));
  CAIRN_ASSIGN_OR_RETURN(out->directories, meta_->ReadTotal(kTotalDirectories));
  CAIRN_ASSIGN_OR_RETURN(out->symlinks, meta_->ReadTotal(kTotalSymlinks));
  CAIRN_ASSIGN_OR_RETURN(out->bytes, meta_->ReadTotal(kTotalBytes));
  CAIRN_ASSIGN_OR_RETURN(out->inline_files, meta_->ReadTotal(kTotalInlineFiles));
  CAIRN_ASSIGN_OR_RETURN(out->inline_bytes, meta_->ReadTotal(kTotalInlineBytes));
  return Status::Ok();
}

Result<struct stat> FileSystem::Lookup(uint64_t parent, std::string_view name) {
  if (IsSnapIno(parent)) return SnapLookup(parent, name);
  if (parent == meta::kRootIno && name == kSnapDirName) return SnapDirStat();
  if (name.size() > meta::kMaxNameLength) return Err(Code::kNameTooLong);
  CAIRN_ASSIGN_OR_RETURN(meta::Dentry d, DentryFor(parent, nullptr, name));
  // Cluster: a name whose inode is not in memory (a cold walk or stat of the directory) brings
  // in the records of every entry of its directory, in one round trip.
  if (dir_cache_ && !cache_->Peek(d.ino)) PrimeDir(parent);
  return Remember(d.ino);
}

Result<struct stat> FileSystem::Remember(uint64_t ino) {
  if (IsSnapIno(ino)) return SnapGetAttr(ino);
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino, 1));
  CAIRN_RETURN_IF_ERROR(Revalidate(*state));
  std::shared_lock lock(state->lock);
  if (state->deleted) {
    lock.unlock();
    cache_->Drop(ino, 1, 0);
    return Err(Code::kNotFound);
  }
  return ToStat(state->inode);
}

void FileSystem::Forget(uint64_t ino, uint64_t n) {
  if (IsSnapIno(ino)) return;  // views keep no per-inode state
  if (ino == meta::kRootIno) return;
  if (!cache_->Drop(ino, n, 0)) return;
  // Not in memory: not unlinked (inode_cache.h), nothing to reclaim.
  if (auto state = cache_->Peek(ino)) MaybeReclaim(ino, state);
}

void FileSystem::MaybeReclaim(uint64_t ino, const std::shared_ptr<InodeState>& state) {
  if (!cache_->InUse(ino)) {
    std::unique_lock lock(state->lock);
    if (state->inode.nlink == 0 && !state->deleted) {
      Status st = ReclaimLocked(*state);
      if (!st.ok()) log::Error("reclaim inode {}: {}", ino, st.ToString());
    }
  }
  cache_->TryEvict(ino, &state);
}

Result<size_t> FileSystem::ReclaimOrphans() {
  CAIRN_ASSIGN_OR_RETURN(auto orphans, kv::ScanRange(*kv_, meta::OrphanPrefix(),
                                                     meta::PrefixEnd(meta::OrphanPrefix())));
  size_t reclaimed = 0;
  for (auto& [key, value] : orphans) {
    const uint64_t ino = meta::KeyU64(key);
    // In a cluster, an orphan is kept open by the node that unlinked it: only that node knows
    // when its last handle closes.
    if (meta::OrphanNode(value) != super_.cluster.node) continue;
    ++reclaimed;
    auto state = cache_->Get(ino);
    if (!state) {
      if (state.error().code() != Code::kNotFound) return Err(state.error());
      kv::WriteBatch batch;  // the inode is gone already: drop the stale marker
      batch.Delete(key);
      CAIRN_RETURN_IF_ERROR(kv_->Write(batch, false));
      continue;
    }
    {
      std::unique_lock lock((*state)->lock);
      if (!(*state)->deleted) CAIRN_RETURN_IF_ERROR(ReclaimLocked(**state));
    }
    cache_->TryEvict(ino, &*state);
  }
  return reclaimed;
}

Status FileSystem::ReclaimLocked(InodeState& state) {
  const uint64_t ino = state.inode.ino;
  kv::WriteBatch batch;
  if (cluster_) {
    // Only the node that unlinked the inode reclaims it (another node's handles may still use
    // it), and only once: the batch expects its orphan record to name this node. When it does
    // not (another node's orphan, or reclaimed already), nothing applies and this node lets go.
    batch.Expect(meta::OrphanKey(ino), meta::OrphanValue(super_.cluster.node));
  }
  std::vector<std::pair<uint64_t, int64_t>> live;
  // An inline file, an empty one and a directory have no extents (one range read saved).
  if (state.inode.IsReg() && !state.inode.is_inline && state.inode.stored != 0) {
    auto extents = meta_->GetExtents(ino, 0, UINT64_MAX);
    if (!extents) return extents.error();
    for (const auto& e : *extents) {
      batch.Delete(meta::ExtentKey(ino, e.file_offset));
      live.emplace_back(e.segment_id, -static_cast<int64_t>(e.length));
    }
  }
  // Point deletes, not a range tombstone: RocksDB checks every range tombstone in the memtable on
  // each read, so one per unlinked file made reads slower with every unlink.
  if (!state.inode.no_xattrs) {
    const std::string xattrs = meta::XattrPrefix(ino);
    CAIRN_ASSIGN_OR_RETURN(auto xattr_keys, kv::ScanRange(*kv_, xattrs, meta::PrefixEnd(xattrs)));
    for (const auto& [key, value] : xattr_keys) batch.Delete(key);
  }
  if (state.inode.is_remote) {
    batch.Delete(meta::ObjectRefKey(ino));
    tier_->DropObject(ino);
  }
  batch.Delete(meta::InodeKey(ino));
  batch.Delete(meta::OrphanKey(ino));
  Accounting acc;
  acc.Add(&state.inode, nullptr);
  acc.live = std::move(live);
  Stage(acc, &batch);
  Status st = kv_->Write(batch, false);
  if (st.code() == Code::kConflict) {
    state.deleted = true;  // not this node's to reclaim, or reclaimed already
    return Status::Ok();
  }
  CAIRN_RETURN_IF_ERROR(st);
  Apply(acc);
  state.deleted = true;
  return Status::Ok();
}

Status FileSystem::Revalidate(InodeState& state, bool force, bool* changed) {
  if (!cluster_) return Status::Ok();
  const int64_t read_at = state.read_at.load();
  // Trusted while no notice of a change came after it was read: for the lease, or, while the
  // node hears every notice, until one comes.
  if (!force && (Listening() || MonotonicNs() - read_at < lease_ns_) &&
      read_at >= stale_before_.load() && read_at > state.changed_at.load()) {
    return Status::Ok();
  }
  std::unique_lock lock(state.lock);
  if (state.deleted) return Status::Ok();
  const uint64_t ino = state.inode.ino;
  const int64_t before_read = MonotonicNs();
  auto fresh = meta_->GetInode(ino);
  if (!fresh) {
    if (fresh.error().code() != Code::kNotFound) return fresh.error();
    state.deleted = true;  // another node removed it
    if (changed) *changed = true;
    return Status::Ok();
  }
  if (changed) *changed = meta::EncodeInode(state.inode) != meta::EncodeInode(*fresh);
  state.inode = std::move(*fresh);
  state.read_at = before_read;
  return Status::Ok();
}

void FileSystem::SetKernelCache(KernelCache* kernel) {
  if (pg_) pg_->StopListening();  // before the kernel cache it calls goes
  if (invalidator_.joinable()) {
    {
      std::lock_guard lock(inval_mu_);
      inval_stop_ = true;
    }
    inval_cv_.notify_all();
    invalidator_.join();
  }
  kernel_ = kernel;
  if (!kernel) return;
  {
    std::lock_guard lock(inval_mu_);
    inval_stop_ = false;
    inval_queue_.clear();
  }
  invalidator_ = std::thread([this] { InvalidatorLoop(); });
  if (!cluster_ || !options_.notify || !pg_) return;
  kv::PgNotices n;
  n.origin = std::to_string(super_.cluster.node);
  Status st =
      pg_->Listen(n, [this](const std::vector<std::string>* keys) { OnOtherNodesChanges(keys); });
  if (!st.ok()) {
    log::Warn("not hearing other nodes' changes (they show within the lease): {}", st.ToString());
  }
}

void FileSystem::InvalidateLater(uint64_t ino, std::string name) {
  {
    std::lock_guard lock(inval_mu_);
    if (!invalidator_.joinable() || inval_stop_) return;
    inval_queue_.emplace_back(ino, std::move(name));
  }
  inval_cv_.notify_one();
}

void FileSystem::InvalidatorLoop() {
  std::unique_lock lock(inval_mu_);
  for (;;) {
    inval_cv_.wait(lock, [this] { return inval_stop_ || !inval_queue_.empty(); });
    if (inval_stop_) return;  // the mount is going: nothing is left to drop
    auto [ino, name] = std::move(inval_queue_.front());
    inval_queue_.pop_front();
    lock.unlock();
    if (name.empty()) {
      kernel_->InvalidateInode(ino);
    } else {
      kernel_->InvalidateEntry(ino, name);
    }
    lock.lock();
  }
}

void FileSystem::OnOtherNodesChanges(const std::vector<std::string>* keys) {
  static metrics::Counter& heard = metrics::GetCounter("cairn_cluster_notices_total");
  heard.Add();
  if (keys == nullptr) {
    // Some notices may be lost: every cached record and directory is read again at its next
    // use; what the kernel holds lasts at most the lease.
    stale_before_ = MonotonicNs();
    inode_noticed_at_ = MonotonicNs();
    dir_cache_->Clear();
    return;
  }
  for (const std::string& key : *keys) {
    if (key.size() < 9) continue;
    const uint64_t ino = meta::KeyU64(key);
    if (key[0] == 'I') {
      inode_noticed_at_ = MonotonicNs();
      if (auto state = cache_->Peek(ino)) state->changed_at = MonotonicNs();
      if (cache_->InUse(ino)) InvalidateLater(ino);
    } else if (key[0] == 'D') {
      const std::string_view name = std::string_view(key).substr(9);
      dir_cache_->Changed(ino, name);
      if (cache_->InUse(ino)) InvalidateLater(ino, std::string(name));
    }
  }
}

void FileSystem::Reload(InodeState& state) {
  const int64_t before_read = MonotonicNs();
  auto fresh = meta_->GetInode(state.inode.ino);
  if (fresh) {
    state.inode = std::move(*fresh);
    state.read_at = before_read;
  } else if (fresh.error().code() == Code::kNotFound) {
    state.deleted = true;
  } else {
    state.read_at = 0;  // unknown: the next use reads it again
  }
}

void FileSystem::ConflictRetried() {
  static metrics::Counter& retries = metrics::GetCounter("cairn_cluster_conflict_retries_total");
  retries.Add();
}

Status FileSystem::OpenTier() {
  const TierSettings& t = super_.tier;
  auto opened = tier::OpenObjectStore(t.object_store);
  if (!opened) {
    return Status(opened.error().code(),
                  "object store " + t.object_store + ": " + opened.error().message());
  }
  std::shared_ptr<tier::ObjectStore> store = std::move(*opened);
  // Tests inject object-store faults through the environment (docs/ARCHITECTURE.md).
  if (const char* spec = ::getenv("CAIRN_TEST_FAULTS"); spec && *spec) {
    tier::FaultOptions f;
    double delay_ms = 0;
    if (std::sscanf(spec, "error_rate=%lf,truncate_rate=%lf,delay_ms=%lf", &f.error_rate,
                    &f.truncate_rate, &delay_ms) >= 1) {
      f.delay = std::chrono::milliseconds(static_cast<int64_t>(delay_ms));
      log::Warn("object store faults injected: {}", spec);
      store = std::make_shared<tier::FaultObjectStore>(store, f);
    }
  }
  tier::TierOptions o;
  o.data_dir = data_dir_;
  o.uuid = super_.uuid;
  o.capacity = t.nvme_capacity;
  if (cluster_) {
    // Segments live in the pool; they tier out only to an object store all nodes share.
    CAIRN_ASSIGN_OR_RETURN(o.upload, HasSharedObjectStore(*kv_));
    if (o.capacity == 0 && rados_) {
      // This node's share of the pool: what it can hold over the number of members.
      o.capacity_source = [this]() -> Result<uint64_t> {
        CAIRN_ASSIGN_OR_RETURN(uint64_t pool, rados_->Capacity());
        CAIRN_ASSIGN_OR_RETURN(auto members, kv::ScanRange(*kv_, "K", "L"));
        return pool / std::max<uint64_t>(1, members.size());
      };
      auto share = o.capacity_source();
      if (!share) {
        log::Warn("pool capacity: {}; no evictions for space until it answers",
                  share.error().ToString());
      }
      o.capacity = share ? *share : UINT64_MAX / 4;
    }
  } else if (o.capacity == 0) {
    struct statvfs vfs {};
    if (::statvfs(data_dir_.c_str(), &vfs) != 0) return ErrnoStatus("statfs " + data_dir_);
    o.capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  }
  o.high_watermark = t.high_watermark;
  o.low_watermark = t.low_watermark;
  o.tiering_delay_s = t.tiering_delay_s;
  o.seal_timeout_s = t.seal_timeout_s;
  o.retention_s = t.retention_s;
  o.remote_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options_.remote_timeout_s * 1000));
  tier_ = std::make_unique<tier::TierEngine>(o, tier::NewMeteredObjectStore(std::move(store)),
                                             segments_.get());
  segments_->SetRemote(tier_.get());
  CAIRN_ASSIGN_OR_RETURN(auto imports, kv::ScanRange(*kv_, meta::ImportPrefix(),
                                                     meta::PrefixEnd(meta::ImportPrefix())));
  for (const auto& [key, value] : imports) {
    CAIRN_ASSIGN_OR_RETURN(meta::ImportRecord rec, meta::DecodeImport(meta::KeyU64(key), value));
    tier_->AddImport(rec.id, rec.url);
  }
  return tier_->Start();
}

Result<struct stat> FileSystem::GetAttr(uint64_t ino) {
  if (IsSnapIno(ino)) return SnapGetAttr(ino);
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
  CAIRN_RETURN_IF_ERROR(Revalidate(*state));
  std::shared_lock lock(state->lock);
  if (state->deleted) return Err(Code::kNotFound);
  struct stat st = ToStat(state->inode);
  lock.unlock();
  cache_->TryEvict(ino, &state);
  return st;
}

Result<struct stat> FileSystem::SetAttr(uint64_t ino, const SetAttrRequest& req) {
  if (IsSnapIno(ino)) return Err(Code::kReadOnly, "snapshots are read-only");
  return RunOp([&]() -> Result<struct stat> {
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    std::unique_lock lock(state->lock);
    if (state->deleted) return Err(Code::kNotFound);
    meta::Inode copy = state->inode;
    meta::Timespec now = meta::Now();
    kv::WriteBatch batch;
    std::vector<std::pair<uint64_t, int64_t>> live;
    if (req.size) {
      if (copy.IsDir()) return Err(Code::kIsDir);
      if (!copy.IsReg()) return Err(Code::kInvalid);
      CAIRN_RETURN_IF_ERROR(TruncateLocked(copy, *req.size, &batch, &live));
      copy.mtime = now;
    }
    if (req.mode) copy.mode = (copy.mode & S_IFMT) | (*req.mode & 07777);
    if (req.uid) copy.uid = *req.uid;
    if (req.gid) copy.gid = *req.gid;
    if (req.atime_now)
      copy.atime = now;
    else if (req.atime)
      copy.atime = *req.atime;
    if (req.mtime_now)
      copy.mtime = now;
    else if (req.mtime)
      copy.mtime = *req.mtime;
    copy.ctime = now;
    CAIRN_RETURN_IF_ERROR(CommitData(*state, copy, &batch, live));
    return ToStat(copy);
  });
}

Result<struct statvfs> FileSystem::StatFs() {
  struct statvfs under {};
  if (::statvfs(data_dir_.c_str(), &under) != 0) return Err(ErrnoStatus("statfs " + data_dir_));
  struct statvfs st {};
  st.f_bsize = under.f_bsize;
  st.f_frsize = under.f_frsize;
  st.f_blocks = under.f_blocks;
  st.f_bfree = under.f_bfree;
  st.f_bavail = under.f_bavail;
  uint64_t used = counters_.files + counters_.directories + counters_.symlinks;
  st.f_files = std::max<uint64_t>(under.f_files, used) + (1ull << 32);
  st.f_ffree = st.f_files - used;
  st.f_favail = st.f_ffree;
  st.f_namemax = meta::kMaxNameLength;
  return st;
}

Stats FileSystem::GetStats() {
  // In a cluster the other nodes change the totals too: read them as stored.
  if (cluster_) {
    Status st = ReadTotals(&counters_);
    if (!st.ok()) log::Warn("reading the totals: {}", st.ToString());
  }
  Stats s;
  s.files = static_cast<uint64_t>(counters_.files.load());
  s.directories = static_cast<uint64_t>(counters_.directories.load());
  s.symlinks = static_cast<uint64_t>(counters_.symlinks.load());
  s.bytes = static_cast<uint64_t>(counters_.bytes.load());
  s.inline_files = static_cast<uint64_t>(counters_.inline_files.load());
  s.inline_bytes = static_cast<uint64_t>(counters_.inline_bytes.load());
  for (const auto& seg : segments_->List()) {
    ++s.segments;
    s.space_used += seg.size;
    s.space_live += static_cast<uint64_t>(std::max<int64_t>(0, seg.live));
  }
  s.compacted_segments = compacted_.load();
  s.cached_inodes = cache_->size();
  return s;
}

Result<ClusterStats> FileSystem::GetClusterStats() {
  if (!cluster_) return Err(Code::kInvalid, "not a cluster file system");
  ClusterStats c;
  c.node = super_.cluster.node;
  c.pool = super_.cluster.pool;
  CAIRN_ASSIGN_OR_RETURN(c.nodes, ReadMembers(*kv_, static_cast<int64_t>(::time(nullptr))));
  c.members = c.nodes.size();
  if (rados_) {
    CAIRN_ASSIGN_OR_RETURN(auto usage, rados_->Usage());
    c.pool_bytes = usage.bytes;
    c.pool_objects = usage.objects;
  }
  c.conflict_retries = metrics::GetCounter("cairn_cluster_conflict_retries_total").Value();
  return c;
}

void FileSystem::HeartbeatLoop() {
  struct Sample {
    uint64_t reads, read_bytes, writes, written_bytes;
    std::chrono::steady_clock::time_point at;
  };
  const auto sample = [this] {
    return Sample{io_.reads.Value(), io_.read_bytes.Value(), io_.writes.Value(),
                  io_.written_bytes.Value(), std::chrono::steady_clock::now()};
  };
  Sample prev = sample();
  const auto interval = std::chrono::duration<double>(options_.heartbeat_s);
  std::unique_lock lock(background_mu_);
  while (!stopping_) {
    lock.unlock();
    const Sample now = sample();
    const double s = std::max(1e-3, std::chrono::duration<double>(now.at - prev.at).count());
    Heartbeat beat;
    beat.interval_s = options_.heartbeat_s;
    beat.read_ops_per_s = static_cast<double>(now.reads - prev.reads) / s;
    beat.read_bytes_per_s = static_cast<double>(now.read_bytes - prev.read_bytes) / s;
    beat.write_ops_per_s = static_cast<double>(now.writes - prev.writes) / s;
    beat.write_bytes_per_s = static_cast<double>(now.written_bytes - prev.written_bytes) / s;
    prev = now;
    Status st = WriteHeartbeat(kv_.get(), super_.cluster.node, beat);
    if (!st.ok()) log::Warn("heartbeat: {}", st.ToString());
    lock.lock();
    background_cv_.wait_for(lock, interval, [this] { return stopping_; });
  }
}

void FileSystem::CompactorLoop() {
  std::unique_lock lock(background_mu_);
  auto interval = std::chrono::duration<double>(options_.compaction_interval_s);
  while (!stopping_) {
    background_cv_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    auto n = CompactOnce(options_.compaction_threshold);
    if (!n) log::Error("compaction: {}", n.error().ToString());
    lock.lock();
  }
}

Status FileSystem::Shutdown() {
  std::lock_guard guard(shutdown_mu_);
  if (shut_down_ || !kv_ || !segments_ || !cache_) return Status::Ok();  // never fully opened
  {
    std::lock_guard lock(background_mu_);
    stopping_ = true;
  }
  background_cv_.notify_all();
  if (compactor_.joinable()) compactor_.join();
  if (heartbeat_.joinable()) {
    heartbeat_.join();
    Heartbeat last;
    last.mounted = false;
    Status hb = WriteHeartbeat(kv_.get(), super_.cluster.node, last);
    if (!hb.ok()) log::Warn("last heartbeat: {}", hb.ToString());
  }
  if (tier_) tier_->Stop();
  SetKernelCache(nullptr);  // the listener and the invalidation thread stop
  // The kernel has released every handle: files unlinked while open go now.
  auto reclaimed = ReclaimOrphans();
  if (!reclaimed) log::Error("reclaim orphans: {}", reclaimed.error().ToString());
  Status st = segments_->Close();
  Status kv_st = kv_->Flush();
  if (st.ok()) st = kv_st;
  shut_down_ = true;
  return st;
}

}  // namespace cairn::fs
