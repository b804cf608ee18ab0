// The settings of a file system: fixed at format time (Superblock, stored in DATA_DIR/cairn.json)
// and chosen at mount time (MountOptions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::fs {

constexpr uint32_t kFormatVersion = 1;
constexpr const char* kSuperblockFile = "cairn.json";

struct Superblock {
  uint32_t format_version = kFormatVersion;
  std::string uuid;
  uint64_t inline_max = 4096;           // files up to this size live in the inode record
  uint64_t segment_size = 64ull << 20;  // bytes per segment file
  int64_t created = 0;                  // seconds since the epoch
};

struct FormatOptions {
  uint64_t inline_max = 4096;
  uint64_t segment_size = 64ull << 20;
};

struct MountOptions {
  // Compaction: run every this many seconds (0 = never in the background) on sealed segments
  // whose live fraction is below the threshold.
  double compaction_interval_s = 10.0;
  double compaction_threshold = 0.5;
};

// Creates a file system in data_dir, which must be empty or absent.
Status Format(const std::string& data_dir, const FormatOptions& options);
Result<Superblock> ReadSuperblock(const std::string& data_dir);
// Takes DATA_DIR/lock (flock, exclusive, non-blocking): one process at a time opens a file
// system. Returns the fd that holds the lock; kBusy when another process holds it.
Result<int> LockDataDir(const std::string& data_dir);

// Offline check: metadata consistency and every extent's checksum. Problems are appended to
// `problems` (human-readable). Returns an error only when the check could not run.
struct FsckReport {
  std::vector<std::string> problems;  // inconsistencies and corrupt data: exit non-zero
  std::vector<std::string> notes;     // harmless leftovers of a crash (reclaimed at mount)
  uint64_t inodes = 0, dentries = 0, extents = 0, bytes_verified = 0, segments = 0;
};
Result<FsckReport> Fsck(const std::string& data_dir);

}  // namespace cairn::fs
