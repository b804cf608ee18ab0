// FileSystem::Txn: the node's meta::Txn (meta/txn.h), one namespace change under construction. It
// locks every inode it touches (exclusive, held until it ends), works on copies of their records,
// and on Commit writes them with the rest of its batch atomically, then installs the copies in the
// cache. On failure nothing in memory changed.
//
// Lock order (no global namespace lock): a Txn waits for an inode lock only when that inode's
// number is above every number it holds, so waits always go up and no cycle can form. An inode
// below what it holds is only tried; when that fails the Txn is marked conflicted, the operation
// gives everything back and runs again (FileSystem::RunOp) with every inode it learned of
// locked up front in ascending order, the way ext4 and XFS order inode locks by number. The
// caller re-reads what it read before (entries under a locked directory) on each run.
//
// What a directory's lock protects: its record and its entries. Entries of a directory are read
// and changed only with that directory locked, so what a Txn reads under it stays true until it
// commits. A directory's parent pointer changes only in a rename across directories, which also
// holds FileSystem::rename_mu_ (fs/rename.cc).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <thread>

#include "common/metrics.h"
#include "fs/file_system.h"
#include "fs/snapshot_view.h"
#include "meta/txn.h"

namespace cairn::fs {

class FileSystem::Txn final : public meta::Txn {
 public:
  explicit Txn(FileSystem* fs) : fs_(fs) {}
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  // Locks these inodes in ascending order, waiting for each; those gone meanwhile read as
  // kNotFound later.
  void Prelock(const std::set<uint64_t>& inos) {
    for (uint64_t ino : inos) {
      auto state = fs_->cache_->Get(ino);
      if (!state) {
        gone_.insert(ino);
        continue;
      }
      Lock(ino, std::move(*state), /*wait=*/true);
    }
  }

  // A mutable copy of ino's record (loaded and locked on first use). kBusy with conflicted()
  // set when taking the lock now could deadlock: the caller must give up and run again.
  Result<meta::Inode*> Get(uint64_t ino) override {
    if (auto it = entries_.find(ino); it != entries_.end()) {
      if (it->second.gone) return Err(Code::kNotFound, "inode was removed");
      return &it->second.copy;
    }
    if (gone_.count(ino)) return Err(Code::kNotFound, "inode was removed");
    wanted_.insert(ino);
    CAIRN_ASSIGN_OR_RETURN(auto state, fs_->cache_->Get(ino));
    if (!Lock(ino, std::move(state), /*wait=*/ino > max_locked_)) {
      conflicted_ = true;
      return Err(Code::kBusy, "inode lock taken out of order; the operation runs again");
    }
    Entry& e = entries_.at(ino);
    if (e.gone) return Err(Code::kNotFound, "inode was removed");
    return &e.copy;
  }
  // Adds a new inode, to be inserted in the cache with one kernel reference (the entry the
  // operation's reply hands out).
  meta::Inode* Add(meta::Inode inode) override {
    Entry e;
    e.is_new = true;
    e.lookups = 1;
    e.copy = std::move(inode);
    return &entries_.emplace(e.copy.ino, std::move(e)).first->second.copy;
  }
  // The entry parent/name as this change sees it: what it staged itself, else what the node
  // knows (FileSystem::DentryFor, at the record of parent this Txn locked). REQUIRES: parent
  // locked by this Txn (Get(parent) succeeded).
  Result<uint64_t> NewIno() override {
    CAIRN_ASSIGN_OR_RETURN(uint64_t ino, fs_->inos_->Next());
    if (ino > kMaxLiveIno) return Err(Code::kNoSpace, "out of inode numbers");
    return ino;
  }
  Result<meta::Dentry> GetDentry(uint64_t parent, std::string_view name) override {
    if (auto it = dentries_.find(std::pair(parent, std::string(name))); it != dentries_.end()) {
      if (!it->second) return Err(Code::kNotFound);
      return *it->second;
    }
    auto e = entries_.find(parent);
    return fs_->DentryFor(parent, e == entries_.end() ? nullptr : &e->second.state->inode, name);
  }
  // The encoded record of ino as this Txn found it (empty unless Get(ino) locked it).
  std::string Original(uint64_t ino) const {
    auto e = entries_.find(ino);
    if (e == entries_.end() || e->second.gone || e->second.is_new) return {};
    return meta::EncodeInode(e->second.state->inode);
  }
  // Stages a new or changed entry, or its removal.
  void PutDentry(uint64_t parent, std::string_view name, const meta::Dentry& d) override {
    batch_.Put(meta::DentryKey(parent, name), meta::EncodeDentry(d));
    dentries_.insert_or_assign(std::pair(parent, std::string(name)), d);
  }
  void DeleteDentry(uint64_t parent, std::string_view name) override {
    batch_.Delete(meta::DentryKey(parent, name));
    dentries_.insert_or_assign(std::pair(parent, std::string(name)), std::nullopt);
  }
  // Cluster: a directory cached at the record this Txn locked answers without a scan.
  Result<bool> DirEmpty(uint64_t dir) override {
    if (fs_->dir_cache_) {
      CAIRN_ASSIGN_OR_RETURN(meta::Inode * locked, Get(dir));
      (void)locked;
      if (auto empty = fs_->dir_cache_->EmptyAt(dir, Original(dir))) return *empty;
    }
    return fs_->meta_->DirIsEmpty(dir);
  }
  void MarkOrphan(uint64_t ino) override {
    batch_.Put(meta::OrphanKey(ino), meta::OrphanValue(fs_->super_.cluster.node));
  }
  kv::WriteBatch& batch() override { return batch_; }
  // The operation must run again (a lock taken out of order): its result means nothing.
  bool conflicted() const { return conflicted_; }
  const std::set<uint64_t>& wanted() const { return wanted_; }

