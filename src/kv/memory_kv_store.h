// MemoryKvStore: an in-memory KvStore for unit tests of the layers above. Iterators copy the map
// (tests are small). Thread-safe.
#pragma once

#include <map>
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

 private:
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> map_;  // GUARDED_BY(mu_)
};

}  // namespace cairn::kv
