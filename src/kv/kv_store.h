// KvStore: the ordered key-value store under Cairn's metadata. Keys and values are byte strings
// ordered bytewise. A WriteBatch applies atomically: after a crash either all of it or none of it
// is visible. Three implementations: RocksDbKvStore (a single node's metadata), PgKvStore (a
// cluster's, shared in PostgreSQL) and MemoryKvStore (unit tests); tests/kv/kv_test.cc runs one
// typed suite over all three.
//
// Snapshots: a store keeps named read-only views of itself as of one instant (CreateSnapshot),
// each as cheap to take at ten thousand keys as at ten million: RocksDB hard-links its immutable
// files into a checkpoint, PostgreSQL bumps an epoch and keeps the versions a snapshot still needs
// (pg_kv_store.h), the in-memory store copies its map.
//
// Thread-safety: all methods may be called from many threads at once. An iterator sees a
// consistent snapshot taken when it was created and is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::kv {

// A counter value: 8 bytes, little-endian two's complement.
std::string EncodeCounter(int64_t value);

class WriteBatch {
 public:
  enum class Kind : uint8_t { kPut, kDelete, kAdd };
  struct Op {
    Kind kind;
    std::string key;
    std::string value;  // kAdd: the delta, EncodeCounter
  };
  void Put(std::string key, std::string value) {
    ops_.push_back({Kind::kPut, std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops_.push_back({Kind::kDelete, std::move(key), {}}); }
  // Adds delta to the signed 64-bit counter at key (absent counts as 0), without reading it:
  // counters that every change updates cost no read and no lock. Read with DecodeCounter.
  void Add(std::string key, int64_t delta) {
    ops_.push_back({Kind::kAdd, std::move(key), EncodeCounter(delta)});
  }
  // Removes every key in [begin, end).
  void DeleteRange(std::string begin, std::string end) {
    ranges_.push_back({std::move(begin), std::move(end)});
  }
  // A precondition: the batch applies only if key holds exactly value (nullopt: key absent) at
  // that moment, checked atomically with the writes; otherwise nothing applies and Write returns
  // kConflict. This is how nodes sharing one store change records that another node may have
  // changed since they read them (docs/ARCHITECTURE.md, "Cluster").
  void Expect(std::string key, std::optional<std::string> value) {
    expects_.emplace_back(std::move(key), std::move(value));
  }
  const std::vector<std::pair<std::string, std::optional<std::string>>>& expects() const {
    return expects_;
  }
  const std::vector<Op>& ops() const { return ops_; }
  const std::vector<std::pair<std::string, std::string>>& ranges() const { return ranges_; }
  bool empty() const { return ops_.empty() && ranges_.empty(); }
  size_t size() const { return ops_.size() + ranges_.size(); }

 private:
  std::vector<Op> ops_;
  // Range deletions apply before the puts and deletes of the same batch.
  std::vector<std::pair<std::string, std::string>> ranges_;
  std::vector<std::pair<std::string, std::optional<std::string>>> expects_;
};

// kCorruption unless value is 8 bytes.
Result<int64_t> DecodeCounter(std::string_view value);

class Iterator {
 public:
  virtual ~Iterator() = default;
  virtual void Seek(std::string_view key) = 0;         // first key >= key
  virtual void SeekForPrev(std::string_view key) = 0;  // last key <= key
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

class KvStore {
 public:
  virtual ~KvStore() = default;
  // The value of key, or Code::kNotFound.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // The values of keys (nullopt: absent), in the order asked: one round trip where the store
  // has round trips (PostgreSQL), one Get each elsewhere.
  virtual Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys);
  // Applies batch atomically. sync: durable (WAL fsync'd) when this returns. kConflict (nothing
  // applied) when one of the batch's expectations does not hold.
  virtual Status Write(const WriteBatch& batch, bool sync) = 0;
  // An iterator over keys in [lower, upper) ("" upper: no end). Give the bounds whenever the scan
  // stays inside a prefix: a seek then never walks over deleted keys outside it.
  virtual std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) = 0;
  std::unique_ptr<Iterator> NewIterator() { return NewIterator({}, {}); }
  // Makes every write made so far durable.
  virtual Status SyncWal() = 0;
  // Persists everything to the main files (clean shutdown).
  virtual Status Flush() = 0;

  // Snapshots. ids increase: CreateSnapshot refuses (kInvalid) an id not above every id taken
  // before, even of snapshots dropped since. `then` (may be empty) is applied right after the
  // snapshot's instant (it is not in the snapshot), durably, atomically with it where the store
  // can (PostgreSQL; RocksDB writes it just after its checkpoint). kExists for an id in use.
  virtual Status CreateSnapshot(uint64_t id, const WriteBatch& then) = 0;
  // A read-only view (Write: kReadOnly) of snapshot id; kNotFound when there is none. Reads of a
  // view whose snapshot was dropped since fail (they never return what is there now instead).
  virtual Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t id) = 0;
  // Drops snapshot id (absent: Ok) and frees what only it kept. Views open on it may fail.
  virtual Status DropSnapshot(uint64_t id) = 0;
  // The ids of the snapshots that exist, ascending.
  virtual Result<std::vector<uint64_t>> ListSnapshots() = 0;
  // Whether some snapshot holds key (any version of it). Segment removal asks this.
  virtual Result<bool> SnapshotsHold(std::string_view key) = 0;
};

// A snapshot's view (KvStore::OpenSnapshot): what every view answers alike. Writes and snapshots
// of it are refused (kReadOnly); it holds no snapshots; durability has nothing to do.
class SnapshotViewStore : public KvStore {
 public:
  Status Write(const WriteBatch&, bool) override { return ReadOnly(); }
  using KvStore::NewIterator;
  Status SyncWal() override { return Status::Ok(); }
  Status Flush() override { return Status::Ok(); }
  Status CreateSnapshot(uint64_t, const WriteBatch&) override { return ReadOnly(); }
  Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t) override { return Err(ReadOnly()); }
  Status DropSnapshot(uint64_t) override { return ReadOnly(); }
  Result<std::vector<uint64_t>> ListSnapshots() override { return std::vector<uint64_t>(); }
  Result<bool> SnapshotsHold(std::string_view) override { return false; }

 protected:
  static Status ReadOnly() { return Status(Code::kReadOnly, "a snapshot is read-only"); }
  // What a read of a view whose snapshot was dropped since says.
  static Status Dropped() { return Status(Code::kNotFound, "the snapshot was deleted"); }
};

// Collects every key-value pair in [begin, end); cold paths and tests.
Result<std::vector<std::pair<std::string, std::string>>> ScanRange(KvStore& kv,
                                                                   std::string_view begin,
                                                                   std::string_view end);

}  // namespace cairn::kv
