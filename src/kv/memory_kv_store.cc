#include "kv/memory_kv_store.h"

#include <atomic>

namespace cairn::kv {

struct MemoryKvStore::Snapshot {
  Map map;
  std::atomic<bool> dropped{false};
};

namespace {

using Map = MemoryKvStore::Map;

class MemoryIterator final : public Iterator {
 public:
  explicit MemoryIterator(Map snapshot) : map_(std::move(snapshot)), it_(map_.end()) {}
  void Seek(std::string_view key) override { it_ = map_.lower_bound(key); }
  void SeekForPrev(std::string_view key) override {
    it_ = map_.upper_bound(key);
    if (it_ == map_.begin()) {
      it_ = map_.end();
    } else {
      --it_;
    }
  }
  bool Valid() const override { return it_ != map_.end(); }
  void Next() override { ++it_; }
  void Prev() override {
    if (it_ == map_.begin()) {
      it_ = map_.end();
    } else {
      --it_;
    }
  }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  Map map_;
  Map::iterator it_;
};

}  // namespace

Result<std::string> MemoryKvStore::Get(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return Err(Code::kNotFound);
  return it->second;
}

Status MemoryKvStore::Write(const WriteBatch& batch, bool /*sync*/) {
  std::lock_guard lock(mu_);
  return WriteLocked(batch);
}

Status MemoryKvStore::WriteLocked(const WriteBatch& batch) {
  for (const auto& [key, value] : batch.expects()) {
    auto it = map_.find(key);
    const bool holds = value ? it != map_.end() && it->second == *value : it == map_.end();
    if (!holds) return Status(Code::kConflict, "an expected value does not hold");
  }
  for (const auto& [begin, end] : batch.ranges()) {
    map_.erase(map_.lower_bound(begin), map_.lower_bound(end));
  }
  for (const auto& op : batch.ops()) {
    switch (op.kind) {
      case WriteBatch::Kind::kDelete:
        map_.erase(op.key);
        break;
      case WriteBatch::Kind::kPut:
        map_.insert_or_assign(op.key, op.value);
        break;
      case WriteBatch::Kind::kAdd: {
        int64_t sum = *DecodeCounter(op.value);
        if (auto it = map_.find(op.key); it != map_.end()) {
          auto base = DecodeCounter(it->second);
          if (base) sum += *base;  // a non-counter value is replaced, as RocksDB's operator does
        }
        map_.insert_or_assign(op.key, EncodeCounter(sum));
        break;
      }
    }
  }
  return Status::Ok();
}

std::unique_ptr<Iterator> MemoryKvStore::NewIterator(std::string_view lower,
                                                     std::string_view upper) {
  std::lock_guard lock(mu_);
  auto end = upper.empty() ? map_.end() : map_.lower_bound(upper);
  auto begin = map_.lower_bound(lower);
  if (!upper.empty() && lower >= upper) begin = end;
  return std::make_unique<MemoryIterator>(Map(begin, end));
}

namespace {

// A read-only view of a snapshot's copy of the map. Reads fail once the snapshot is dropped.
class MemorySnapshotView final : public SnapshotViewStore {
 public:
  explicit MemorySnapshotView(std::shared_ptr<MemoryKvStore::Snapshot> snap)
      : snap_(std::move(snap)) {}
  Result<std::string> Get(std::string_view key) override {
    CAIRN_RETURN_IF_ERROR(Alive());
    auto it = snap_->map.find(key);
    if (it == snap_->map.end()) return Err(Code::kNotFound);
    return it->second;
  }
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override {
    const Map& m = snap_->map;
    auto end = upper.empty() ? m.end() : m.lower_bound(upper);
    auto begin = m.lower_bound(lower);
    if (!upper.empty() && lower >= upper) begin = end;
    if (!Alive().ok()) begin = end;  // a dropped snapshot shows nothing
    return std::make_unique<MemoryIterator>(Map(begin, end));
  }

 private:
  Status Alive() const { return snap_->dropped ? Dropped() : Status::Ok(); }
  std::shared_ptr<MemoryKvStore::Snapshot> snap_;
};

}  // namespace

Status MemoryKvStore::CreateSnapshot(uint64_t id, const WriteBatch& then) {
  std::lock_guard lock(mu_);
  if (snaps_.count(id)) return Status(Code::kExists, "snapshot " + std::to_string(id) + " exists");
  if (id <= last_snapshot_) {
    return Status(Code::kInvalid, "snapshot ids must increase");
  }
  auto snap = std::make_shared<Snapshot>();
  snap->map = map_;
  CAIRN_RETURN_IF_ERROR(WriteLocked(then));
  snaps_[id] = std::move(snap);
  last_snapshot_ = id;
  return Status::Ok();
}

Result<std::unique_ptr<KvStore>> MemoryKvStore::OpenSnapshot(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = snaps_.find(id);
  if (it == snaps_.end()) return Err(Code::kNotFound, "no snapshot " + std::to_string(id));
  return std::unique_ptr<KvStore>(std::make_unique<MemorySnapshotView>(it->second));
}

Status MemoryKvStore::DropSnapshot(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = snaps_.find(id);
  if (it == snaps_.end()) return Status::Ok();
  it->second->dropped = true;
  snaps_.erase(it);
  return Status::Ok();
}

Result<std::vector<uint64_t>> MemoryKvStore::ListSnapshots() {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, snap] : snaps_) ids.push_back(id);
  return ids;
}

Result<bool> MemoryKvStore::SnapshotsHold(std::string_view key) {
  std::lock_guard lock(mu_);
  for (const auto& [id, snap] : snaps_) {
    if (snap->map.find(key) != snap->map.end()) return true;
  }
  return false;
}

}  // namespace cairn::kv
