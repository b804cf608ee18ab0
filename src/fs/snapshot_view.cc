// FileSystem: the read-only views of snapshots under .snapshots (see fs/snapshot_view.h).
#include "fs/snapshot_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/logging.h"
#include "fs/file_system.h"

namespace cairn::fs {

SnapshotView::~SnapshotView() {
  meta_.reset();
  kv_.reset();
  if (deleted_) {
    Status st = RemoveTree(dir_);
    if (!st.ok()) log::Error("removing snapshot checkpoint {}: {}", dir_, st.ToString());
  }
}

Result<meta::MetaStore*> SnapshotView::Meta() {
  std::lock_guard lock(mu_);
  if (!meta_) {
    auto kv = open_();
    if (!kv) {
      return Err(kv.error().code(), "snapshot '" + record_.name + "': " + kv.error().message());
    }
    kv_ = std::move(*kv);
    meta_ = std::make_unique<meta::MetaStore>(kv_.get());
  }
  return meta_.get();
}

struct stat FileSystem::ViewStat(uint32_t index, const meta::Inode& inode) const {
  struct stat st = ToStat(inode);
  st.st_ino = SnapIno(index, inode.ino);
  return st;
}

struct stat FileSystem::SnapDirStat() {
  struct stat st {};
  st.st_ino = kSnapDirIno;
  st.st_mode = S_IFDIR | 0555;
  st.st_blksize = 4096;
  const auto views = snapshots_->Views();
  st.st_nlink = 2 + views.size();
  meta::Timespec newest{super_.created, 0};
  for (const auto& view : views) {
    const auto& c = view->record().created;
    if (c.sec > newest.sec || (c.sec == newest.sec && c.nsec > newest.nsec)) newest = c;
  }
  st.st_atim = st.st_mtim = st.st_ctim = {newest.sec, newest.nsec};
  return st;
}

Result<struct stat> FileSystem::SnapGetAttr(uint64_t ino) {
  if (ino == kSnapDirIno) {
    CAIRN_RETURN_IF_ERROR(snapshots_->RefreshForLookup());  // a cluster: what the other nodes took
    return SnapDirStat();
  }
  const uint32_t index = SnapIndexOf(ino);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(index));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta->GetInode(SnapLocalIno(ino)));
  return ViewStat(index, inode);
}

Result<struct stat> FileSystem::SnapLookup(uint64_t parent, std::string_view name) {
  if (name.size() > meta::kMaxNameLength) return Err(Code::kNameTooLong);
  if (parent == kSnapDirIno) {
    CAIRN_RETURN_IF_ERROR(snapshots_->RefreshForLookup());
    auto view = snapshots_->ViewByName(name);
    if (!view && view.error().code() == Code::kNotFound && cluster_) {
      // Perhaps taken by another node since the last look: look now.
      CAIRN_RETURN_IF_ERROR(snapshots_->Refresh());
      view = snapshots_->ViewByName(name);
    }
    if (!view) return Err(view.error());
    return SnapGetAttr(SnapIno((*view)->record().index, meta::kRootIno));
  }
  const uint32_t index = SnapIndexOf(parent);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(index));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  CAIRN_ASSIGN_OR_RETURN(meta::Dentry d, meta->GetDentry(SnapLocalIno(parent), name));
  CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta->GetInode(d.ino));
  return ViewStat(index, inode);
}

Result<std::string> FileSystem::SnapReadlink(uint64_t ino) {
  if (ino == kSnapDirIno) return Err(Code::kInvalid);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(SnapIndexOf(ino)));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta->GetInode(SnapLocalIno(ino)));
  if (!inode.IsSymlink()) return Err(Code::kInvalid);
  return inode.inline_data;
}

Result<size_t> FileSystem::SnapRead(uint64_t ino, uint64_t offset, size_t size, char* out) {
  if (ino == kSnapDirIno) return Err(Code::kIsDir);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(SnapIndexOf(ino)));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta->GetInode(SnapLocalIno(ino)));
  if (inode.IsDir()) return Err(Code::kIsDir);
  return ReadLocked(inode, offset, size, out, meta, ino);
}

uint64_t FileSystem::AddDirHandle(std::shared_ptr<std::vector<DirEntry>> entries) {
  std::lock_guard lock(dirs_mu_);
  uint64_t handle = next_dir_handle_++;
  dirs_[handle] = OpenDirState{0, std::move(entries)};
  return handle;
}

Result<uint64_t> FileSystem::SnapOpenDir(uint64_t ino) {
  auto entries = std::make_shared<std::vector<DirEntry>>();
  if (ino == kSnapDirIno) {
    CAIRN_RETURN_IF_ERROR(snapshots_->RefreshForLookup());
    entries->push_back({".", kSnapDirIno, DT_DIR});
    entries->push_back({"..", meta::kRootIno, DT_DIR});
    for (const auto& view : snapshots_->Views()) {
      entries->push_back(
          {view->record().name, SnapIno(view->record().index, meta::kRootIno), DT_DIR});
    }
    return AddDirHandle(std::move(entries));
  }
  const uint32_t index = SnapIndexOf(ino);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(index));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  const uint64_t local = SnapLocalIno(ino);
  CAIRN_ASSIGN_OR_RETURN(meta::Inode dir, meta->GetInode(local));
  if (!dir.IsDir()) return Err(Code::kNotDir);
  entries->push_back({".", ino, DT_DIR});
  entries->push_back(
      {"..", local == meta::kRootIno ? kSnapDirIno : SnapIno(index, dir.parent), DT_DIR});
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(auto page, meta->ListDir(local, after, 4096));
    for (auto& [name, d] : page) entries->push_back({name, SnapIno(index, d.ino), d.type});
    if (page.size() < 4096) break;
    after = page.back().first;
  }
  return AddDirHandle(std::move(entries));
}

Result<std::string> FileSystem::SnapGetXattr(uint64_t ino, std::string_view name) {
  if (ino == kSnapDirIno) return Err(Code::kNoData);
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(SnapIndexOf(ino)));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  return meta->GetXattr(SnapLocalIno(ino), name);
}

Result<std::vector<std::string>> FileSystem::SnapListXattr(uint64_t ino) {
  if (ino == kSnapDirIno) return std::vector<std::string>{};
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->View(SnapIndexOf(ino)));
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  return meta->ListXattrs(SnapLocalIno(ino));
}

}  // namespace cairn::fs
