#include "kv/read_cache.h"

#include <algorithm>

namespace cairn::kv {
namespace {

// An iterator over rows read once (a kept range).
class RowsIterator final : public Iterator {
 public:
  explicit RowsIterator(std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> r)
      : rows_(std::move(r)), pos_(rows_->size()) {}
  void Seek(std::string_view key) override {
    pos_ = std::lower_bound(rows_->begin(), rows_->end(), key,
                            [](const auto& row, std::string_view k) { return row.first < k; }) -
           rows_->begin();
  }
  void SeekForPrev(std::string_view key) override {
    const size_t up =
        std::upper_bound(rows_->begin(), rows_->end(), key,
                         [](std::string_view k, const auto& row) { return k < row.first; }) -
        rows_->begin();
    pos_ = up == 0 ? rows_->size() : up - 1;
  }
  bool Valid() const override { return pos_ < rows_->size(); }
  void Next() override { ++pos_; }
  void Prev() override { pos_ = pos_ == 0 ? rows_->size() : pos_ - 1; }
  std::string_view key() const override { return (*rows_)[pos_].first; }
  std::string_view value() const override { return (*rows_)[pos_].second; }
  Status status() const override { return Status::Ok(); }

 private:
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> rows_;
  size_t pos_;
};

std::string RangeId(std::string_view lower, std::string_view upper) {
  std::string id = "r";
  const uint32_t n = static_cast<uint32_t>(lower.size());
  id.append(reinterpret_cast<const char*>(&n), sizeof(n));
  id.append(lower);
  id.append(upper);
  return id;
}

}  // namespace

void ReadCache::PutLocked(std::string id, Entry e) {
  if (entries_.count(id)) return;
  order_.push_back(id);
  e.age = std::prev(order_.end());
  bytes_ += e.bytes;
  entries_.emplace(std::move(id), std::move(e));
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto it = entries_.find(order_.front());
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    order_.pop_front();
  }
}

Result<std::string> ReadCache::Get(std::string_view key) {
  std::string id = "g" + std::string(key);
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      if (!it->second.value) return Err(Code::kNotFound);
      return *it->second.value;
    }
  }
  auto v = base_->Get(key);
  if (!v && v.error().code() != Code::kNotFound) return v;  // errors are not kept
  Entry e;
  if (v) e.value = *v;
  e.bytes = id.size() + (v ? v->size() : 0) + 64;
  std::lock_guard lock(mu_);
  PutLocked(std::move(id), std::move(e));
  return v;
}

std::unique_ptr<Iterator> ReadCache::NewIterator(std::string_view lower, std::string_view upper) {
  std::string id = RangeId(lower, upper);
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end() && it->second.rows) {
      return std::make_unique<RowsIterator>(it->second.rows);
    }
  }
  // Read the range whole when it is small; else read through.
  auto rows = std::make_shared<Rows>();
  size_t bytes = id.size() + 64;
  {
    auto it = base_->NewIterator(lower, upper);
    for (it->Seek(lower); it->Valid(); it->Next()) {
      if (rows->size() == kMaxRangeRows) return base_->NewIterator(lower, upper);
      rows->emplace_back(std::string(it->key()), std::string(it->value()));
      bytes += rows->back().first.size() + rows->back().second.size() + 32;
    }
    if (!it->status().ok()) return it;  // reports the error
  }
  Entry e;
  e.rows = rows;
  e.bytes = bytes;
  std::lock_guard lock(mu_);
  PutLocked(std::move(id), std::move(e));
  return std::make_unique<RowsIterator>(std::move(rows));
}

}  // namespace cairn::kv
