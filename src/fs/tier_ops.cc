// The tier commands over a tree of the namespace: where its bytes are (location), warming it onto
// NVMe (fetch) and evicting it (release). The walks read the metadata store directly: every
// committed change is there, and none of them needs the inode locks.
#include <set>
#include <unordered_set>

#include "fs/file_system.h"

namespace cairn::fs {

Status FileSystem::WalkTree(uint64_t ino, const std::function<Status(const meta::Inode&)>& visit) {
  if (IsSnapIno(ino)) return Status(Code::kNotSupported, "not for paths inside .snapshots");
  std::unordered_set<uint64_t> seen;
  std::vector<uint64_t> todo = {ino};
  while (!todo.empty()) {
    const uint64_t cur = todo.back();
    todo.pop_back();
    if (!seen.insert(cur).second) continue;
    auto inode = meta_->GetInode(cur);
    if (!inode) {
      if (inode.error().code() == Code::kNotFound) continue;  // removed meanwhile
      return inode.error();
    }
    CAIRN_RETURN_IF_ERROR(visit(*inode));
    if (!inode->IsDir()) continue;
    std::string after;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(auto page, meta_->ListDir(cur, after, 4096));
      if (page.empty()) break;
      for (const auto& [name, d] : page) todo.push_back(d.ino);
      after = page.back().first;
    }
  }
  return Status::Ok();
}

Result<Location> FileSystem::TierLocation(uint64_t ino) {
  if (IsSnapIno(ino)) return Err(Code::kNotSupported, "not for paths inside .snapshots");
  Location loc;
  std::unordered_map<uint64_t, bool> local;  // segment id -> on NVMe
  for (const auto& seg : segments_->List()) {
    local[seg.id] = seg.state != meta::SegmentState::kEvicted;
  }
  CAIRN_RETURN_IF_ERROR(WalkTree(ino, [&](const meta::Inode& inode) -> Status {
    if (!inode.IsReg()) return Status::Ok();
    ++loc.files;
    if (inode.is_inline) {
      loc.local_bytes += inode.size;
      return Status::Ok();
    }
    if (inode.is_remote) {
      CAIRN_ASSIGN_OR_RETURN(meta::ObjectRef ref, meta_->GetObjectRef(inode.ino));
      (tier_->ObjectCached(inode.ino, ref.etag) ? loc.local_bytes : loc.remote_bytes) += inode.size;
      return Status::Ok();
    }
    CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(inode.ino, 0, UINT64_MAX));
    for (const auto& e : extents) {
      (local[e.segment_id] ? loc.local_bytes : loc.remote_bytes) += e.length;
    }
    return Status::Ok();
  }));
  return loc;
}

namespace {
struct TreeData {
  std::set<uint64_t> segments;
  std::vector<tier::ObjectTarget> objects;
};
}  // namespace

Result<uint64_t> FileSystem::TierFetch(uint64_t ino, const tier::TierEngine::Progress& progress) {
  return TierFetch(std::span<const uint64_t>(&ino, 1), progress);
}

Result<uint64_t> FileSystem::TierFetch(std::span<const uint64_t> inos,
                                       const tier::TierEngine::Progress& progress) {
  TreeData tree;
  std::set<uint64_t> seen_objects;
  for (uint64_t ino : inos) {
    if (IsSnapIno(ino)) return Err(Code::kNotSupported, "not for paths inside .snapshots");
    CAIRN_RETURN_IF_ERROR(WalkTree(ino, [&](const meta::Inode& inode) -> Status {
      if (!inode.IsReg() || inode.is_inline) return Status::Ok();
      if (inode.is_remote) {
        if (!seen_objects.insert(inode.ino).second) return Status::Ok();
        CAIRN_ASSIGN_OR_RETURN(meta::ObjectRef ref, meta_->GetObjectRef(inode.ino));
        tree.objects.push_back({inode.ino, std::move(ref), inode.size});
        return Status::Ok();
      }
      CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(inode.ino, 0, UINT64_MAX));
      for (const auto& e : extents) tree.segments.insert(e.segment_id);
      return Status::Ok();
    }));
  }
  return tier_->Fetch(tree.segments, tree.objects, progress);
}

Result<std::pair<uint64_t, uint64_t>> FileSystem::TierRelease(uint64_t ino) {
  if (IsSnapIno(ino)) return Err(Code::kNotSupported, "not for paths inside .snapshots");
  TreeData tree;
  if (ino == meta::kRootIno) {
    // The whole file system: every segment, even those only garbage still sits in.
    for (const auto& seg : segments_->List()) tree.segments.insert(seg.id);
  }
  std::vector<uint64_t> objects;
  CAIRN_RETURN_IF_ERROR(WalkTree(ino, [&](const meta::Inode& inode) -> Status {
    if (!inode.IsReg() || inode.is_inline) return Status::Ok();
    if (inode.is_remote) {
      objects.push_back(inode.ino);
      return Status::Ok();
    }
    if (ino == meta::kRootIno) return Status::Ok();
    CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(inode.ino, 0, UINT64_MAX));
    for (const auto& e : extents) tree.segments.insert(e.segment_id);
    return Status::Ok();
  }));
  return tier_->Release(tree.segments, objects);
}

}  // namespace cairn::fs
