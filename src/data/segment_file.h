// Where segment bytes live: a SegmentBackend creates, opens and removes the segment of an id; a
// SegmentFile is one segment's bytes with positional reads and writes. Two backends:
// - LocalSegments: files DATA_DIR/segments/<id>.seg on the node's NVMe (single node);
// - RadosSegments (data/rados_segments.h): objects in a Ceph RADOS pool that every node of a
//   cluster reads, replicated or erasure coded by Ceph (cluster mode).
// The SegmentStore above them does the packing, checksums and states; it never sees which.
//
// Thread-safety: all methods may be called from many threads at once.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/file.h"
#include "common/status.h"

namespace cairn::data {

class SegmentFile {
 public:
  virtual ~SegmentFile() = default;
  // Reads up to n bytes at offset; fewer only at the end of the segment.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const = 0;
  // Writes the buffers (total bytes) back to back at offset.
  virtual Status WriteVAt(uint64_t offset, const struct iovec* iov, int count,
                          size_t total) const = 0;
  // Makes every write that returned durable.
  virtual Status DataSync() const = 0;
  virtual Result<uint64_t> Size() const = 0;
  // Lets the host drop the pages it caches of what was written and synced (a local file's page
  // cache); nothing elsewhere.
  virtual void DropCleanPages() const {}
  // A local file's descriptor for zero-copy uploads, or -1 (not a local file).
  virtual int fd() const { return -1; }
};

class SegmentBackend {
 public:
  virtual ~SegmentBackend() = default;
  // A new, empty segment; kExists when one of that id exists.
  virtual Result<std::shared_ptr<SegmentFile>> Create(uint64_t id) = 0;
  // kNotFound when there is none.
  virtual Result<std::shared_ptr<SegmentFile>> Open(uint64_t id, bool writable) = 0;
  // Removing a segment that is not there is not an error.
  virtual Status Remove(uint64_t id) = 0;
  // Segment files are local files (tiering, hydration and pushes read them by path).
  virtual bool local() const = 0;
  // How a log line names the segment: a path or an object.
  virtual std::string Name(uint64_t id) const = 0;
};

// A local file as a SegmentFile.
class LocalSegmentFile final : public SegmentFile {
 public:
  explicit LocalSegmentFile(File file) : file_(std::move(file)) {}
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    return file_.ReadAt(offset, buf, n);
  }
  Status WriteVAt(uint64_t offset, const struct iovec* iov, int count,
                  size_t total) const override {
    return file_.WriteVAt(offset, iov, count, total);
  }
  Status DataSync() const override { return file_.DataSync(); }
  void DropCleanPages() const override { file_.DropCleanPages(); }
  Result<uint64_t> Size() const override { return file_.Size(); }
  int fd() const override { return file_.fd(); }

 private:
  File file_;
};

// DATA_DIR/segments/<id>.seg.
class LocalSegments final : public SegmentBackend {
 public:
  explicit LocalSegments(std::string data_dir) : dir_(std::move(data_dir)) {}
  Result<std::shared_ptr<SegmentFile>> Create(uint64_t id) override;
  Result<std::shared_ptr<SegmentFile>> Open(uint64_t id, bool writable) override;
  Status Remove(uint64_t id) override;
  bool local() const override { return true; }
  std::string Name(uint64_t id) const override;

 private:
  const std::string dir_;
};

}  // namespace cairn::data
