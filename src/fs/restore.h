// cairn snap restore: a new file system from a snapshot pushed to an object store.
//
// Only the metadata is downloaded (each file checked against the manifest's SHA-256); every
// segment is checked to exist at its recorded size, then recorded as evicted, with the prefix of
// the file system that wrote it as its origin. The result mounts at once and reads fetch lazily.
// The new file system writes under its own prefix and lists the objects of others that it reads
// in refs/<uuid>.json, so that no delete elsewhere removes them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "fs/options.h"

namespace cairn::fs {

struct RestoreReport {
  std::string uuid;          // the new file system's
  std::string manifest_key;  // what it was restored from
  uint64_t files = 0, file_bytes = 0;
  uint64_t segments = 0, segment_bytes = 0;
  uint64_t metadata_bytes = 0;
  double seconds = 0;
};

using RestoreProgress = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;

// url: the object store the snapshot was pushed to (it also becomes the new file system's).
// name: "NAME" or "NAME@UUID". data_dir must be empty or absent; it is removed again on failure.
// cluster (enabled): the new file system is a cluster's, in that (empty) database and pool, and
// data_dir its node 1; every node reads the snapshot's segments from url.
Result<RestoreReport> RestoreSnapshot(const std::string& url, std::string_view name,
                                      const std::string& data_dir, const RestoreProgress& progress,
                                      const ClusterSettings& cluster = {});

}  // namespace cairn::fs
