#include "kv/memory_kv_store.h"

namespace cairn::kv {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

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

}  // namespace cairn::kv
