// FileSystem: taking, listing and deleting snapshots, and the pins that keep their segments.
//
// A snapshot is a metadata checkpoint (DATA_DIR/snapshots/<index>/) plus a 'N' record that lists
// the segments that existed when it was taken. Those segments are pinned: compaction skips them
// and a segment that nothing live maps any more stays until no snapshot pins it. Creation holds
// snap_mu_, which segment removal also takes, so a segment is either removed before the
// checkpoint (and then nothing in it refers to the segment) or pinned by it.
//
// On a cluster a snapshot is a copy of the shared table (cairn_snap_<index>, made by one
// CREATE TABLE AS: one instant for every node), and its pins are the segment records in that
// copy. Creation holds a PostgreSQL advisory lock exclusive from before the copy until the
// snapshot record is committed; every node's compaction holds it shared from before it reads the
// pins until it has removed its segments. So a segment is either removed before the copy (and
// then its record is not in it) or seen pinned by the node that would remove it.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "common/file.h"
#include "common/logging.h"
#include "fs/file_system.h"
#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "snap/manifest.h"

namespace cairn::fs {
namespace {

std::string SnapshotsDir(const std::string& data_dir) { return data_dir + "/snapshots"; }

constexpr std::string_view kSnapTablePrefix = "cairn_snap_";
std::string SnapTable(uint32_t index) { return fmt::format("{}{}", kSnapTablePrefix, index); }

Result<uint64_t> NextSnapshotIndex(kv::KvStore& kv) {
  auto v = kv.Get(meta::CounterKey("next_snapshot"));
  if (!v) {
    if (v.error().code() == Code::kNotFound) return 1;
    return Err(v.error());
  }
  if (v->size() != 8) return Err(Code::kCorruption, "bad counter next_snapshot");
  return DecodeFixed64(v->data());
}

SnapshotInfo InfoOf(SnapshotView& view) {
  const meta::SnapshotRecord& r = view.record();
  return {r.name, r.index, r.created, r.pins.size(), view.PushedTo()};
}

}  // namespace

Status FileSystem::LoadSnapshots() {
  const std::string root = SnapshotsDir(data_dir_);
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("create " + root);
  std::set<std::string> keep;
  if (cluster_) {
    CAIRN_RETURN_IF_ERROR(RefreshSnapshots());
    std::shared_lock views(views_mu_);
    for (const auto& [index, view] : views_) keep.insert(std::to_string(index));
  }
  std::vector<std::pair<std::string, std::string>> records;
  if (!cluster_) {
    CAIRN_ASSIGN_OR_RETURN(records, kv::ScanRange(*kv_, meta::SnapshotPrefix(),
                                                  meta::PrefixEnd(meta::SnapshotPrefix())));
  }
  std::unique_lock lock(snap_mu_);
  std::unique_lock views(views_mu_);
  for (const auto& [key, value] : records) {
    CAIRN_ASSIGN_OR_RETURN(meta::SnapshotRecord rec,
                           meta::DecodeSnapshot(std::string_view(key).substr(1), value));
    const std::string dir = fmt::format("{}/{}", root, rec.index);
    struct stat sb;
    if (::stat((dir + "/CURRENT").c_str(), &sb) != 0) {
      // Its pins stay (the segments may be what is left of it); reads of it report the loss.
      log::Error("snapshot '{}': checkpoint {} is missing", rec.name, dir);
    }
    keep.insert(std::to_string(rec.index));
    views_[rec.index] = std::make_shared<SnapshotView>(rec, dir);
  }
  RecomputePinsLocked();
  views.unlock();
  lock.unlock();
  if (meta_->GetDentry(meta::kRootIno, kSnapDirName)) {
    log::Warn("the root holds an entry named {}; the snapshot directory hides it", kSnapDirName);
  }
  // Checkpoints without a record: a creation cut short by a crash, or a deletion that had
  // removed the record but not yet the files.
  DIR* d = ::opendir(root.c_str());
  if (!d) return ErrnoStatus("open " + root);
  std::vector<std::string> stray;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && !keep.count(n)) stray.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : stray) {
    log::Info("removing leftover snapshot checkpoint {}/{}", root, n);
    CAIRN_RETURN_IF_ERROR(RemoveTree(root + "/" + n));
  }
  return Status::Ok();
}

