// meta::StoreTxn: a meta::Txn that reads the KvStore directly and locks nothing. Each record it
// hands out is read once, and Commit expects it unchanged in the store (WriteBatch::Expect), so a
// change that met another writer's fails with kConflict instead of overwriting it: the same rule
// the cluster's Txn follows. For one user at a time: the operations' unit tests and tools.
// Not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "meta/meta_store.h"
#include "meta/txn.h"

namespace cairn::meta {

class StoreTxn final : public Txn {
 public:
  // node: the node named in orphan records. inos: where NewIno takes numbers from.
  StoreTxn(kv::KvStore* kv, IdAllocator* inos, uint32_t node = 0)
      : kv_(kv), meta_(kv), inos_(inos), node_(node) {}

  Result<Inode*> Get(uint64_t ino) override;
  Inode* Add(Inode inode) override;
  Result<uint64_t> NewIno() override { return inos_->Next(); }
  Result<Dentry> GetDentry(uint64_t parent, std::string_view name) override;
  void PutDentry(uint64_t parent, std::string_view name, const Dentry& d) override;
  void DeleteDentry(uint64_t parent, std::string_view name) override;
  Result<bool> DirEmpty(uint64_t dir) override;
  void MarkOrphan(uint64_t ino) override;
  kv::WriteBatch& batch() override { return batch_; }

  // Writes every record read or added and the staged batch, atomically. kConflict when a record
  // read changed in the store meanwhile (nothing is written then). Once only.
  Status Commit(bool sync = false);

 private:
  struct Record {
    std::optional<std::string> original;  // as read (nullopt: added by this Txn)
    Inode copy;
  };
  kv::KvStore* kv_;
  MetaStore meta_;
  IdAllocator* inos_;
  const uint32_t node_;
  std::map<uint64_t, Record> records_;
  // Entries this change staged (nullopt: removed), by (parent, name).
  std::map<std::pair<uint64_t, std::string>, std::optional<Dentry>> dentries_;
  kv::WriteBatch batch_;
};

}  // namespace cairn::meta
