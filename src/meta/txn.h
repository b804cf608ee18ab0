// meta::Txn: one namespace change under construction, as the namespace operations (meta/ops.h)
// see it. An operation reads and changes inode records and directory entries through it and stages
// everything into one batch; whoever made the Txn commits that batch atomically, or drops it.
//
// Implementations: fs::FileSystem::Txn (fs/txn.h) locks each inode it hands out, works on cached
// copies and, on a cluster, expects every record it read to be unchanged at commit; meta::StoreTxn
// (meta/store_txn.h) reads the store directly and locks nothing (one user at a time: tests, tools).
//
// Errors of Get: kNotFound (the inode is gone); kBusy when the Txn must run again from the start
// (fs::FileSystem::Txn: an inode lock taken out of order). An operation returns such errors as
// they are and stages nothing more.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "kv/kv_store.h"
#include "meta/schema.h"

namespace cairn::meta {

class Txn {
 public:
  virtual ~Txn() = default;

  // A mutable copy of ino's record; what the operation changes in it is written at commit.
  virtual Result<Inode*> Get(uint64_t ino) = 0;
  // A new inode, written at commit. The pointer stays valid for the Txn's life.
  virtual Inode* Add(Inode inode) = 0;
  // A fresh inode number (never handed out before).
  virtual Result<uint64_t> NewIno() = 0;

  // The entry parent/name as this change sees it (what it staged itself, else what is stored);
  // kNotFound when there is none. REQUIRES: Get(parent) succeeded.
  virtual Result<Dentry> GetDentry(uint64_t parent, std::string_view name) = 0;
  virtual void PutDentry(uint64_t parent, std::string_view name, const Dentry& d) = 0;
  virtual void DeleteDentry(uint64_t parent, std::string_view name) = 0;
  // Whether directory dir has no entries. REQUIRES: Get(dir) succeeded.
  virtual Result<bool> DirEmpty(uint64_t dir) = 0;

  // Records that ino lost its last link: it lives on while open, and its orphan record lets a
  // later mount reclaim it after a crash.
  virtual void MarkOrphan(uint64_t ino) = 0;
  // The batch the change is staged in, for records the operation writes itself.
  virtual kv::WriteBatch& batch() = 0;
};

}  // namespace cairn::meta
