// InodeCache: the in-memory state of inodes the kernel or an open file refers to.
//
// Each cached inode carries the authoritative copy of its record and a reader/writer lock:
// data reads take it shared; writes, attribute changes and namespace changes take it exclusive.
// The cache also counts kernel lookups (nlookup) and open handles; an entry is dropped when both
// are zero and nobody else holds it, and an unlinked inode's storage is reclaimed at that moment.
//
// Lock order: FileSystem::rename_mu_ -> InodeState::lock (several only in a Txn, which waits in
// ascending inode order, fs/txn.h) -> shard mutex. Never wait for an inode lock while holding a
// shard mutex.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "meta/meta_store.h"

namespace cairn::fs {

struct InodeState {
  std::shared_mutex lock;
  meta::Inode inode;        // GUARDED_BY(lock)
  bool deleted = false;     // GUARDED_BY(lock): storage reclaimed; the number is dead
  uint64_t nlookup = 0;     // GUARDED_BY(shard mutex)
  uint32_t open_count = 0;  // GUARDED_BY(shard mutex)
};

class InodeCache {
 public:
  explicit InodeCache(meta::MetaStore* meta) : meta_(meta) {}

  // The cached state of ino, loaded from the metadata if absent (kNotFound if it does not exist).
  // lookups/opens are added to the counters atomically with the fetch.
  Result<std::shared_ptr<InodeState>> Get(uint64_t ino, uint64_t lookups = 0, uint32_t opens = 0);
  // Inserts the state of a just-created inode with one lookup.
  std::shared_ptr<InodeState> Insert(const meta::Inode& inode, uint64_t lookups);
  // Decrements counters; returns true when the inode now has no lookups and no opens.
  bool Drop(uint64_t ino, uint64_t lookups, uint32_t opens);
  // Whether the kernel or a handle still refers to ino.
  bool InUse(uint64_t ino);
  // Drops the entry if nothing refers to it. `held` is the caller's own reference, if any.
  void TryEvict(uint64_t ino, const std::shared_ptr<InodeState>* held = nullptr);
  size_t size();

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<InodeState>> map;
  };
  Shard& ShardFor(uint64_t ino) { return shards_[ino % shards_.size()]; }

  meta::MetaStore* meta_;
  std::array<Shard, 64> shards_;
};

}  // namespace cairn::fs
