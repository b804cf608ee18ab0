// RadosSegments: segments as objects of a Ceph RADOS pool, shared by the nodes of a cluster
// (docs/ARCHITECTURE.md, "Cluster"). The object of segment id is "<fs uuid>.<id, 16 hex>.seg".
// Ceph replicates (or erasure codes) each object across the OSDs on the nodes' NVMe; a write
// returns once every replica of the acting set has it on disk, so DataSync has nothing left to
// do. Every operation gives up after RadosOptions::op_timeout_s (kUnavailable), so a cluster
// that cannot serve never hangs a file system call forever.
//
// librados's C API (librados-dev, Debian 12); thread-safe.
#pragma once

#include <memory>
#include <string>

#include "data/segment_file.h"

namespace cairn::data {

struct RadosOptions {
  std::string conf;            // ceph.conf of the cluster (monitors, keyring)
  std::string user = "admin";  // the Ceph client name without "client."
  std::string pool = "cairn";
  double op_timeout_s = 30;  // monitor and OSD operations
};

class RadosSegments final : public SegmentBackend {
 public:
  // Connects and opens the pool; kUnavailable when the cluster cannot be reached in time,
  // kNotFound for a pool that does not exist, kPermission for refused credentials.
  static Result<std::unique_ptr<RadosSegments>> Open(const RadosOptions& options,
                                                     std::string fs_uuid);
  ~RadosSegments() override;

  Result<std::shared_ptr<SegmentFile>> Create(uint64_t id) override;
  Result<std::shared_ptr<SegmentFile>> Open(uint64_t id, bool writable) override;
  Status Remove(uint64_t id) override;
  bool local() const override { return false; }
  std::string Name(uint64_t id) const override;
  // The whole pool as Ceph counts it (every file system and node using it).
  struct PoolUsage {
    uint64_t bytes = 0, objects = 0;
  };
  Result<PoolUsage> Usage() const;
  // Logical bytes the pool can hold (what it stores plus what it can still take, after
  // replication or erasure coding and Ceph's full ratio), from the monitors' "df".
  Result<uint64_t> Capacity() const;

  struct Handle;

 private:
  RadosSegments(std::shared_ptr<Handle> handle, std::string fs_uuid, std::string pool);
  std::string Oid(uint64_t id) const;
  std::shared_ptr<Handle> handle_;
  const std::string uuid_;
  const std::string pool_;
};

}  // namespace cairn::data
