// Namespace changes other than rename: create, mkdir, mknod, symlink, link, unlink, rmdir, and
// directory listings. Each change is one Txn: one atomic batch, with the inodes it touches locked.
//
// A change is an operation of meta/ops.h that stages it into a Txn and returns; RunChange commits
// it, and RunOp runs it again when the Txn met a lock-order conflict or (cluster) another node's
// change. What stays here is the node's part: snapshot names, kernel references, caches. There is
// no grouping of one directory's changes here: the kernel holds a directory's lock exclusively for
// create, mkdir, unlink and rename in it, so they never arrive together. Concurrent changes of
// different directories share commits in the metadata store (kv/pg_kv_store.h).
#include <dirent.h>
#include <fmt/format.h>

#include "fs/file_system.h"
#include "fs/txn.h"
#include "kv/pg_kv_store.h"
#include "meta/ops.h"

namespace cairn::fs {

Result<struct stat> FileSystem::RunChange(const ChangeBody& body) {
  return RunOp([&](Txn & txn) -> Result<struct stat> {
    CAIRN_ASSIGN_OR_RETURN(struct stat st, body(txn));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
    return st;
  });
}

Result<meta::Dentry> FileSystem::DentryFor(uint64_t parent, const meta::Inode* locked,
                                           std::string_view name) {
  if (!dir_cache_) return meta_->GetDentry(parent, name);
  const std::string record = locked ? meta::EncodeInode(*locked) : std::string();
  for (int round = 0; round < 2; ++round) {
    meta::Dentry d;
    const DirCache::Answer a = locked ? dir_cache_->LookupAt(parent, record, name, &d)
                                      : dir_cache_->Lookup(parent, name, &d);
    if (a == DirCache::Answer::kPresent) return d;
    if (a == DirCache::Answer::kAbsent) return Err(Code::kNotFound);
    // Not cached: the whole directory, once (one scan instead of a round trip per name).
    if (round > 0 || dir_cache_->Has(parent) || !dir_cache_->Loadable(parent) ||
        !LoadDir(parent).ok()) {
      break;
    }
  }
  return meta_->GetDentry(parent, name);
}

Status FileSystem::LoadDir(uint64_t parent) {
  dir_cache_->Begin(parent);
  const int64_t started = MonotonicNs();
  std::optional<std::vector<std::pair<std::string, meta::Dentry>>> entries;
  std::string record;
  Status st = [&]() -> Status {
    // The record first, then the entries: the entries are then at least as new as the record,
    // and a change that expects the record cannot commit against older ones (dir_cache.h).
    CAIRN_ASSIGN_OR_RETURN(record, kv_->Get(meta::InodeKey(parent)));
    CAIRN_ASSIGN_OR_RETURN(meta::Inode dir, meta::DecodeInode(parent, record));
    if (!dir.IsDir()) return Status(Code::kNotDir, "");
    entries.emplace();
    std::string after;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(auto page, meta_->ListDir(parent, after, 4096));
      for (auto& e : page) entries->push_back(std::move(e));
      if (entries->size() > dir_cache_->max_dir()) {
        entries.reset();  // too large to keep: its lookups read the store
        dir_cache_->TooLarge(parent);
        return Status::Ok();
      }
      if (page.size() < 4096) break;
      after = entries->back().first;
    }
    return Status::Ok();
  }();
  if (!st.ok()) entries.reset();
  std::vector<std::pair<std::string, meta::Dentry>> loaded;
  if (entries) loaded = *entries;
  dir_cache_->End(parent, record, std::move(entries), started);
  CAIRN_RETURN_IF_ERROR(st);
  PrimeInodes(loaded, started);
  return Status::Ok();
}

void FileSystem::PrimeDir(uint64_t parent) {
  const int64_t started = MonotonicNs();
  auto entries = dir_cache_->List(parent);
  if (entries) PrimeInodes(*entries, started);
}

void FileSystem::PrimeInodes(const std::vector<std::pair<std::string, meta::Dentry>>& entries,
                             int64_t started) {
  // The entries' records, in one round trip, for the stat or open that usually follows a lookup;
  // not kept when another node's inode change was heard since `started` (its notice may have
  // found no state to mark).
  std::vector<std::string> keys;
  for (const auto& [name, d] : entries) {
    if (!cache_->Peek(d.ino)) keys.push_back(meta::InodeKey(d.ino));
  }
  if (keys.empty()) return;
  auto values = kv_->MultiGet(keys);
  if (!values || inode_noticed_at_.load() >= started) return;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*values)[i]) continue;
    auto inode = meta::DecodeInode(meta::KeyU64(keys[i]), *(*values)[i]);
    if (inode) cache_->Prime(*inode, started);
  }
}