  // Counts an inode that the caller writes into batch() itself (not through Get or Add).
  void Account(const meta::Inode* before, const meta::Inode* after) {
    accounting_.Add(before, after);
  }

  // kConflict (cluster): a record this change read was changed by another node; the cache now
  // holds the stored records, and RunOp runs the operation again.
  Status Commit(bool sync = false) {
    Accounting acc = accounting_;
    for (auto& [ino, e] : entries_) {
      if (e.gone) continue;
      // Cluster mode: every record this change read must still be as read when it commits
      // (another node's change of the same inode, or of a directory's entries, which always
      // rewrites the directory's record, makes it rerun from the stored records).
      if (fs_->cluster_ && !e.is_new) {
        batch_.Expect(meta::InodeKey(ino), meta::EncodeInode(e.state->inode));
      }
      batch_.Put(meta::InodeKey(ino), meta::EncodeInode(e.copy));
      acc.Add(e.is_new ? nullptr : &e.state->inode, &e.copy);
    }
    fs_->Stage(acc, &batch_);
    // Taken before the commit: a notice of another node's later change is heard after it.
    const int64_t now = MonotonicNs();
    Status st = fs_->kv_->Write(batch_, sync);
    if (st.code() == Code::kConflict) {
      for (auto& [ino, e] : entries_) {
        if (e.gone || e.is_new) continue;
        fs_->Reload(*e.state);
        // Its entries may have changed with it: read them again too.
        if (fs_->dir_cache_ && e.copy.IsDir()) fs_->dir_cache_->Drop(ino);
      }
    }
    CAIRN_RETURN_IF_ERROR(st);
    fs_->Apply(acc);
    if (fs_->dir_cache_) NoteDentries();
    for (auto& [ino, e] : entries_) {
      if (e.gone) continue;
      if (e.is_new) {
        fs_->cache_->Insert(e.copy, e.lookups);
      } else {
        e.state->inode = e.copy;
        e.state->read_at = now;
      }
    }
    return Status::Ok();
  }

  ~Txn() {
    std::vector<std::pair<uint64_t, std::shared_ptr<InodeState>>> held;
    for (auto& [ino, e] : entries_) {
      if (e.state) held.emplace_back(ino, e.state);
    }
    entries_.clear();
    // With the locks released: reclaim what lost its last link, drop what nothing refers to.
    for (auto& [ino, s] : held) fs_->MaybeReclaim(ino, s);
  }

