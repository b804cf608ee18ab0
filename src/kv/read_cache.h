// ReadCache: a KvStore over a read-only one (a snapshot view) that keeps what it read, without
// expiry: a snapshot never changes, so every node may keep its records for good (on a cluster a
// snapshot's view otherwise asks PostgreSQL for every lookup, stat and file's extents).
//
// Point reads (found or not) are kept; an iterator over a range of at most kMaxRangeRows rows is
// read whole once and kept (a file's extents, a small directory); a larger range is read through
// each time. At most max_bytes of keys and values are kept; past that the oldest entries go.
//
// Thread-safety: all methods may be called from many threads at once.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/kv_store.h"

namespace cairn::kv {

class ReadCache final : public KvStore {
 public:
  static constexpr size_t kMaxRangeRows = 1024;
  ReadCache(std::unique_ptr<KvStore> base, size_t max_bytes = 64u << 20)
      : base_(std::move(base)), max_bytes_(max_bytes) {}

  Result<std::string> Get(std::string_view key) override;
  Status Write(const WriteBatch& batch, bool sync) override { return base_->Write(batch, sync); }
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override;
  using KvStore::NewIterator;
  Status SyncWal() override { return Status::Ok(); }
  Status Flush() override { return Status::Ok(); }
  Status CreateSnapshot(uint64_t id, const WriteBatch& then) override {
    return base_->CreateSnapshot(id, then);
  }
  Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t id) override {
    return base_->OpenSnapshot(id);
  }
  Status DropSnapshot(uint64_t id) override { return base_->DropSnapshot(id); }
  Result<std::vector<uint64_t>> ListSnapshots() override { return base_->ListSnapshots(); }
  Result<bool> SnapshotsHold(std::string_view key) override { return base_->SnapshotsHold(key); }

 private:
  using Rows = std::vector<std::pair<std::string, std::string>>;
  struct Entry {
    std::optional<std::string> value;  // a point read (nullopt: not found) ...
    std::shared_ptr<const Rows> rows;  // ... or a whole range
    size_t bytes = 0;
    std::list<std::string>::iterator age;
  };
  void PutLocked(std::string id, Entry e);  // REQUIRES: mu_

  std::unique_ptr<KvStore> base_;
  const size_t max_bytes_;
  std::mutex mu_;
  // "g" + key: a point read; "r" + 4-byte length + lower + upper: a range.
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  std::list<std::string> order_;                    // GUARDED_BY(mu_): oldest first
  size_t bytes_ = 0;                                // GUARDED_BY(mu_)
};

}  // namespace cairn::kv