void FileSystem::RecomputePinsLocked() {
  std::set<uint64_t> pins;
  for (const auto& [index, view] : views_) {
    pins.insert(view->record().pins.begin(), view->record().pins.end());
  }
  pinned_ = std::move(pins);
}

bool FileSystem::Pinned(uint64_t segment_id) {
  std::lock_guard lock(snap_mu_);
  return pinned_.count(segment_id) > 0;
}

Result<SnapshotInfo> FileSystem::CreateSnapshot(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(snap::CheckSnapshotName(name));
  if (cluster_) return CreateClusterSnapshot(name);
  std::lock_guard lock(snap_mu_);
  {
    std::shared_lock views(views_mu_);
    for (const auto& [i, view] : views_) {
      if (view->record().name == name) {
        return Err(Code::kExists, fmt::format("a snapshot named '{}' exists", name));
      }
    }
  }
  CAIRN_ASSIGN_OR_RETURN(const uint64_t index, NextSnapshotIndex(*kv_));
  const std::string counter = meta::CounterKey("next_snapshot");
  if (index > meta::kMaxSnapshotIndex) {
    return Err(Code::kNoSpace,
               fmt::format("this file system has taken its {} snapshots", meta::kMaxSnapshotIndex));
  }
  // Everything the checkpoint may point at is on disk before it is.
  CAIRN_RETURN_IF_ERROR(segments_->SyncActive());
  const std::string root = SnapshotsDir(data_dir_);
  const std::string dir = fmt::format("{}/{}", root, index);
  const std::string tmp = fmt::format("{}/.tmp-{}", root, index);
  CAIRN_RETURN_IF_ERROR(RemoveTree(tmp));
  CAIRN_RETURN_IF_ERROR(RemoveTree(dir));
  meta::SnapshotRecord rec;
  rec.name = name;
  rec.index = static_cast<uint32_t>(index);
  rec.created = meta::Now();
  CAIRN_RETURN_IF_ERROR(kv_->Checkpoint(tmp));
  // Every segment that exists now: a superset of those the checkpoint references.
  for (const auto& seg : segments_->List()) rec.pins.push_back(seg.id);
  if (::rename(tmp.c_str(), dir.c_str()) != 0) return Err(ErrnoStatus("rename " + dir));
  CAIRN_RETURN_IF_ERROR(SyncDir(root));
  kv::WriteBatch batch;
  batch.Put(meta::SnapshotKey(name), meta::EncodeSnapshot(rec));
  std::string next;
  PutFixed64(&next, index + 1);
  batch.Put(counter, next);
  CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
  auto view = std::make_shared<SnapshotView>(rec, dir);
  {
    std::unique_lock views(views_mu_);
    views_[index] = view;
  }
  pinned_.insert(rec.pins.begin(), rec.pins.end());
  log::Info("snapshot '{}' created ({} segments pinned)", name, rec.pins.size());
  return InfoOf(*view);
}

std::vector<SnapshotInfo> FileSystem::ListSnapshots() {
  if (Status st = RefreshSnapshots(); !st.ok()) {
    log::Warn("reading the cluster's snapshots: {}", st.ToString());
  }
  std::vector<SnapshotInfo> out;
  std::shared_lock lock(views_mu_);
  for (const auto& [index, view] : views_) out.push_back(InfoOf(*view));
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return std::tie(a.created.sec, a.created.nsec, a.name) <
           std::tie(b.created.sec, b.created.nsec, b.name);
  });
  return out;
}

Status FileSystem::DeleteSnapshot(std::string_view name) {
  std::lock_guard remote(remote_mu_);  // not while a push of it runs
  std::shared_ptr<SnapshotView> view;
  {
    std::lock_guard lock(snap_mu_);
    CAIRN_RETURN_IF_ERROR(RefreshSnapshotsLocked());
    CAIRN_ASSIGN_OR_RETURN(view, ViewByName(name));
    kv::WriteBatch batch;
    batch.Delete(meta::SnapshotKey(name));
    CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
    view->MarkDeleted();  // the checkpoint goes when the last reader lets go of the view
    std::unique_lock views(views_mu_);
    views_.erase(view->record().index);
    RecomputePinsLocked();
  }
  if (cluster_) {
    // The record went first: from there on no node shows it. PostgreSQL drops the table once
    // the reads under way on it are done. A crash in between leaves a table without a record,
    // dropped by the next creation.
    CAIRN_RETURN_IF_ERROR(pg_->DropTable(SnapTable(view->record().index)));
  }
  if (kernel_) kernel_->InvalidateEntry(kSnapDirIno, name);
  log::Info("snapshot '{}' deleted", name);
  return Status::Ok();
}

