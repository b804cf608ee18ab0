// Snapshot views: what MOUNTPOINT/.snapshots/<name>/ shows.
//
// A snapshot is a checkpoint of the metadata store in DATA_DIR/snapshots/<index>/ (RocksDB hard
// links its immutable files, so taking one copies nothing). A view opens the checkpoint read-only
// on first use and serves lookups, attributes, directory listings, xattrs and reads from it; file
// data comes from the same segments as the live tree, which pins keep alive.
//
// Inode numbers: live inodes are below 2^40 (kMaxLiveIno). A view's inode is
// kSnapBit | index << 40 | ino, and .snapshots itself is kSnapDirIno. Every change to either is
// refused with kReadOnly (EROFS); the FUSE mount also bind-mounts .snapshots read-only, so the
// kernel refuses writes before they reach its page cache.
#pragma once

#include <cstdint>
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

class SnapshotView {
 public:
  SnapshotView(meta::SnapshotRecord record, std::string dir)
      : record_(std::move(record)), dir_(std::move(dir)), pushed_to_(record_.pushed_to) {}
  // Closes the checkpoint; removes its directory when the snapshot was deleted.
  ~SnapshotView();

  const meta::SnapshotRecord& record() const { return record_; }
  const std::string& dir() const { return dir_; }
  // The checkpoint, opened read-only on first use.
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
  std::mutex mu_;
  std::unique_ptr<kv::KvStore> kv_;  // GUARDED_BY(mu_) until set
  std::unique_ptr<meta::MetaStore> meta_;
  bool deleted_ = false;
  std::vector<std::string> pushed_to_;  // GUARDED_BY(mu_)
};

// Removes a directory tree (a checkpoint); missing is not an error.
Status RemoveTree(const std::string& path);

}  // namespace cairn::fs
