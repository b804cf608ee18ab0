// FileSystem::Txn: one namespace change under construction. It locks every inode it touches
// (exclusive, held until it ends), works on copies of their records, and on Commit writes them
// with the rest of its batch atomically, then installs the copies in the cache. On failure nothing
// in memory changed. REQUIRES: FileSystem::ns_mu_ held for the Txn's whole life, which is what
// makes taking several inode locks deadlock-free.
#pragma once

#include <map>

#include "fs/file_system.h"

namespace cairn::fs {

class FileSystem::Txn {
 public:
  explicit Txn(FileSystem* fs) : fs_(fs) {}

  // A mutable copy of ino's record (loaded and locked on first use).
  Result<meta::Inode*> Get(uint64_t ino) {
    auto it = entries_.find(ino);
    if (it == entries_.end()) {
      CAIRN_ASSIGN_OR_RETURN(auto state, fs_->cache_->Get(ino));
      Entry e;
      e.lock = std::unique_lock(state->lock);
      if (state->deleted) return Err(Code::kNotFound, "inode was removed");
      e.copy = state->inode;
      e.state = std::move(state);
      it = entries_.emplace(ino, std::move(e)).first;
    }
    return &it->second.copy;
  }
  // Adds a new inode, to be inserted in the cache with `lookups` kernel references.
  meta::Inode* Add(meta::Inode inode, uint64_t lookups) {
    Entry e;
    e.is_new = true;
    e.lookups = lookups;
    e.copy = std::move(inode);
    return &entries_.emplace(e.copy.ino, std::move(e)).first->second.copy;
  }
  kv::WriteBatch& batch() { return batch_; }

  Status Commit(bool sync = false) {
    for (auto& [ino, e] : entries_) {
      batch_.Put(meta::InodeKey(ino), meta::EncodeInode(e.copy));
    }
    CAIRN_RETURN_IF_ERROR(fs_->kv_->Write(batch_, sync));
    for (auto& [ino, e] : entries_) {
      if (e.is_new) {
        fs_->Account(nullptr, &e.copy);
        fs_->cache_->Insert(e.copy, e.lookups);
      } else {
        fs_->Account(&e.state->inode, &e.copy);
        e.state->inode = e.copy;
      }
    }
    return Status::Ok();
  }

  ~Txn() {
    std::vector<std::pair<uint64_t, std::shared_ptr<InodeState>>> held;
    for (auto& [ino, e] : entries_) {
      if (e.state) held.emplace_back(ino, e.state);
    }
    entries_.clear();
    // With the locks released: reclaim what lost its last link, drop what nothing refers to.
    for (auto& [ino, s] : held) fs_->MaybeReclaim(ino, s);
  }

 private:
  struct Entry {
    std::shared_ptr<InodeState> state;
    std::unique_lock<std::shared_mutex> lock;
    meta::Inode copy;
    bool is_new = false;
    uint64_t lookups = 0;
  };
  FileSystem* fs_;
  std::map<uint64_t, Entry> entries_;
  kv::WriteBatch batch_;
};

}  // namespace cairn::fs