Result<SnapshotInfo> FileSystem::CreateClusterSnapshot(std::string_view name) {
  kv::PgKvStore* pg = pg_;
  // Taken before snap_mu_: compaction holds it shared and then takes snap_mu_.
  CAIRN_ASSIGN_OR_RETURN(auto held, pg->Lock(kSnapshotLock, true));
  std::lock_guard lock(snap_mu_);
  CAIRN_RETURN_IF_ERROR(RefreshSnapshotsLocked());
  std::set<std::string> tables;
  {
    std::shared_lock views(views_mu_);
    for (const auto& [i, view] : views_) {
      if (view->record().name == name) {
        return Err(Code::kExists, fmt::format("a snapshot named '{}' exists", name));
      }
      tables.insert(SnapTable(i));
    }
  }
  CAIRN_ASSIGN_OR_RETURN(const uint64_t index, NextSnapshotIndex(*kv_));
  if (index > meta::kMaxSnapshotIndex) {
    return Err(Code::kNoSpace,
               fmt::format("this file system has taken its {} snapshots", meta::kMaxSnapshotIndex));
  }
  // Tables without a record: a creation or deletion cut short.
  CAIRN_ASSIGN_OR_RETURN(auto existing, pg->ListTables(kSnapTablePrefix));
  for (const auto& t : existing) {
    if (!tables.count(t)) {
      log::Info("dropping leftover snapshot table {}", t);
      CAIRN_RETURN_IF_ERROR(pg->DropTable(t));
    }
  }
  meta::SnapshotRecord rec;
  rec.name = name;
  rec.index = static_cast<uint32_t>(index);
  rec.created = meta::Now();
  // The point in time: every change any node committed before this statement, none after.
  const std::string table = SnapTable(rec.index);
  CAIRN_RETURN_IF_ERROR(pg->CopyTable(table));
  // Pins: the segments that existed then (a superset of those its extents point into).
  {
    kv::PgOptions o;
    o.table = table;
    o.max_connections = 1;
    CAIRN_ASSIGN_OR_RETURN(auto copy, kv::PgKvStore::Open(super_.cluster.meta, o));
    CAIRN_ASSIGN_OR_RETURN(auto segs, kv::ScanRange(*copy, meta::SegmentPrefix(),
                                                    meta::PrefixEnd(meta::SegmentPrefix())));
    for (const auto& [key, value] : segs) rec.pins.push_back(meta::KeyU64(key));
  }
  const std::string counter = meta::CounterKey("next_snapshot");
  kv::WriteBatch batch;
  batch.Put(meta::SnapshotKey(name), meta::EncodeSnapshot(rec));
  std::string next;
  PutFixed64(&next, index + 1);
  batch.Put(counter, next);
  Status st = kv_->Write(batch, true);
  if (!st.ok()) {
    (void)pg->DropTable(table);
    return Err(st);
  }
  auto view = NewClusterView(rec);
  {
    std::unique_lock views(views_mu_);
    views_[rec.index] = view;
  }
  pinned_.insert(rec.pins.begin(), rec.pins.end());
  log::Info("snapshot '{}' created: table {}, {} segments pinned", name, table, rec.pins.size());
  return InfoOf(*view);
}

std::shared_ptr<SnapshotView> FileSystem::NewClusterView(const meta::SnapshotRecord& rec) {
  const std::string dir = fmt::format("{}/{}", SnapshotsDir(data_dir_), rec.index);
  SnapshotOpener open = [conninfo = super_.cluster.meta,
                         table = SnapTable(rec.index)]() -> Result<std::unique_ptr<kv::KvStore>> {
    kv::PgOptions o;
    o.table = table;
    o.max_connections = 4;
    CAIRN_ASSIGN_OR_RETURN(auto kv, kv::PgKvStore::Open(conninfo, o));
    return std::unique_ptr<kv::KvStore>(std::move(kv));
  };
  return std::make_shared<SnapshotView>(rec, dir, std::move(open));
}

Status FileSystem::RefreshSnapshots() {
  if (!cluster_) return Status::Ok();
  std::lock_guard lock(snap_mu_);
  return RefreshSnapshotsLocked();
}

