// FileSystem: taking, listing and deleting snapshots, and the pins that keep their segments.
//
// A snapshot is a metadata checkpoint (DATA_DIR/snapshots/<index>/) plus a 'N' record that lists
// the segments that existed when it was taken. Those segments are pinned: compaction skips them
// and a segment that nothing live maps any more stays until no snapshot pins it. Creation holds
// snap_mu_, which segment removal also takes, so a segment is either removed before the
// checkpoint (and then nothing in it refers to the segment) or pinned by it.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "common/file.h"
#include "common/logging.h"
#include "fs/file_system.h"
#include "snap/manifest.h"

namespace cairn::fs {
namespace {

std::string SnapshotsDir(const std::string& data_dir) { return data_dir + "/snapshots"; }

SnapshotInfo InfoOf(SnapshotView& view) {
  const meta::SnapshotRecord& r = view.record();
  return {r.name, r.index, r.created, r.pins.size(), view.PushedTo()};
}

}  // namespace

Status FileSystem::LoadSnapshots() {
  const std::string root = SnapshotsDir(data_dir_);
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("create " + root);
  CAIRN_ASSIGN_OR_RETURN(auto records, kv::ScanRange(*kv_, meta::SnapshotPrefix(),
                                                     meta::PrefixEnd(meta::SnapshotPrefix())));
  std::set<std::string> keep;
  std::lock_guard lock(snap_mu_);
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
  if (cluster_) {
    return Err(Code::kNotSupported,
               "snapshots of a cluster file system are not supported yet (docs/ARCHITECTURE.md, "
               "\"Cluster\")");
  }
  CAIRN_RETURN_IF_ERROR(snap::CheckSnapshotName(name));
  std::lock_guard lock(snap_mu_);
  {
    std::shared_lock views(views_mu_);
    for (const auto& [i, view] : views_) {
      if (view->record().name == name) {
        return Err(Code::kExists, fmt::format("a snapshot named '{}' exists", name));
      }
    }
  }
  uint64_t index = 1;
  const std::string counter = meta::CounterKey("next_snapshot");
  if (auto v = kv_->Get(counter)) {
    if (v->size() != 8) return Err(Code::kCorruption, "bad counter next_snapshot");
    index = DecodeFixed64(v->data());
  } else if (v.error().code() != Code::kNotFound) {
    return Err(v.error());
  }
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
    CAIRN_ASSIGN_OR_RETURN(view, ViewByName(name));
    kv::WriteBatch batch;
    batch.Delete(meta::SnapshotKey(name));
    CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
    view->MarkDeleted();  // the checkpoint goes when the last reader lets go of the view
    std::unique_lock views(views_mu_);
    views_.erase(view->record().index);
    RecomputePinsLocked();
  }
  if (kernel_) kernel_->InvalidateEntry(kSnapDirIno, name);
  log::Info("snapshot '{}' deleted", name);
  return Status::Ok();
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
