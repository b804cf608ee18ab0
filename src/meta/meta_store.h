// MetaStore: typed reads of the metadata schema over a KvStore, and the id allocators.
// Writes are built by the caller as one kv::WriteBatch per namespace change (see fs/).
// Thread-safety: all methods are safe to call from many threads.
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kv/kv_store.h"
#include "meta/schema.h"

namespace cairn::meta {

// Hands out increasing ids (inode numbers, segment ids) without a KV round trip per id: it
// persists a reserved upper bound, synchronously, once per kBlock ids. After a crash ids restart
// from the persisted bound, so no id is ever handed out twice.
// Reserves `count` numbers from the counter at `key` (absent: starting at `first`) and returns
// the first: a read, then a batch that expects the value read and stores it plus count, rerun
// when another writer (a node of the cluster) got there first. Durable (synced) on return.
Result<uint64_t> ReserveIds(kv::KvStore* kv, const std::string& key, uint64_t first,
                            uint64_t count);

class IdAllocator {
 public:
  static constexpr uint64_t kBlock = 4096;
  IdAllocator(kv::KvStore* kv, std::string counter_name, uint64_t first);
  Status Load();
  Result<uint64_t> Next();

 private:
  kv::KvStore* kv_;
  std::string key_;
  std::mutex mu_;
  uint64_t next_;   // GUARDED_BY(mu_)
  uint64_t limit_;  // GUARDED_BY(mu_): ids < limit_ are reserved on disk
};

class MetaStore {
 public:
  explicit MetaStore(kv::KvStore* kv) : kv_(kv) {}
  kv::KvStore& kv() { return *kv_; }

  Result<Inode> GetInode(uint64_t ino);
  // kNotFound when there is no such entry.
  Result<Dentry> GetDentry(uint64_t parent, std::string_view name);
  // Up to limit entries of dir whose names sort after `after` ("" = from the start).
  Result<std::vector<std::pair<std::string, Dentry>>> ListDir(uint64_t dir, std::string_view after,
                                                              size_t limit);
  Result<bool> DirIsEmpty(uint64_t dir);
  // Extents of ino overlapping [begin, end), in file order.
  Result<std::vector<Extent>> GetExtents(uint64_t ino, uint64_t begin, uint64_t end);
  // Every extent of ino through `it`, an iterator over all extent records (NewExtentIterator)
  // that the caller reuses from file to file: the dataset index reads thousands of files'.
  std::unique_ptr<kv::Iterator> NewExtentIterator();
  Result<std::vector<Extent>> AllExtents(kv::Iterator& it, uint64_t ino);
  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  // An imported file's object (kNotFound for a file that is not imported).
  Result<ObjectRef> GetObjectRef(uint64_t ino);
  Result<std::vector<std::string>> ListXattrs(uint64_t ino);
  Result<std::vector<SegmentRecord>> ListSegments();
  // A total (schema.h, TotalKey): its key plus every node's shard; 0 when none exists.
  Result<int64_t> ReadTotal(std::string_view name);

 private:
  kv::KvStore* kv_;
};

}  // namespace cairn::meta
