// Snapshot views: what MOUNTPOINT/.snapshots/<name>/ shows.
//
// A snapshot is a snapshot of the metadata store (kv::KvStore::CreateSnapshot: a RocksDB
// checkpoint in DATA_DIR/snapshots/<index>/ on a single node, an epoch of the shared tables in
// PostgreSQL on a cluster). A view opens it read-only on first use and serves lookups, attributes,
// directory listings, xattrs and reads from it; file data comes from the same segments as the
// live tree, which stay while a snapshot holds them.
//
// Inode numbers: live inodes are below 2^40 (kMaxLiveIno). A view's inode is
// kSnapBit | index << 40 | ino, and .snapshots itself is kSnapDirIno. Every change to either is
// refused with kReadOnly (EROFS); the FUSE mount also bind-mounts .snapshots read-only, so the
// kernel refuses writes before they reach its page cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kv/kv_store.h"
#include "meta/meta_store.h"
#include "meta/schema.h"

namespace cairn::fs {

constexpr uint64_t kSnapBit = 1ull << 63;
constexpr int kSnapShift = 40;
constexpr uint64_t kMaxLiveIno = (1ull << kSnapShift) - 1;
constexpr uint64_t kSnapDirIno = kSnapBit | meta::kRootIno;  // index 0
constexpr const char* kSnapDirName = ".snapshots";

inline bool IsSnapIno(uint64_t ino) { return (ino & kSnapBit) != 0; }
inline uint32_t SnapIndexOf(uint64_t ino) {
  return static_cast<uint32_t>((ino >> kSnapShift) & meta::kMaxSnapshotIndex);
}
inline uint64_t SnapLocalIno(uint64_t ino) { return ino & ((1ull << kSnapShift) - 1); }
inline uint64_t SnapIno(uint32_t index, uint64_t ino) {
  return kSnapBit | (static_cast<uint64_t>(index) << kSnapShift) | ino;
}

// Opens a snapshot's metadata read-only (kv::KvStore::OpenSnapshot).
using SnapshotOpener = std::function<Result<std::unique_ptr<kv::KvStore>>()>;

class SnapshotView {
 public:
  // dir: the snapshot as a RocksDB checkpoint (a single node's snapshot; on a cluster where a
  // push exports it, made on demand and removed with the view once the snapshot is deleted).
  // open: how to open its metadata.
  SnapshotView(meta::SnapshotRecord record, std::string dir, SnapshotOpener open)
      : record_(std::move(record)),
        dir_(std::move(dir)),
        open_(std::move(open)),
        pushed_to_(record_.pushed_to) {}
  // Closes the metadata; removes an export in dir when the snapshot was deleted.
  ~SnapshotView();

  const meta::SnapshotRecord& record() const { return record_; }
  const std::string& dir() const { return dir_; }
  // The metadata, opened read-only on first use.
  Result<meta::MetaStore*> Meta();
  void MarkDeleted() { deleted_ = true; }
  // The object stores it was pushed to (kept in its record; see FileSystem::PushSnapshot).
  std::vector<std::string> PushedTo() {
    std::lock_guard lock(mu_);
    return pushed_to_;
  }
  void SetPushedTo(std::vector<std::string> urls) {
    std::lock_guard lock(mu_);
    pushed_to_ = std::move(urls);
  }

 private:
  const meta::SnapshotRecord record_;
  const std::string dir_;
  const SnapshotOpener open_;
  std::mutex mu_;
  std::unique_ptr<kv::KvStore> kv_;  // GUARDED_BY(mu_) until set
  std::unique_ptr<meta::MetaStore> meta_;
  bool deleted_ = false;
  std::vector<std::string> pushed_to_;  // GUARDED_BY(mu_)
};

}  // namespace cairn::fs