 private:
  struct Entry {
    std::shared_ptr<InodeState> state;
    std::unique_lock<std::shared_mutex> lock;
    meta::Inode copy;
    bool is_new = false;
    bool gone = false;  // locked, but reclaimed before we got it
    uint64_t lookups = 0;
  };

  // Cluster mode: the node's directory cache follows the entries this change committed.
  void NoteDentries() {
    for (const auto& [ino, e] : entries_) {
      if (e.is_new && e.copy.IsDir()) {
        fs_->dir_cache_->Created(ino, meta::EncodeInode(e.copy), MonotonicNs());
      }
    }
    std::map<uint64_t, std::vector<DirCache::Change>> per_dir;
    for (const auto& [key, d] : dentries_) per_dir[key.first].push_back({key.second, d});
    for (auto& [parent, changes] : per_dir) {
      auto e = entries_.find(parent);
      if (e == entries_.end() || e->second.gone || e->second.is_new) {
        fs_->dir_cache_->Drop(parent);
        continue;
      }
      fs_->dir_cache_->Commit(parent, meta::EncodeInode(e->second.state->inode),
                              meta::EncodeInode(e->second.copy), changes);
    }
  }

  // Takes ino's lock: waiting for it, or only trying. False when the try failed.
  bool Lock(uint64_t ino, std::shared_ptr<InodeState> state, bool wait) {
    Entry e;
    if (wait) {
      e.lock = std::unique_lock(state->lock);
    } else {
      e.lock = std::unique_lock(state->lock, std::try_to_lock);
      if (!e.lock.owns_lock()) return false;
    }
    e.gone = state->deleted;
    if (!e.gone) e.copy = state->inode;
    e.state = std::move(state);
    max_locked_ = std::max(max_locked_, ino);
    entries_.emplace(ino, std::move(e));
    return true;
  }

  FileSystem* fs_;
  std::map<uint64_t, Entry> entries_;
  std::set<uint64_t> gone_;    // prelocked inodes that no longer exist
  std::set<uint64_t> wanted_;  // every inode Get was asked for
  uint64_t max_locked_ = 0;
  bool conflicted_ = false;
  Accounting accounting_;
  kv::WriteBatch batch_;
  // Entries this change staged (nullopt: removed), by (parent, name).
  std::map<std::pair<uint64_t, std::string>, std::optional<meta::Dentry>> dentries_;
};

// One driver for every change: runs op until a run neither met a lock-order conflict nor
// (cluster) found at its commit that another node changed a record it read (kConflict); each
// run starts from the records as stored, with every inode an earlier run wanted locked up front.
// Gives up (kConflict) after kMaxConflictRuns such runs: only a record that does not read back
// as written could keep conflicting. op takes a Txn& (namespace changes), or nothing (changes
// that commit one inode under its own lock, CommitData).
template <typename Op>
auto FileSystem::RunOp(Op&& op) {
  static metrics::Counter& lock_retries = metrics::GetCounter("cairn_namespace_lock_retries_total");
  constexpr bool kTakesTxn = std::is_invocable_v<Op&, Txn&>;
  std::set<uint64_t> prelock;
  for (int stale_runs = 0;;) {
    {
      Txn txn(this);
      txn.Prelock(prelock);
      auto result = [&] {
        if constexpr (kTakesTxn) {
          return op(txn);
        } else {
          return op();
        }
      }();
      bool stale;
      if constexpr (std::is_same_v<decltype(result), Status>) {
        stale = result.code() == Code::kConflict;
      } else {
        stale = !result && result.error().code() == Code::kConflict;
      }
      if (txn.conflicted()) {
        lock_retries.Add();
      } else if (stale && ++stale_runs < kMaxConflictRuns) {
        ConflictRetried();
      } else {
        return result;
      }
      prelock.insert(txn.wanted().begin(), txn.wanted().end());
    }
    std::this_thread::yield();
  }
}

}  // namespace cairn::fs
