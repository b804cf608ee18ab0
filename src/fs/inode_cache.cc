#include "fs/inode_cache.h"

namespace cairn::fs {

Result<std::shared_ptr<InodeState>> InodeCache::Get(uint64_t ino, uint64_t lookups,
                                                    uint32_t opens) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(ino);
  if (it == shard.map.end()) {
    // Loading under the shard mutex keeps one state per inode; a load is one point lookup.
    CAIRN_ASSIGN_OR_RETURN(meta::Inode inode, meta_->GetInode(ino));
    auto state = std::make_shared<InodeState>();
    state->inode = std::move(inode);
    it = shard.map.emplace(ino, std::move(state)).first;
  }
  it->second->nlookup += lookups;
  it->second->open_count += opens;
  return it->second;
}

std::shared_ptr<InodeState> InodeCache::Insert(const meta::Inode& inode, uint64_t lookups) {
  Shard& shard = ShardFor(inode.ino);
  std::lock_guard lock(shard.mu);
  auto& slot = shard.map[inode.ino];
  if (!slot) {
    slot = std::make_shared<InodeState>();
    slot->inode = inode;
  }
  slot->nlookup += lookups;
  return slot;
}

bool InodeCache::Drop(uint64_t ino, uint64_t lookups, uint32_t opens) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(ino);
  if (it == shard.map.end()) return false;
  auto& s = *it->second;
  s.nlookup = s.nlookup >= lookups ? s.nlookup - lookups : 0;
  s.open_count = s.open_count >= opens ? s.open_count - opens : 0;
  return s.nlookup == 0 && s.open_count == 0;
}

bool InodeCache::InUse(uint64_t ino) {
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(ino);
  return it != shard.map.end() && (it->second->nlookup > 0 || it->second->open_count > 0);
}

void InodeCache::TryEvict(uint64_t ino, const std::shared_ptr<InodeState>* held) {
  if (ino == meta::kRootIno) return;
  Shard& shard = ShardFor(ino);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(ino);
  if (it == shard.map.end()) return;
  long refs = it->second.use_count() - (held && *held == it->second ? 1 : 0);
  if (it->second->nlookup == 0 && it->second->open_count == 0 && refs == 1) shard.map.erase(it);
}

size_t InodeCache::size() {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.map.size();
  }
  return n;
}

}  // namespace cairn::fs