bool FileSystem::Listening() const { return pg_ && options_.notify && pg_->Listening(); }

double FileSystem::KernelTimeout(double configured, uint64_t ino) const {
  if (!cluster_ || (IsSnapIno(ino) && ino != kSnapDirIno)) return configured;
  return Listening() ? std::max(options_.lease_s, options_.notice_timeout_s)
                     : std::min(configured, options_.lease_s);
}

Result<std::shared_ptr<InodeState>> FileSystem::Dir(uint64_t ino) {
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
  std::shared_lock lock(state->lock);
  if (state->deleted) return Err(Code::kNotFound);
  if (!state->inode.IsDir()) return Err(Code::kNotDir);
  return state;
}

Result<struct stat> FileSystem::MakeNode(const Context& ctx, uint64_t parent, std::string_view name,
                                         uint32_t mode, uint64_t rdev,
                                         std::string_view symlink_target) {
  if (IsSnapIno(parent)) return Err(Code::kReadOnly, "snapshots are read-only");
  if (parent == meta::kRootIno && name == kSnapDirName) return Err(Code::kExists);
  const meta::NewNode node{mode, ctx.uid, ctx.gid, rdev, symlink_target};
  return RunChange([&](Txn & txn) -> Result<struct stat> {
    CAIRN_ASSIGN_OR_RETURN(meta::Inode * inode, meta::MakeNode(txn, parent, name, node));
    return ToStat(*inode);
  });
}

Result<struct stat> FileSystem::Mknod(const Context& ctx, uint64_t parent, std::string_view name,
                                      uint32_t mode, uint64_t rdev) {
  uint32_t type = mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
      type != S_IFBLK) {
    return Err(Code::kInvalid, "unsupported file type");
  }
  return MakeNode(ctx, parent, name, type | (mode & 07777), rdev, {});
}

Result<struct stat> FileSystem::Mkdir(const Context& ctx, uint64_t parent, std::string_view name,
                                      uint32_t mode) {
  return MakeNode(ctx, parent, name, S_IFDIR | (mode & 07777), 0, {});
}

Result<struct stat> FileSystem::Symlink(const Context& ctx, uint64_t parent, std::string_view name,
                                        std::string_view target) {
  if (target.empty()) return Err(Code::kNotFound, "empty symlink target");
  if (target.size() > 4095) return Err(Code::kNameTooLong, "symlink target too long");
  return MakeNode(ctx, parent, name, S_IFLNK | 0777, 0, target);
}

Result<struct stat> FileSystem::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  if (IsSnapIno(ino) || IsSnapIno(new_parent))
    return Err(Code::kReadOnly, "snapshots are read-only");
  if (new_parent == meta::kRootIno && new_name == kSnapDirName) return Err(Code::kExists);
  CAIRN_ASSIGN_OR_RETURN(struct stat st, RunChange([&](Txn & txn) -> Result<struct stat> {
                           CAIRN_ASSIGN_OR_RETURN(meta::Inode * inode,
                                                  meta::Link(txn, ino, new_parent, new_name));
                           return ToStat(*inode);
                         }));
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino, 1));  // the kernel's new reference
  (void)state;
  return st;
}

Status FileSystem::Unlink(uint64_t parent, std::string_view name) {
  return RemoveEntry(parent, name, /*dir=*/false);
}
Status FileSystem::Rmdir(uint64_t parent, std::string_view name) {
  return RemoveEntry(parent, name, /*dir=*/true);
}

Status FileSystem::RemoveEntry(uint64_t parent, std::string_view name, bool dir) {
  if (IsSnapIno(parent) || (parent == meta::kRootIno && name == kSnapDirName)) {
    return Status(Code::kReadOnly, "snapshots are read-only");
  }
  auto removed = RunChange([&](Txn & txn) -> Result<struct stat> {
    CAIRN_RETURN_IF_ERROR(meta::RemoveEntry(txn, parent, name, dir));
    return (struct stat){};
  });
  return removed ? Status::Ok() : removed.error();
}

