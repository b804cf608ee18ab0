// FileSystem: taking, listing and deleting snapshots through its catalog (fs::Snapshots,
// fs/snapshots.h, which says what a snapshot is and why removing a segment is safe), and removing
// the segments they no longer keep.
#include "common/logging.h"
#include "fs/file_system.h"
#include "snap/manifest.h"

namespace cairn::fs {

Status FileSystem::LoadSnapshots() {
  Snapshots::Options o;
  o.dir = data_dir_ + "/snapshots";
  o.shared = cluster_;
  o.lease_ns = lease_ns_;
  Snapshots::Host host;
  host.sync_data = [this] { return segments_->SyncActive(); };
  host.name_gone = [this](std::string name) { InvalidateLater(kSnapDirIno, std::move(name)); };
  snapshots_ = std::make_unique<Snapshots>(kv_.get(), std::move(o), std::move(host));
  CAIRN_RETURN_IF_ERROR(snapshots_->Load());
  if (meta_->GetDentry(meta::kRootIno, kSnapDirName)) {
    log::Warn("the root holds an entry named {}; the snapshot directory hides it", kSnapDirName);
  }
  return Status::Ok();
}

Result<SnapshotInfo> FileSystem::CreateSnapshot(std::string_view name) {
  return snapshots_->Create(name);
}

std::vector<SnapshotInfo> FileSystem::ListSnapshots() { return snapshots_->List(); }

Status FileSystem::DeleteSnapshot(std::string_view name) {
  std::lock_guard remote(remote_mu_);  // not while a push of it runs
  return snapshots_->Delete(name);
}

Status FileSystem::RemoveSegment(uint64_t segment_id) {
  std::string origin;
  CAIRN_ASSIGN_OR_RETURN(const bool removed,
                         snapshots_->RemoveUnlessHeld(segment_id, [&]() -> Status {
                           origin = segments_->Origin(segment_id);
                           return segments_->Remove(segment_id);
                         }));
  if (removed && !origin.empty()) {
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
