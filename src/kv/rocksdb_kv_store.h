// RocksDbKvStore: the real KvStore, a RocksDB database in one directory. Writes go through the
// WAL; Write(sync=true) and SyncWal() fsync it. Thread-safe.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>

#include "kv/kv_store.h"

namespace rocksdb {
class DB;
}

namespace cairn::kv {

struct RocksDbOptions {
  bool create_if_missing = false;
  size_t block_cache_bytes = 256 << 20;
  bool read_only = false;  // a checkpoint opened for reading: no writes, no lock
};

class RocksDbKvStore final : public KvStore {
 public:
  static Result<std::unique_ptr<RocksDbKvStore>> Open(const std::string& dir,
                                                      const RocksDbOptions& options);
  ~RocksDbKvStore() override;

  Result<std::string> Get(std::string_view key) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override;
  using KvStore::NewIterator;
  Status SyncWal() override;
  Status Flush() override;
  Status Checkpoint(const std::string& dir) override;

 private:
  explicit RocksDbKvStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
  // Shared by plain writes, exclusive for a batch with expectations (Write).
  std::shared_mutex expect_mu_;
};

}  // namespace cairn::kv
