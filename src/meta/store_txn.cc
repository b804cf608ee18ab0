#include "meta/store_txn.h"

namespace cairn::meta {

Result<Inode*> StoreTxn::Get(uint64_t ino) {
  if (auto it = records_.find(ino); it != records_.end()) return &it->second.copy;
  CAIRN_ASSIGN_OR_RETURN(std::string value, kv_->Get(InodeKey(ino)));
  CAIRN_ASSIGN_OR_RETURN(Inode inode, DecodeInode(ino, value));
  Record& r = records_[ino];
  r.original = std::move(value);
  r.copy = std::move(inode);
  return &r.copy;
}

Inode* StoreTxn::Add(Inode inode) {
  Record& r = records_[inode.ino];
  r.original.reset();
  r.copy = std::move(inode);
  return &r.copy;
}

Result<Dentry> StoreTxn::GetDentry(uint64_t parent, std::string_view name) {
  if (auto it = dentries_.find(std::pair(parent, std::string(name))); it != dentries_.end()) {
    if (!it->second) return Err(Code::kNotFound);
    return *it->second;
  }
  return meta_.GetDentry(parent, name);
}

void StoreTxn::PutDentry(uint64_t parent, std::string_view name, const Dentry& d) {
  batch_.Put(DentryKey(parent, name), EncodeDentry(d));
  dentries_.insert_or_assign(std::pair(parent, std::string(name)), d);
}

void StoreTxn::DeleteDentry(uint64_t parent, std::string_view name) {
  batch_.Delete(DentryKey(parent, name));
  dentries_.insert_or_assign(std::pair(parent, std::string(name)), std::nullopt);
}

Result<bool> StoreTxn::DirEmpty(uint64_t dir) {
  // What this change staged under dir first, then the store past the names it removed.
  bool staged_removals = false;
  for (auto it = dentries_.lower_bound(std::pair(dir, std::string()));
       it != dentries_.end() && it->first.first == dir; ++it) {
    if (it->second) return false;
    staged_removals = true;
  }
  if (!staged_removals) return meta_.DirIsEmpty(dir);
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(auto page, meta_.ListDir(dir, after, 256));
    for (const auto& [name, d] : page) {
      if (!dentries_.count(std::pair(dir, name))) return false;
    }
    if (page.size() < 256) return true;
    after = page.back().first;
  }
}

void StoreTxn::MarkOrphan(uint64_t ino) { batch_.Put(OrphanKey(ino), OrphanValue(node_)); }

Status StoreTxn::Commit(bool sync) {
  for (const auto& [ino, r] : records_) {
    batch_.Expect(InodeKey(ino), r.original);
    batch_.Put(InodeKey(ino), EncodeInode(r.copy));
  }
  return kv_->Write(batch_, sync);
}

}  // namespace cairn::meta
