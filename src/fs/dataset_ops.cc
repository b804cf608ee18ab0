// FileSystem: the index of a tree that the native client reads from (include/cairn/client.h).
#include <dirent.h>
#include <fmt/format.h>

#include "fs/file_system.h"

namespace cairn::fs {

Result<std::vector<FileSystem::IndexedFile>> FileSystem::IndexTree(std::string_view dir) {
  while (!dir.empty() && dir.front() == '/') dir.remove_prefix(1);
  // A snapshot's tree: .snapshots/NAME[/DIR], read from the snapshot's metadata (its segments
  // are pinned, so the extents stay readable while the snapshot exists).
  meta::MetaStore* meta = meta_.get();
  std::shared_ptr<SnapshotView> view;
  if (dir == kSnapDirName || dir.starts_with(std::string(kSnapDirName) + "/")) {
    std::string_view rest = dir.substr(std::string_view(kSnapDirName).size());
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    const size_t slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    if (name.empty()) return Err(Code::kInvalid, "a dataset in .snapshots names a snapshot");
    CAIRN_RETURN_IF_ERROR(snapshots_->Refresh());
    CAIRN_ASSIGN_OR_RETURN(view, snapshots_->ViewByName(name));
    CAIRN_ASSIGN_OR_RETURN(meta, view->Meta());
    dir = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  // The directory: walk its path from the root.
  uint64_t top = meta::kRootIno;
  size_t pos = 0;
  while (pos < dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string_view::npos) slash = dir.size();
    const std::string_view name = dir.substr(pos, slash - pos);
    pos = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return Err(Code::kInvalid, "a dataset path may not contain '..'");
    auto d = meta->GetDentry(top, name);
    if (!d) {
      if (d.error().code() != Code::kNotFound) return Err(d.error());
      return Err(Code::kNotFound, fmt::format("{}: no such directory", dir));
    }
    if (d->type != DT_DIR) return Err(Code::kNotDir, fmt::format("{} is not a directory", dir));
    top = d->ino;
  }
  std::vector<IndexedFile> out;
  // RocksDB: one iterator over the extent records for the whole walk (a new iterator per file
  // was ~12% of the walk). PostgreSQL: one per file, bounded to it, since a seek there fetches a
  // page of rows up to the iterator's bound.
  auto extents = cluster_ ? nullptr : meta->NewExtentIterator();
  struct Pending {
    uint64_t ino;
    std::string prefix;
  };
  std::vector<Pending> stack = {{top, ""}};
  while (!stack.empty()) {
    Pending at = std::move(stack.back());
    stack.pop_back();
    std::vector<Pending> subdirs;
    std::string after;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(auto page, meta->ListDir(at.ino, after, 4096));
      for (auto& [name, d] : page) {
        std::string path = at.prefix + name;
        if (d.type == DT_DIR) {
          subdirs.push_back({d.ino, path + "/"});
          continue;
        }
        if (d.type != DT_REG) continue;
        auto inode = meta->GetInode(d.ino);
        if (!inode) {
          if (inode.error().code() == Code::kNotFound) continue;  // removed meanwhile
          return Err(inode.error());
        }
        IndexedFile f;
        f.path = std::move(path);
        f.ino = inode->ino;
        f.size = inode->size;
        if (inode->is_remote) {
          f.mount_only = true;
          // Without a readable ref the client reads it through the mount.
          if (auto ref = meta->GetObjectRef(inode->ino)) f.etag = std::move(ref->etag);
        } else if (inode->is_inline) {
          f.inline_data = inode->inline_data;
        } else {
          CAIRN_ASSIGN_OR_RETURN(f.extents, extents ? meta->AllExtents(*extents, inode->ino)
                                                    : meta->GetExtents(inode->ino, 0, UINT64_MAX));
        }
        out.push_back(std::move(f));
      }
      if (page.size() < 4096) break;
      after = page.back().first;
    }
    // Depth first, in name order: push the subdirectories last to first.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return out;
}

}  // namespace cairn::fs
