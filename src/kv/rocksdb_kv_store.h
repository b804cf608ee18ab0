// RocksDbKvStore: a single node's KvStore, a RocksDB database in one directory. Writes go through
// the WAL; Write(sync=true) and SyncWal() fsync it.
//
// Snapshots are checkpoints: snapshot_dir/<id>/ holds hard links to the database's immutable
// files (plus a copy of the small live ones), so taking one copies nothing large. A snapshot is
// opened read-only on first use and kept open (its views and SnapshotsHold share the handle); a
// dropped one is renamed aside and removed when its last view closes. snapshot_dir/LAST holds the
// largest id taken, so ids are never reused.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
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
  // Where snapshots live (empty: the store takes none, kNotSupported).
  std::string snapshot_dir;
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
  Status CreateSnapshot(uint64_t id, const WriteBatch& then) override;
  Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t id) override;
  Status DropSnapshot(uint64_t id) override;
  Result<std::vector<uint64_t>> ListSnapshots() override;
  Result<bool> SnapshotsHold(std::string_view key) override;

  // Writes a consistent, durable copy of the store as of now into dir (which must not exist),
  // sharing immutable files by hard link.
  Status Checkpoint(const std::string& dir);

  struct SnapshotHandle;

 private:
  RocksDbKvStore(std::unique_ptr<rocksdb::DB> db, std::string snapshot_dir);
  Status CheckSnapshots() const;
  // The open handle of snapshot id (opened on first use). REQUIRES: snap_mu_ held.
  Result<std::shared_ptr<SnapshotHandle>> HandleLocked(uint64_t id);
  Result<uint64_t> LastSnapshotLocked() const;  // REQUIRES: snap_mu_ held

  std::unique_ptr<rocksdb::DB> db_;
  // Shared by plain writes, exclusive for a batch with expectations (Write).
  std::shared_mutex expect_mu_;
  const std::string snapshot_dir_;
  std::mutex snap_mu_;  // creation, dropping and the handles
  std::map<uint64_t, std::shared_ptr<SnapshotHandle>> handles_;  // GUARDED_BY(snap_mu_)
};

}  // namespace cairn::kv