Result<std::string> FileSystem::Readlink(uint64_t ino) {
  if (IsSnapIno(ino)) return SnapReadlink(ino);
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
  std::shared_lock lock(state->lock);
  if (state->deleted) return Err(Code::kNotFound);
  if (!state->inode.IsSymlink()) return Err(Code::kInvalid, "not a symlink");
  return state->inode.inline_data;
}

Result<uint64_t> FileSystem::OpenDir(uint64_t ino) {
  if (IsSnapIno(ino)) return SnapOpenDir(ino);
  CAIRN_ASSIGN_OR_RETURN(auto dir, Dir(ino));  // a directory, still there
  (void)dir;
  // The entries are read at the first READDIR: a kernel that serves the listing from its own
  // cache (FOPEN_CACHE_DIR) opens and releases the directory without reading it.
  std::lock_guard lock(dirs_mu_);
  const uint64_t handle = next_dir_handle_++;
  dirs_[handle] = OpenDirState{ino, nullptr};
  return handle;
}

Result<std::shared_ptr<std::vector<DirEntry>>> FileSystem::ListEntries(uint64_t ino) {
  CAIRN_ASSIGN_OR_RETURN(auto state, Dir(ino));
  uint64_t parent;
  {
    std::shared_lock lock(state->lock);
    parent = state->inode.parent;
  }
  auto entries = std::make_shared<std::vector<DirEntry>>();
  entries->push_back({".", ino, DT_DIR});
  entries->push_back({"..", parent, DT_DIR});
  if (dir_cache_) {
    // Cluster: the node's copy of the directory, loaded whole when it has none.
    auto cached = dir_cache_->List(ino);
    if (!cached && dir_cache_->Loadable(ino) && LoadDir(ino).ok()) cached = dir_cache_->List(ino);
    if (cached) {
      // readdirplus hands out every entry's attributes: their records in one round trip.
      PrimeInodes(*cached, MonotonicNs());
      for (auto& [name, d] : *cached) entries->push_back({std::move(name), d.ino, d.type});
      return entries;
    }
  }
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(auto page, meta_->ListDir(ino, after, 4096));
    for (auto& [name, d] : page) entries->push_back({name, d.ino, d.type});
    if (page.size() < 4096) break;
    after = page.back().first;
  }
  return entries;
}

Result<std::shared_ptr<const std::vector<DirEntry>>> FileSystem::DirHandle(uint64_t handle) {
  uint64_t ino;
  {
    std::lock_guard lock(dirs_mu_);
    auto it = dirs_.find(handle);
    if (it == dirs_.end()) return Err(Code::kBadHandle);
    if (it->second.entries) return it->second.entries;
    ino = it->second.ino;
  }
  // The kernel sends one READDIR of a handle at a time; should two meet, the first listing stays.
  CAIRN_ASSIGN_OR_RETURN(auto listed, ListEntries(ino));
  std::lock_guard lock(dirs_mu_);
  auto it = dirs_.find(handle);
  if (it == dirs_.end()) return Err(Code::kBadHandle);
  if (!it->second.entries) it->second.entries = std::move(listed);
  return it->second.entries;
}

void FileSystem::ReleaseDir(uint64_t handle) {
  std::lock_guard lock(dirs_mu_);
  dirs_.erase(handle);
}

Status FileSystem::FsyncDir(uint64_t /*ino*/) {
  // Every namespace change is already in the KV store's log; syncing it makes them all durable,
  // together with the data they point at.
  CAIRN_RETURN_IF_ERROR(segments_->SyncActive());
  return kv_->SyncWal();
}

Result<bool> FileSystem::IsAncestor(uint64_t maybe_ancestor, uint64_t ino) {
  // Walks ".." pointers up from ino. REQUIRES: rename_mu_ held (parents cannot change meanwhile)
  // and no inode lock held.
  for (int depth = 0; depth < 100000; ++depth) {
    if (ino == maybe_ancestor) return true;
    if (ino == meta::kRootIno) return false;
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    uint64_t parent;
    {
      std::shared_lock lock(state->lock);
      parent = state->inode.parent;
    }
    cache_->TryEvict(ino, &state);
    ino = parent;
  }
  return Err(Code::kCorruption, "directory parent chain does not reach the root");
}

}  // namespace cairn::fs
