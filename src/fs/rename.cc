// rename(2) and renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE: one atomic batch, staged
// by meta::Rename (meta/ops.h). What stays here is deciding how to lock.
#include <dirent.h>
#include <linux/fs.h>

#include <optional>

#include "fs/file_system.h"
#include "fs/txn.h"
#include "meta/ops.h"

namespace cairn::fs {

Status FileSystem::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                          std::string_view new_name, unsigned flags) {
  if (IsSnapIno(parent) || IsSnapIno(new_parent) ||
      (parent == meta::kRootIno && name == kSnapDirName) ||
      (new_parent == meta::kRootIno && new_name == kSnapDirName)) {
    return Status(Code::kReadOnly, "snapshots are read-only");
  }
  meta::RenameArgs args{parent, name, new_parent, new_name, flags};
  CAIRN_RETURN_IF_ERROR(meta::CheckRename(args));
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
    args.seen_src = &seen_src;
    args.seen_dst = &seen_dst_entry;
    bool raced = false;
    Status st = RunOp([&](Txn& txn) -> Status {
      raced = false;
      CAIRN_RETURN_IF_ERROR(meta::Rename(txn, args, &raced));
      return raced ? Status::Ok() : txn.Commit();
    });
    if (!raced) return st;
  }
}

}  // namespace cairn::fs
