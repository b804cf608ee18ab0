// DirCache: whole directories of a cluster's shared namespace, kept on the node, so that walking
// or stat'ing a directory costs one range scan of PostgreSQL instead of one round trip per name,
// and a lookup of a name that does not exist (every create asks first) costs none.
//
// A directory is loaded whole (FileSystem::LoadDir: its entries and its own inode record, read in
// one snapshot of the database) when a lookup misses it, and then answers every lookup in it:
// present, or absent. What keeps it true:
// - This node's changes: a commit that changes entries of a directory applies them here
//   (Commit), with the directory's record before and after, so the cache moves with it.
// - Other nodes' changes: their notices name each changed entry (Changed): that name is read
//   again at its next lookup. A load that overlaps a notice about its directory is not kept.
// - Notices missed (the listener's connection was lost): everything is dropped (Clear). Without
//   notices at all (cairn mount --no-notify) a directory is trusted for the lease only.
// - A change's own reads (a Txn holding the directory's lock) use a directory only when it was
//   loaded or last changed at the very record the Txn locked (LookupAt): the Txn's commit expects
//   that record, so the entries it read are the ones it commits against. Any other record (another
//   node changed the directory since) makes the Txn read the store.
//
// Memory: at most max_entries names in all; past that, whole directories are dropped (oldest
// loads first). Directories with more than max_dir entries are not cached (lookups read the
// store).
//
// Thread-safety: all methods are thread-safe (one mutex; every call is a map operation).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "meta/schema.h"

namespace cairn::fs {

class DirCache {
 public:
  enum class Answer { kUnknown, kPresent, kAbsent };
  struct Change {
    std::string name;
    std::optional<meta::Dentry> entry;  // nullopt: removed
  };

  // listening: whether notices are being heard now (called under the cache's mutex: it must
  // take no lock); without them a directory is trusted for lease_ns after its load.
  DirCache(std::function<bool()> listening, int64_t lease_ns, size_t max_entries = 4u << 20,
           size_t max_dir = 1u << 16)
      : listening_(std::move(listening)),
        lease_ns_(lease_ns),
        max_entries_(max_entries),
        max_dir_(max_dir) {}

  size_t max_dir() const { return max_dir_; }

  // What the node knows of parent/name (a FUSE lookup).
  Answer Lookup(uint64_t parent, std::string_view name, meta::Dentry* out);
  // The same for a change holding parent's lock, whose record of parent is `record` (encoded).
  Answer LookupAt(uint64_t parent, const std::string& record, std::string_view name,
                  meta::Dentry* out);
  // Whether a directory cached at `record` has no entries (nullopt: not known at that record).
  std::optional<bool> EmptyAt(uint64_t dir, const std::string& record);
  // The whole directory, in name order (opendir), or nullopt when it is not cached whole.
  std::optional<std::vector<std::pair<std::string, meta::Dentry>>> List(uint64_t parent);
  bool Has(uint64_t parent);
  // Whether loading parent is worth a try (not found too large to keep before).
  bool Loadable(uint64_t parent);
  // parent has more than max_dir entries: not loaded again (until Clear).
  void TooLarge(uint64_t parent);

  // A load: Begin(parent) before reading, then exactly one End(parent, ...) with what was read
  // (the directory's record and every entry, in one snapshot; nullopt when the read failed or the
  // directory is too large). Not kept when a notice about the directory came in between.
  void Begin(uint64_t parent);
  void End(uint64_t parent, const std::string& record,
           std::optional<std::vector<std::pair<std::string, meta::Dentry>>> entries,
           int64_t now_ns);
  // A directory this node just created (empty), at its record.
  void Created(uint64_t dir, const std::string& record, int64_t now_ns);
  // This node committed changes of parent's entries, moving its record from `before` to `after`.
  void Commit(uint64_t parent, const std::string& before, const std::string& after,
              const std::vector<Change>& changes);
  // Another node changed parent/name.
  void Changed(uint64_t parent, std::string_view name);
  // parent's record was found changed (a conflict): its entries are read again.
  void Drop(uint64_t parent);
  // Notices may have been missed: nothing is trusted any more.
  void Clear();

  struct Stats {
    uint64_t dirs = 0, entries = 0, hits = 0, misses = 0, loads = 0;
  };
  Stats stats();

 private:
  struct Dir {
    std::string record;  // the directory's inode record as of the load or the last commit
    std::map<std::string, meta::Dentry, std::less<>> entries;
    std::set<std::string, std::less<>> stale;  // changed by another node since
    int64_t loaded_ns = 0;
    uint64_t load_seq = 0;  // for eviction: older loads go first
  };
  bool FreshLocked(const Dir& d, int64_t now_ns) const;  // REQUIRES: mu_
  Answer AnswerLocked(const Dir& d, std::string_view name, meta::Dentry* out);
  void EraseLocked(std::unordered_map<uint64_t, Dir>::iterator it);  // REQUIRES: mu_
  void TrimLocked();                                                 // REQUIRES: mu_

  const std::function<bool()> listening_;
  const int64_t lease_ns_;
  const size_t max_entries_;
  const size_t max_dir_;
  std::mutex mu_;
  std::unordered_map<uint64_t, Dir> dirs_;  // GUARDED_BY(mu_)
  // Loads in flight per directory, and whether a notice (or a Clear) came during them.
  struct Loading {
    int count = 0;
    bool spoiled = false;
  };
  std::unordered_map<uint64_t, Loading> loading_;  // GUARDED_BY(mu_)
  std::set<uint64_t> too_large_;                   // GUARDED_BY(mu_)
  uint64_t seq_ = 0;                               // GUARDED_BY(mu_): loads kept so far
  size_t entries_ = 0;                             // GUARDED_BY(mu_)
  Stats stats_;                                    // GUARDED_BY(mu_)
};

}  // namespace cairn::fs