Status FileSystem::RefreshSnapshotsForLookup() {
  if (!cluster_ || MonotonicNs() - snapshots_read_at_.load() < lease_ns_) return Status::Ok();
  return RefreshSnapshots();
}

Status FileSystem::RefreshSnapshotsLocked() {
  if (!cluster_) return Status::Ok();
  snapshots_read_at_ = MonotonicNs();
  CAIRN_ASSIGN_OR_RETURN(auto records, kv::ScanRange(*kv_, meta::SnapshotPrefix(),
                                                     meta::PrefixEnd(meta::SnapshotPrefix())));
  std::map<uint32_t, meta::SnapshotRecord> now;
  for (const auto& [key, value] : records) {
    CAIRN_ASSIGN_OR_RETURN(meta::SnapshotRecord rec,
                           meta::DecodeSnapshot(std::string_view(key).substr(1), value));
    now[rec.index] = std::move(rec);
  }
  std::vector<std::string> gone;
  {
    std::unique_lock views(views_mu_);
    for (auto it = views_.begin(); it != views_.end();) {
      if (now.count(it->first)) {
        ++it;
        continue;
      }
      gone.push_back(it->second->record().name);
      it->second->MarkDeleted();  // its export goes with the last reader
      it = views_.erase(it);
    }
    for (auto& [index, rec] : now) {
      auto it = views_.find(index);
      if (it == views_.end()) {
        views_[index] = NewClusterView(rec);
      } else {
        it->second->SetPushedTo(rec.pushed_to);
      }
    }
    RecomputePinsLocked();
  }
  if (kernel_) {
    for (const auto& n : gone) kernel_->InvalidateEntry(kSnapDirIno, n);
  }
  return Status::Ok();
}

Status FileSystem::ExportSnapshot(SnapshotView& view) {
  struct stat sb;
  if (::stat((view.dir() + "/CURRENT").c_str(), &sb) == 0) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view.Meta());
  const std::string tmp = view.dir() + ".export";
  CAIRN_RETURN_IF_ERROR(RemoveTree(tmp));
  {
    kv::RocksDbOptions o;
    o.create_if_missing = true;
    o.block_cache_bytes = 8 << 20;
    CAIRN_ASSIGN_OR_RETURN(auto out, kv::RocksDbKvStore::Open(tmp, o));
    auto it = meta->kv().NewIterator();
    kv::WriteBatch batch;
    size_t bytes = 0;
    for (it->Seek(""); it->Valid(); it->Next()) {
      batch.Put(std::string(it->key()), std::string(it->value()));
      bytes += it->key().size() + it->value().size();
      if (bytes >= (8 << 20)) {
        CAIRN_RETURN_IF_ERROR(out->Write(batch, false));
        batch = kv::WriteBatch();
        bytes = 0;
      }
    }
    CAIRN_RETURN_IF_ERROR(it->status());
    CAIRN_RETURN_IF_ERROR(out->Write(batch, false));
    CAIRN_RETURN_IF_ERROR(out->Flush());
  }
  if (::rename(tmp.c_str(), view.dir().c_str()) != 0) {
    return ErrnoStatus("rename " + view.dir());
  }
  return SyncDir(SnapshotsDir(data_dir_));
}

Status FileSystem::RemoveSegment(uint64_t segment_id) {
  std::string origin;
  {
    std::lock_guard lock(snap_mu_);
    if (pinned_.count(segment_id)) return Status::Ok();  // a snapshot still shows its bytes
    origin = segments_->Origin(segment_id);
    CAIRN_RETURN_IF_ERROR(segments_->Remove(segment_id));
  }
  if (!origin.empty()) {
    Status st = WriteRefs();
    if (!st.ok()) log::Warn("updating {}: {}", snap::RefsKey(super_.uuid), st.ToString());
  }
  return Status::Ok();
}

Status FileSystem::WriteRefs() {
  std::lock_guard lock(refs_mu_);
  snap::Refs refs;
  refs.fs_uuid = super_.uuid;
  refs.source = super_.restored_from;
  for (const auto& seg : segments_->List()) {
    if (!seg.origin.empty()) refs.keys.push_back(tier_->KeyOf(seg.id));
  }
  return tier_->store().Put(snap::RefsKey(super_.uuid), snap::EncodeRefs(refs));
}

}  // namespace cairn::fs
