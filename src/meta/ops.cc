#include "meta/ops.h"

#include <dirent.h>
#include <linux/fs.h>
#include <sys/stat.h>

namespace cairn::meta {

namespace {
// Fails unless parent is a directory that still exists.
Result<Inode*> LiveDir(Txn& txn, uint64_t parent) {
  CAIRN_ASSIGN_OR_RETURN(Inode * dir, txn.Get(parent));
  if (!dir->IsDir()) return Err(Code::kNotDir);
  if (dir->nlink == 0) return Err(Code::kNotFound, "directory was removed");
  return dir;
}
// kExists when parent/name exists (kNotFound from the lookup is the good outcome).
Status Absent(Txn& txn, uint64_t parent, std::string_view name) {
  auto existing = txn.GetDentry(parent, name);
  if (existing) return Status(Code::kExists, "");
  if (existing.error().code() != Code::kNotFound) return existing.error();
  return Status::Ok();
}
}  // namespace

Result<Inode*> MakeNode(Txn& txn, uint64_t parent, std::string_view name, const NewNode& node) {
  CAIRN_RETURN_IF_ERROR(CheckName(name));
  CAIRN_ASSIGN_OR_RETURN(Inode * dir, LiveDir(txn, parent));
  CAIRN_RETURN_IF_ERROR(Absent(txn, parent, name));
  CAIRN_ASSIGN_OR_RETURN(uint64_t ino, txn.NewIno());

  Inode inode;
  inode.ino = ino;
  inode.mode = node.mode;
  inode.uid = node.uid;
  inode.gid = node.gid;
  if (dir->mode & S_ISGID) {
    // BSD group semantics under a set-group-ID directory, as Linux file systems do.
    inode.gid = dir->gid;
    if (S_ISDIR(node.mode)) inode.mode |= S_ISGID;
  }
  inode.rdev = node.rdev;
  inode.no_xattrs = true;
  inode.atime = inode.mtime = inode.ctime = Now();
  if (S_ISDIR(node.mode)) {
    inode.nlink = 2;
    inode.parent = parent;
    ++dir->nlink;
  } else {
    inode.nlink = 1;
  }
  if (S_ISREG(node.mode)) inode.is_inline = true;
  if (S_ISLNK(node.mode)) {
    inode.is_inline = true;
    inode.inline_data.assign(node.symlink_target);
    inode.size = node.symlink_target.size();
  }
  dir->mtime = dir->ctime = inode.ctime;
  txn.PutDentry(parent, name, {ino, DirentType(inode.mode)});
  return txn.Add(std::move(inode));
}

Result<Inode*> Link(Txn& txn, uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  CAIRN_RETURN_IF_ERROR(CheckName(new_name));
  CAIRN_ASSIGN_OR_RETURN(Inode * dir, LiveDir(txn, new_parent));
  CAIRN_ASSIGN_OR_RETURN(Inode * inode, txn.Get(ino));
  if (inode->IsDir()) return Err(Code::kPermission, "hard links to directories are not allowed");
  if (inode->nlink == 0) return Err(Code::kNotFound);
  if (inode->nlink >= 65000) return Err(Code::kTooManyLinks);
  CAIRN_RETURN_IF_ERROR(Absent(txn, new_parent, new_name));
  const Timespec now = Now();
  ++inode->nlink;
  inode->ctime = now;
  dir->mtime = dir->ctime = now;
  txn.PutDentry(new_parent, new_name, {ino, DirentType(inode->mode)});
  return inode;
}

Status RemoveEntry(Txn& txn, uint64_t parent, std::string_view name, bool dir) {
  if (name.size() > kMaxNameLength) return Status(Code::kNameTooLong, "");
  if (dir && name == ".") return Status(Code::kInvalid, "cannot remove '.'");
  if (dir && name == "..") return Status(Code::kNotEmpty, "cannot remove '..'");
  CAIRN_ASSIGN_OR_RETURN(Inode * p, txn.Get(parent));
  if (!p->IsDir()) return Status(Code::kNotDir, "");
  CAIRN_ASSIGN_OR_RETURN(Dentry d, txn.GetDentry(parent, name));
  CAIRN_ASSIGN_OR_RETURN(Inode * child, txn.Get(d.ino));
  if (dir) {
    if (!child->IsDir()) return Status(Code::kNotDir, "");
    CAIRN_ASSIGN_OR_RETURN(bool empty, txn.DirEmpty(d.ino));
    if (!empty) return Status(Code::kNotEmpty, "");
  } else if (child->IsDir()) {
    return Status(Code::kIsDir, "");
  }
  // Checked: from here on the change only stages.
  const Timespec now = Now();
  if (dir) {
    child->nlink = 0;
    --p->nlink;
  } else {
    --child->nlink;
  }
  child->ctime = now;
  p->mtime = p->ctime = now;
  txn.DeleteDentry(parent, name);
  if (child->nlink == 0) txn.MarkOrphan(d.ino);
  return Status::Ok();
}

Status CheckRename(const RenameArgs& a) {
  if (a.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return Status(Code::kInvalid, "unsupported rename flags");
  }
  if ((a.flags & RENAME_NOREPLACE) && (a.flags & RENAME_EXCHANGE)) {
    return Status(Code::kInvalid, "RENAME_NOREPLACE and RENAME_EXCHANGE together");
  }
  if (a.name.size() > kMaxNameLength) return Status(Code::kNameTooLong, "");
  return CheckName(a.new_name);
}

Status Rename(Txn& txn, const RenameArgs& a, bool* raced) {
  CAIRN_RETURN_IF_ERROR(CheckRename(a));
  CAIRN_ASSIGN_OR_RETURN(Inode * from_dir, txn.Get(a.parent));
  CAIRN_ASSIGN_OR_RETURN(Inode * to_dir, txn.Get(a.new_parent));
  if (!from_dir->IsDir() || !to_dir->IsDir()) return Status(Code::kNotDir, "");
  if (to_dir->nlink == 0) return Status(Code::kNotFound, "directory was removed");
  CAIRN_ASSIGN_OR_RETURN(Dentry src, txn.GetDentry(a.parent, a.name));
  auto dst_lookup = txn.GetDentry(a.new_parent, a.new_name);
  if (!dst_lookup && dst_lookup.error().code() != Code::kNotFound) return dst_lookup.error();
  const bool dst_exists = dst_lookup.has_value();
  const Dentry dst = dst_exists ? *dst_lookup : Dentry{};
  if ((a.seen_src && src.ino != a.seen_src->ino) ||
      (a.seen_dst &&
       (dst_exists != a.seen_dst->has_value() || (dst_exists && dst.ino != (*a.seen_dst)->ino)))) {
    if (raced) *raced = true;  // someone renamed meanwhile: the caller decides again
    return Status::Ok();
  }

  if ((a.flags & RENAME_EXCHANGE) && !dst_exists) return Status(Code::kNotFound, "");
  if ((a.flags & RENAME_NOREPLACE) && dst_exists) return Status(Code::kExists, "");
  // Renaming a name onto another link of the same inode does nothing, per POSIX.
  if (dst_exists && dst.ino == src.ino) return Status::Ok();
  const bool src_is_dir = src.type == DT_DIR;
  const bool dst_is_dir = dst_exists && dst.type == DT_DIR;
  const bool across = a.parent != a.new_parent;

  CAIRN_ASSIGN_OR_RETURN(Inode * moved, txn.Get(src.ino));
  const Timespec now = Now();
  if (a.flags & RENAME_EXCHANGE) {
    CAIRN_ASSIGN_OR_RETURN(Inode * other, txn.Get(dst.ino));
    txn.PutDentry(a.parent, a.name, dst);
    txn.PutDentry(a.new_parent, a.new_name, src);
    if (across && src_is_dir) {
      moved->parent = a.new_parent;
      --from_dir->nlink;
      ++to_dir->nlink;
    }
    if (across && dst_is_dir) {
      other->parent = a.parent;
      --to_dir->nlink;
      ++from_dir->nlink;
    }
    other->ctime = now;
  } else {
    if (dst_exists) {
      CAIRN_ASSIGN_OR_RETURN(Inode * victim, txn.Get(dst.ino));
      if (src_is_dir) {
        if (!victim->IsDir()) return Status(Code::kNotDir, "");
        CAIRN_ASSIGN_OR_RETURN(bool empty, txn.DirEmpty(dst.ino));
        if (!empty) return Status(Code::kNotEmpty, "");
        victim->nlink = 0;
        --to_dir->nlink;  // the victim's ".."
      } else {
        if (victim->IsDir()) return Status(Code::kIsDir, "");
        --victim->nlink;
      }
      victim->ctime = now;
      if (victim->nlink == 0) txn.MarkOrphan(dst.ino);
    }
    txn.DeleteDentry(a.parent, a.name);
    txn.PutDentry(a.new_parent, a.new_name, src);
    if (src_is_dir && across) {
      moved->parent = a.new_parent;
      --from_dir->nlink;
      ++to_dir->nlink;
    }
  }
  moved->ctime = now;
  from_dir->mtime = from_dir->ctime = now;
  to_dir->mtime = to_dir->ctime = now;
  return Status::Ok();
}

}  // namespace cairn::meta
