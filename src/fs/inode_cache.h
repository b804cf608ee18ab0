// InodeCache: the in-memory state of inodes, and the references the kernel and open files hold.
//
// Two tables per shard. `refs`: for every inode the kernel knows (lookups, nlookup) or a handle
// has open, its counts, in 16 bytes: an unlinked inode's storage is reclaimed once both are zero.
// `states`: the authoritative copy of an inode's record with its reader/writer lock (data reads
// take it shared; writes, attribute changes and namespace changes take it exclusive), for inodes
// in use and a bounded number of recently used ones, so attributes come from memory without one
// state object per inode the kernel ever looked up (15 million after a `find`). A state nobody
// holds and no handle has open may be dropped at any time: the metadata store has the same record.
//
// Lock order: FileSystem::rename_mu_ -> InodeState::lock (several only in a Txn, which waits in
// ascending inode order, fs/txn.h) -> shard mutex. Never wait for an inode lock while holding a
// shard mutex.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "meta/meta_store.h"

namespace cairn::fs {

// Steady-clock nanoseconds, for InodeState::read_at.
int64_t MonotonicNs();

struct InodeState {
  std::shared_mutex lock;
  meta::Inode inode;     // GUARDED_BY(lock)
  bool deleted = false;  // GUARDED_BY(lock): storage reclaimed; the number is dead
  // When `inode` was last known to equal the stored record (taken before the read or commit
  // that showed it): in cluster mode a copy older than the lease is read again
  // (FileSystem::Revalidate), and so is one read before changed_at.
  std::atomic<int64_t> read_at{MonotonicNs()};
  // Cluster mode: when a notice of another node's change to this inode was heard. A notice heard
  // while a read was under way is later than that read's read_at, so the read does not hide it.
  std::atomic<int64_t> changed_at{0};
  // A regular file's extents, read once per version of its record (extents_at: the encoded
  // record they were read at), so that reads of a file cost one metadata read, not one per read
  // request. Every change of extents changes the record, but compaction's move of a blob, which
  // resets them. Used under `lock` (shared is enough).
  std::mutex extents_mu;
  std::shared_ptr<const std::vector<meta::Extent>> extents;  // GUARDED_BY(extents_mu)
  std::string extents_at;                                    // GUARDED_BY(extents_mu)
};

class InodeCache {
 public:
  // max_states: how many states to keep beyond those in use (spread over the shards).
  // keep_unreferenced: keep a state the kernel forgot while there is room (a cluster node, where
  // loading it again is a database round trip); otherwise it goes at once.
  explicit InodeCache(meta::MetaStore* meta, size_t max_states = 1 << 20,
                      bool keep_unreferenced = false)
      : meta_(meta),
        max_states_per_shard_(std::max<size_t>(16, max_states / kShards)),
        keep_unreferenced_(keep_unreferenced) {}

  // The cached state of ino, loaded from the metadata if absent (kNotFound if it does not exist).
  // lookups/opens are added to the counters atomically with the fetch.
  Result<std::shared_ptr<InodeState>> Get(uint64_t ino, uint64_t lookups = 0, uint32_t opens = 0);
  // Adds the state of an inode read at read_at (a directory load), unless one is in memory.
  void Prime(const meta::Inode& inode, int64_t read_at);
  // Inserts the state of a just-created inode with one lookup.
  std::shared_ptr<InodeState> Insert(const meta::Inode& inode, uint64_t lookups);
  // Decrements counters; returns true when the inode now has no lookups and no opens.
  bool Drop(uint64_t ino, uint64_t lookups, uint32_t opens);
  // Whether the kernel or a handle still refers to ino.
  bool InUse(uint64_t ino);
  // The state if it is in memory (nullptr otherwise; nothing is loaded). Every inode that is
  // unlinked but not yet reclaimed is in memory.
  std::shared_ptr<InodeState> Peek(uint64_t ino);
  // Drops the state if no one holds it and no handle has it open (the kernel's lookups stay
  // counted). `held` is the caller's own reference, if any.
  void TryEvict(uint64_t ino, const std::shared_ptr<InodeState>* held = nullptr);
  size_t size();        // states in memory
  size_t referenced();  // inodes the kernel or a handle refers to

 private:
  static constexpr size_t kShards = 64;
  struct Refs {
    uint64_t nlookup = 0;
    uint32_t opens = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<InodeState>> states;  // GUARDED_BY(mu)
    std::unordered_map<uint64_t, Refs> refs;                           // GUARDED_BY(mu)
    size_t next_victim = 0;  // GUARDED_BY(mu): where the last trim stopped (bucket index)
  };
  Shard& ShardFor(uint64_t ino) { return shards_[ino % kShards]; }
  void AddRefsLocked(Shard& shard, uint64_t ino, uint64_t lookups, uint32_t opens);
  // Drops unheld, unopened states while the shard keeps more than its share. REQUIRES: shard.mu.
  void TrimLocked(Shard& shard);
  static bool Evictable(uint64_t ino, const InodeState& state);

  meta::MetaStore* meta_;
  const size_t max_states_per_shard_;
  const bool keep_unreferenced_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cairn::fs
