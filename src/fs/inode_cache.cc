#include "fs/inode_cache.h"

#include <chrono>

namespace cairn::fs {

void InodeCache::AddRefsLocked(Shard& shard, uint64_t ino, uint64_t lookups, uint32_t opens) {
  if (lookups == 0 && opens == 0) return;
  Refs& r = shard.refs[ino];
  r.nlookup += lookups;
  r.opens += opens;
}

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<std::shared_ptr<InodeState>> InodeCache::Get(uint64_t ino, uint64_t lookups,
                                                    uint32_t opens) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.states.find(ino);
  if (it == shard.states.end()) {
    // Loading under the shard mutex keeps one state per inode; a load is one point lookup.
    CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta_->GetInode(ino));
    auto state = std::make_shared<InodeState>();
    state->inode = std::move(inode);
    TrimLocked(shard);
    it = shard.states.emplace(ino, std::move(state)).first;
  }
  AddRefsLocked(shard, ino, lookups, opens);
  return it->second;
}

std::shared_ptr<InodeState> InodeCache::Insert(const meta::Inode& inode, uint64_t lookups) {
  Shard& shard = ShardFor(inode.ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.states.find(inode.ino);
  if (it == shard.states.end()) {
    TrimLocked(shard);
    auto state = std::make_shared<InodeState>();
    state->inode = inode;
    it = shard.states.emplace(inode.ino, std::move(state)).first;
  }
  AddRefsLocked(shard, inode.ino, lookups, 0);
  return it->second;
}

void InodeCache::Prime(const meta::Inode& inode, int64_t read_at) {
  Shard& shard = ShardFor(inode.ino);
  std::lock_guard lock(shard.mu);
  if (shard.states.count(inode.ino)) return;
  TrimLocked(shard);
  auto state = std::make_shared<InodeState>();
  state->inode = inode;
  state->read_at = read_at;
  shard.states.emplace(inode.ino, std::move(state));
}

bool InodeCache::Drop(uint64_t ino, uint64_t lookups, uint32_t opens) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.refs.find(ino);
  if (it == shard.refs.end()) return false;
  Refs& r = it->second;
  r.nlookup = r.nlookup >= lookups ? r.nlookup - lookups : 0;
  r.opens = r.opens >= opens ? r.opens - opens : 0;
  if (r.nlookup > 0 || r.opens > 0) return false;
  shard.refs.erase(it);
  return true;
}

bool InodeCache::InUse(uint64_t ino) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  return shard.refs.contains(ino);
}

void InodeCache::TryEvict(uint64_t ino, const std::shared_ptr<InodeState>* held) {
  if (ino == meta::kRootIno) return;
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.states.find(ino);
  if (it == shard.states.end()) return;
  long refs = it->second.use_count() - (held && *held == it->second ? 1 : 0);
  auto r = shard.refs.find(ino);
  const bool open = r != shard.refs.end() && r->second.opens > 0;
  const bool known = r != shard.refs.end();
  // A state the kernel still knows stays while there is room: its attributes are asked again.
  if (refs == 1 && !open && Evictable(ino, *it->second) &&
      ((!known && !keep_unreferenced_) || shard.states.size() > max_states_per_shard_)) {
    shard.states.erase(it);
  }
}

void InodeCache::TrimLocked(Shard& shard) {
  if (shard.states.size() < max_states_per_shard_) return;
  // Clock-like: resume scanning buckets where the last trim stopped, drop what no one holds.
  size_t dropped = 0;
  const size_t buckets = shard.states.bucket_count();
  for (size_t scanned = 0; scanned < buckets && dropped < 8; ++scanned) {
    const size_t b = shard.next_victim++ % buckets;
    for (auto it = shard.states.begin(b); it != shard.states.end(b);) {
      const uint64_t ino = it->first;
      auto r = shard.refs.find(ino);
      const bool open = r != shard.refs.end() && r->second.opens > 0;
      if (it->second.use_count() == 1 && !open && Evictable(ino, *it->second)) {
        ++it;  // erasing invalidates only the erased element's iterator
        shard.states.erase(ino);
        ++dropped;
      } else {
        ++it;
      }
    }
  }
}

bool InodeCache::Evictable(uint64_t ino, const InodeState& state) {
  // Unheld (the caller checked), so reading the record races with no writer. An unlinked inode
  // stays until it is reclaimed: Peek must find every inode that still needs reclaiming.
  return ino != meta::kRootIno && (state.deleted || state.inode.nlink > 0);
}

std::shared_ptr<InodeState> InodeCache::Peek(uint64_t ino) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.states.find(ino);
  return it == shard.states.end() ? nullptr : it->second;
}

size_t InodeCache::size() {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.states.size();
  }
  return n;
}

size_t InodeCache::referenced() {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.refs.size();
  }
  return n;
}

}  // namespace cairn::fs
