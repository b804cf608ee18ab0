// rename(2) and renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE: one atomic batch.
#include <dirent.h>
#include <linux/fs.h>

#include "fs/file_system.h"
#include "fs/txn.h"

namespace cairn::fs {

Status FileSystem::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                          std::string_view new_name, unsigned flags) {
  if (IsSnapIno(parent) || IsSnapIno(new_parent) ||
      (parent == meta::kRootIno && name == kSnapDirName) ||
      (new_parent == meta::kRootIno && new_name == kSnapDirName)) {
    return Status(Code::kReadOnly, "snapshots are read-only");
  }
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return Status(Code::kInvalid, "unsupported rename flags");
  }
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return Status(Code::kInvalid, "RENAME_NOREPLACE and RENAME_EXCHANGE together");
  }
  if (name.size() > meta::kMaxNameLength) return Status(Code::kNameTooLong, "");
  CAIRN_RETURN_IF_ERROR(meta::CheckName(new_name));
  std::lock_guard ns(ns_mu_);

  CAIRN_ASSIGN_OR_RETURN(meta::Dentry src, meta_->GetDentry(parent, name));
  auto dst_lookup = meta_->GetDentry(new_parent, new_name);
  if (!dst_lookup && dst_lookup.error().code() != Code::kNotFound) return dst_lookup.error();
  const bool dst_exists = dst_lookup.has_value();
  const meta::Dentry dst = dst_exists ? *dst_lookup : meta::Dentry{};

  if ((flags & RENAME_EXCHANGE) && !dst_exists) return Status(Code::kNotFound, "");
  if ((flags & RENAME_NOREPLACE) && dst_exists) return Status(Code::kExists, "");
  // Renaming a name onto another link of the same inode does nothing, per POSIX.
  if (dst_exists && dst.ino == src.ino) return Status::Ok();

  // A directory may not move under itself. Checked before the Txn locks anything (the walk takes
  // inode locks shared); ns_mu_ keeps parents fixed.
  const bool src_is_dir = src.type == DT_DIR;
  const bool dst_is_dir = dst_exists && dst.type == DT_DIR;
  if (src_is_dir && parent != new_parent) {
    CAIRN_ASSIGN_OR_RETURN(bool loop, IsAncestor(src.ino, new_parent));
    if (loop) return Status(Code::kInvalid, "cannot move a directory into itself");
  }
  if ((flags & RENAME_EXCHANGE) && dst_is_dir && parent != new_parent) {
    CAIRN_ASSIGN_OR_RETURN(bool loop, IsAncestor(dst.ino, parent));
    if (loop) return Status(Code::kInvalid, "cannot move a directory into itself");
  }

  Txn txn(this);
  CAIRN_ASSIGN_OR_RETURN(meta::Inode * from_dir, txn.Get(parent));
  CAIRN_ASSIGN_OR_RETURN(meta::Inode * to_dir, txn.Get(new_parent));
  if (!from_dir->IsDir() || !to_dir->IsDir()) return Status(Code::kNotDir, "");
  if (to_dir->nlink == 0) return Status(Code::kNotFound, "directory was removed");
  CAIRN_ASSIGN_OR_RETURN(meta::Inode * moved, txn.Get(src.ino));
  meta::Timespec now = meta::Now();
  auto& batch = txn.batch();

  if (flags & RENAME_EXCHANGE) {
    CAIRN_ASSIGN_OR_RETURN(meta::Inode * other, txn.Get(dst.ino));
    batch.Put(meta::DentryKey(parent, name), meta::EncodeDentry(dst));
    batch.Put(meta::DentryKey(new_parent, new_name), meta::EncodeDentry(src));
    if (parent != new_parent) {
      if (src_is_dir) {
        moved->parent = new_parent;
        --from_dir->nlink;
        ++to_dir->nlink;
      }
      if (dst_is_dir) {
        other->parent = parent;
        --to_dir->nlink;
        ++from_dir->nlink;
      }
    }
    other->ctime = now;
  } else {
    if (dst_exists) {
      CAIRN_ASSIGN_OR_RETURN(meta::Inode * victim, txn.Get(dst.ino));
      if (src_is_dir) {
        if (!victim->IsDir()) return Status(Code::kNotDir, "");
        CAIRN_ASSIGN_OR_RETURN(bool empty, meta_->DirIsEmpty(dst.ino));
        if (!empty) return Status(Code::kNotEmpty, "");
        victim->nlink = 0;
        --to_dir->nlink;  // the victim's ".."
      } else {
        if (victim->IsDir()) return Status(Code::kIsDir, "");
        --victim->nlink;
      }
      victim->ctime = now;
      if (victim->nlink == 0) batch.Put(meta::OrphanKey(dst.ino), "");
    }
    batch.Delete(meta::DentryKey(parent, name));
    batch.Put(meta::DentryKey(new_parent, new_name), meta::EncodeDentry(src));
    if (src_is_dir && parent != new_parent) {
      moved->parent = new_parent;
      --from_dir->nlink;
      ++to_dir->nlink;
    }
  }
  moved->ctime = now;
  from_dir->mtime = from_dir->ctime = now;
  to_dir->mtime = to_dir->ctime = now;
  return txn.Commit();
}

}  // namespace cairn::fs
