// The namespace operations: each stages one change into a meta::Txn (meta/txn.h) and returns;
// committing is the caller's (fs::FileSystem::RunChange commits and runs an operation again when
// its Txn must). Every check comes before the first change to a record, so an operation that
// fails leaves nothing staged that matters: its Txn is dropped.
//
// What the operations do not check: names reserved by the file system above (".snapshots"),
// read-only snapshot inodes, permissions (the kernel checks them before the request arrives).
// Pure functions over the Txn; thread-safety is the Txn's.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "meta/txn.h"

namespace cairn::meta {

struct NewNode {
  uint32_t mode = 0;  // the type bits and permissions
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;
  std::string_view symlink_target;  // for S_IFLNK
};
// Creates parent/name (a file, directory, symlink, device, FIFO or socket): kExists, kNotDir,
// kNotFound (parent removed), or the new inode as staged.
Result<Inode*> MakeNode(Txn& txn, uint64_t parent, std::string_view name, const NewNode& node);

// Adds new_parent/new_name as another link to ino: kPermission for a directory, kTooManyLinks.
Result<Inode*> Link(Txn& txn, uint64_t ino, uint64_t new_parent, std::string_view new_name);

// Removes parent/name: a directory (rmdir: kNotDir, kNotEmpty) or anything else (unlink: kIsDir).
// An inode left without links is marked an orphan.
Status RemoveEntry(Txn& txn, uint64_t parent, std::string_view name, bool dir);

// rename(2) and renameat2(2) flags (RENAME_NOREPLACE, RENAME_EXCHANGE).
struct RenameArgs {
  uint64_t parent = 0;
  std::string_view name;
  uint64_t new_parent = 0;
  std::string_view new_name;
  unsigned flags = 0;
  // What the caller saw of both names before it decided how to lock (null: it did not look).
  // When the names say otherwise now, the operation stages nothing and sets *raced.
  const Dentry* seen_src = nullptr;
  const std::optional<Dentry>* seen_dst = nullptr;
};
// The checks of a rename that need no record: flags, name lengths and characters.
Status CheckRename(const RenameArgs& args);
// Moves parent/name to new_parent/new_name, replacing (or exchanging with) what is there.
// *raced (if given): set when the names changed since the caller looked; nothing was staged then,
// and the caller decides again. REQUIRES: a directory does not move under itself (the caller
// checked, with parent pointers held still).
Status Rename(Txn& txn, const RenameArgs& args, bool* raced = nullptr);

}  // namespace cairn::meta
