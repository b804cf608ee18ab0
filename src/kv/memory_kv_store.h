// MemoryKvStore: an in-memory KvStore for unit tests of the layers above. Iterators copy the map,
// and so does a snapshot (tests are small). Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "kv/kv_store.h"

namespace cairn::kv {

class MemoryKvStore final : public KvStore {
 public:
  Result<std::string> Get(std::string_view key) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override;
  using KvStore::NewIterator;
  Status SyncWal() override { return Status::Ok(); }
  Status Flush() override { return Status::Ok(); }
  Status CreateSnapshot(uint64_t id, const WriteBatch& then) override;
  Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t id) override;
  Status DropSnapshot(uint64_t id) override;
  Result<std::vector<uint64_t>> ListSnapshots() override;
  Result<bool> SnapshotsHold(std::string_view key) override;

  using Map = std::map<std::string, std::string, std::less<>>;
  struct Snapshot;

 private:
  Status WriteLocked(const WriteBatch& batch);  // REQUIRES: mu_ held

  std::mutex mu_;
  Map map_;                                              // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<Snapshot>> snaps_;  // GUARDED_BY(mu_)
  uint64_t last_snapshot_ = 0;                           // GUARDED_BY(mu_): the largest id taken
};

}  // namespace cairn::kv
