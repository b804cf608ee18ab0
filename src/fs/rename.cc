// rename(2) and renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE: one atomic batch.
#include <dirent.h>
#include <linux/fs.h>

#include <optional>

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
  const bool exchange = flags & RENAME_EXCHANGE;

  // A look at both names before locking anything decides whether this rename moves a directory
  // to another parent. Such renames take rename_mu_ (they alone change parent pointers) and check
  // that no directory moves under itself; the Txn then confirms, with both directories locked,
  // that the names still say what the look saw, or the rename starts over.
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(meta::Dentry seen_src, DentryFor(parent, nullptr, name));
    auto seen_dst = DentryFor(new_parent, nullptr, new_name);
    if (!seen_dst && seen_dst.error().code() != Code::kNotFound) return seen_dst.error();
    const bool moves_dir =
        parent != new_parent &&
        (seen_src.type == DT_DIR || (exchange && seen_dst && seen_dst->type == DT_DIR));
    std::unique_lock<std::mutex> tree_lock;
    if (moves_dir) {
      tree_lock = std::unique_lock(rename_mu_);
      if (seen_src.type == DT_DIR) {
        CAIRN_ASSIGN_OR_RETURN(bool loop, IsAncestor(seen_src.ino, new_parent));
        if (loop) return Status(Code::kInvalid, "cannot move a directory into itself");
      }
      if (exchange && seen_dst && seen_dst->type == DT_DIR) {
        CAIRN_ASSIGN_OR_RETURN(bool loop, IsAncestor(seen_dst->ino, parent));
        if (loop) return Status(Code::kInvalid, "cannot move a directory into itself");
      }
    }
    const std::optional<meta::Dentry> seen_dst_entry =
        seen_dst ? std::optional(*seen_dst) : std::nullopt;
    bool changed = false;
    Status st = WithTxn([&](Txn& txn) -> Status {
      return RenameLocked(txn, parent, name, new_parent, new_name, flags, seen_src, seen_dst_entry,
                          &changed);
    });
    if (!changed) return st;
  }
}

Status FileSystem::RenameLocked(Txn& txn, uint64_t parent, std::string_view name,
                                uint64_t new_parent, std::string_view new_name, unsigned flags,
                                const meta::Dentry& seen_src,
                                const std::optional<meta::Dentry>& seen_dst, bool* changed) {
  CAIRN_ASSIGN_OR_RETURN(meta::Inode * from_dir, txn.Get(parent));
  CAIRN_ASSIGN_OR_RETURN(meta::Inode * to_dir, txn.Get(new_parent));
  if (!from_dir->IsDir() || !to_dir->IsDir()) return Status(Code::kNotDir, "");
  if (to_dir->nlink == 0) return Status(Code::kNotFound, "directory was removed");
  // Both directories are locked: their entries hold still now.
  CAIRN_ASSIGN_OR_RETURN(meta::Dentry src, txn.GetDentry(parent, name));
  auto dst_lookup = txn.GetDentry(new_parent, new_name);
  if (!dst_lookup && dst_lookup.error().code() != Code::kNotFound) return dst_lookup.error();
  const bool dst_exists = dst_lookup.has_value();
  const meta::Dentry dst = dst_exists ? *dst_lookup : meta::Dentry{};
  if (src.ino != seen_src.ino || dst_exists != seen_dst.has_value() ||
      (dst_exists && dst.ino != seen_dst->ino)) {
    *changed = true;  // someone renamed meanwhile: decide again
    return Status::Ok();
  }

  if ((flags & RENAME_EXCHANGE) && !dst_exists) return Status(Code::kNotFound, "");
  if ((flags & RENAME_NOREPLACE) && dst_exists) return Status(Code::kExists, "");
  // Renaming a name onto another link of the same inode does nothing, per POSIX.
  if (dst_exists && dst.ino == src.ino) return Status::Ok();
  const bool src_is_dir = src.type == DT_DIR;
  const bool dst_is_dir = dst_exists && dst.type == DT_DIR;

  CAIRN_ASSIGN_OR_RETURN(meta::Inode * moved, txn.Get(src.ino));
  meta::Timespec now = meta::Now();
  auto& batch = txn.batch();

  if (flags & RENAME_EXCHANGE) {
    CAIRN_ASSIGN_OR_RETURN(meta::Inode * other, txn.Get(dst.ino));
    txn.PutDentry(parent, name, dst);
    txn.PutDentry(new_parent, new_name, src);
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
      if (victim->nlink == 0)
        batch.Put(meta::OrphanKey(dst.ino), meta::OrphanValue(super_.cluster.node));
    }
    txn.DeleteDentry(parent, name);
    txn.PutDentry(new_parent, new_name, src);
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
