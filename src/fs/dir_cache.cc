#include "fs/dir_cache.h"

#include "fs/inode_cache.h"

namespace cairn::fs {

bool DirCache::FreshLocked(const Dir& d, int64_t now_ns) const {
  return now_ns - d.loaded_ns < lease_ns_ || listening_();
}

DirCache::Answer DirCache::AnswerLocked(const Dir& d, std::string_view name, meta::Dentry* out) {
  if (d.stale.count(name)) {
    ++stats_.misses;
    return Answer::kUnknown;
  }
  ++stats_.hits;
  auto it = d.entries.find(name);
  if (it == d.entries.end()) return Answer::kAbsent;
  *out = it->second;
  return Answer::kPresent;
}

DirCache::Answer DirCache::Lookup(uint64_t parent, std::string_view name, meta::Dentry* out) {
  std::lock_guard lock(mu_);
  auto it = dirs_.find(parent);
  if (it == dirs_.end() || !FreshLocked(it->second, MonotonicNs())) {
    ++stats_.misses;
    return Answer::kUnknown;
  }
  return AnswerLocked(it->second, name, out);
}

DirCache::Answer DirCache::LookupAt(uint64_t parent, const std::string& record,
                                    std::string_view name, meta::Dentry* out) {
  std::lock_guard lock(mu_);
  auto it = dirs_.find(parent);
  if (it == dirs_.end() || it->second.record != record) {
    ++stats_.misses;
    return Answer::kUnknown;
  }
  return AnswerLocked(it->second, name, out);
}

std::optional<bool> DirCache::EmptyAt(uint64_t dir, const std::string& record) {
  std::lock_guard lock(mu_);
  auto it = dirs_.find(dir);
  if (record.empty() || it == dirs_.end() || it->second.record != record ||
      !it->second.stale.empty()) {
    return std::nullopt;
  }
  return it->second.entries.empty();
}

std::optional<std::vector<std::pair<std::string, meta::Dentry>>> DirCache::List(uint64_t parent) {
  std::lock_guard lock(mu_);
  auto it = dirs_.find(parent);
  if (it == dirs_.end() || !it->second.stale.empty() || !FreshLocked(it->second, MonotonicNs())) {
    return std::nullopt;
  }
  return std::vector<std::pair<std::string, meta::Dentry>>(it->second.entries.begin(),
                                                           it->second.entries.end());
}

bool DirCache::Has(uint64_t parent) {
  std::lock_guard lock(mu_);
  auto it = dirs_.find(parent);
  return it != dirs_.end() && FreshLocked(it->second, MonotonicNs());
}

bool DirCache::Loadable(uint64_t parent) {
  std::lock_guard lock(mu_);
  return !too_large_.count(parent);
}

void DirCache::TooLarge(uint64_t parent) {
  std::lock_guard lock(mu_);
  if (too_large_.size() < 65536) too_large_.insert(parent);
}

void DirCache::Begin(uint64_t parent) {
  std::lock_guard lock(mu_);
  ++loading_[parent].count;
}

void DirCache::End(uint64_t parent, const std::string& record,
                   std::optional<std::vector<std::pair<std::string, meta::Dentry>>> entries,
                   int64_t now_ns) {
  std::lock_guard lock(mu_);
  auto l = loading_.find(parent);
  const bool spoiled = l == loading_.end() || l->second.spoiled;
  if (l != loading_.end() && --l->second.count == 0) loading_.erase(l);
  if (spoiled || !entries || entries->size() > max_dir_) return;
  ++stats_.loads;
  if (auto old = dirs_.find(parent); old != dirs_.end()) EraseLocked(old);
  Dir& d = dirs_[parent];
  d.record = record;
  d.entries.insert(std::make_move_iterator(entries->begin()),
                   std::make_move_iterator(entries->end()));
  d.loaded_ns = now_ns;
  d.load_seq = ++seq_;
  entries_ += d.entries.size();
  TrimLocked();
}

void DirCache::Created(uint64_t dir, const std::string& record, int64_t now_ns) {
  std::lock_guard lock(mu_);
  if (auto it = dirs_.find(dir); it != dirs_.end()) EraseLocked(it);
  Dir& d = dirs_[dir];
  d.record = record;
  d.loaded_ns = now_ns;
  d.load_seq = ++seq_;
}

void DirCache::Commit(uint64_t parent, const std::string& before, const std::string& after,
                      const std::vector<Change>& changes) {
  std::lock_guard lock(mu_);
  if (auto l = loading_.find(parent); l != loading_.end()) l->second.spoiled = true;
  auto it = dirs_.find(parent);
  if (it == dirs_.end()) return;
  Dir& d = it->second;
  if (d.record != before) {
    // The cache was not at the record this change started from: it cannot follow it.
    EraseLocked(it);
    return;
  }
  d.record = after;
  for (const Change& c : changes) {
    d.stale.erase(c.name);
    if (c.entry) {
      entries_ += d.entries.insert_or_assign(c.name, *c.entry).second ? 1 : 0;
    } else {
      entries_ -= d.entries.erase(c.name);
    }
  }
  TrimLocked();
}

void DirCache::Changed(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto l = loading_.find(parent); l != loading_.end()) l->second.spoiled = true;
  auto it = dirs_.find(parent);
  if (it == dirs_.end()) return;
  Dir& d = it->second;
  if (d.stale.size() > 64) {
    EraseLocked(it);  // many names changed elsewhere: load it again when needed
    return;
  }
  d.stale.emplace(name);
  d.record.clear();  // no change of this node starts from the record it was loaded at any more
}

void DirCache::Drop(uint64_t parent) {
  std::lock_guard lock(mu_);
  if (auto l = loading_.find(parent); l != loading_.end()) l->second.spoiled = true;
  if (auto it = dirs_.find(parent); it != dirs_.end()) EraseLocked(it);
}

void DirCache::Clear() {
  std::lock_guard lock(mu_);
  for (auto& [parent, l] : loading_) l.spoiled = true;
  dirs_.clear();
  too_large_.clear();
  entries_ = 0;
}

DirCache::Stats DirCache::stats() {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.dirs = dirs_.size();
  s.entries = entries_;
  return s;
}

void DirCache::EraseLocked(std::unordered_map<uint64_t, Dir>::iterator it) {
  entries_ -= it->second.entries.size();
  dirs_.erase(it);
}

void DirCache::TrimLocked() {
  while (entries_ > max_entries_ && !dirs_.empty()) {
    auto oldest = dirs_.begin();
    for (auto it = dirs_.begin(); it != dirs_.end(); ++it) {
      if (it->second.load_seq < oldest->second.load_seq) oldest = it;
    }
    EraseLocked(oldest);
  }
}

}  // namespace cairn::fs
