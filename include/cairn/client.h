// libcairn: the native read path of a Cairn mount, for training jobs (docs/ARCHITECTURE.md,
// "Native client").
//
//   auto client = cairn::Client::Open("/mnt/train");           // the mount's daemon
//   auto data = (*client)->OpenDataset("imagenet/train");      // one call: every file's layout
//   std::vector<char> buf((*data)->file(i).size);
//   auto n = (*data)->Read(i, 0, buf.size(), buf.data());      // straight from the segments
//
// The daemon answers the metadata (one request per dataset, over its Unix socket); file bytes are
// read by this process from the segment files themselves, each 64 KiB chunk checked against the
// CRC32C in the file's extents, so nothing unchecked is returned: a damaged chunk is an error
// (EIO), never data. On a cluster the segments are objects of its RADOS pool, which the client
// reads with its own connection (the node's ceph.conf and keyring). Bytes the client cannot reach
// directly (segments only in the object store, imported objects not cached on this node) are read
// through the mount, where the daemon fetches and checks them.
//
// A dataset is the tree as it was when opened: a file changed after that may read as it was then
// (a segment never changes once written, and every chunk is checked) or fail with an error; read
// datasets that do not change while a job reads them. Thread-safety: a Client and its Datasets
// may be used from many threads at once. Open them in the process that reads them (after a
// DataLoader forks its workers): they hold descriptors and threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cairn {

// An error: an errno value and a message that says what failed.
struct Error {
  int code = 0;
  std::string message;
};

template <typename T>
using Expected = std::expected<T, Error>;

struct FileInfo {
  std::string path;  // relative to the dataset's directory
  uint64_t ino = 0;
  uint64_t size = 0;
};

// One read of a batch: `length` bytes of file `file` (an index into the dataset) at `offset`,
// into `buffer`.
struct ReadRequest {
  size_t file = 0;
  uint64_t offset = 0;
  size_t length = 0;
  char* buffer = nullptr;
};

// How one read of a batch ended: the bytes read (short at the end of the file), or an error.
struct ReadResult {
  size_t request = 0;  // its index in the batch
  Expected<size_t> bytes;
};

// A file read whole by an Epoch.
struct Sample {
  size_t file = 0;   // its index in the dataset
  std::string data;  // its bytes
};

struct PrefetchOptions {
  // Bytes read ahead and not yet taken by Next(), at most (a file larger than this is still
  // read, alone).
  uint64_t budget_bytes = 256ull << 20;
  int threads = 8;  // reads in flight
  // Have the daemon bring segments that were evicted to the object store back to NVMe, and
  // cache imported objects there, in the order, ahead of the readers (who read such files through
  // the mount until then; a reader whose data is being fetched waits for it).
  bool hydrate = true;
};

// Order-aware prefetch: the files of an epoch in exactly the order given (the sampler's), read
// ahead by background threads as far as the budget allows, handed out in that order.
class Epoch {
 public:
  virtual ~Epoch() = default;  // stops the readers (reads in flight finish first)
  // The next file in the order, read whole; nullopt after the last. Blocks until it is read. A
  // failed read is returned in its place; the epoch goes on after it.
  virtual Expected<std::optional<Sample>> Next() = 0;
  // Files handed out so far, and the most bytes that were held read ahead at once.
  virtual size_t position() const = 0;
  virtual uint64_t peak_bytes() const = 0;
};

struct DatasetStats {
  // Read by this process: from segments (files, pool objects) or cached imported objects.
  uint64_t direct_bytes = 0;
  uint64_t inline_bytes = 0;       // returned from the index (small files kept in metadata)
  uint64_t mount_bytes = 0;        // read through the mount
  uint64_t hydrated_segments = 0;  // brought back from the object store for an epoch
  uint64_t hydrated_objects = 0;   // imported objects the daemon cached on NVMe for an epoch
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Regular files under the directory, directory by directory (each directory's files in name
  // order, then its subdirectories).
  virtual size_t size() const = 0;
  virtual const FileInfo& file(size_t index) const = 0;
  // Where file bytes come from, in words: the data directory's segment files, a cluster's RADOS
  // pool, or the mount (with the reason this process cannot reach the segments itself).
  virtual std::string source() const = 0;
  // The index, as bytes that Client::OpenDataset(dir, index) turns back into this dataset in
  // another process of this host without asking the daemon (a DataLoader's workers: one tree
  // walk for all of them).
  virtual std::string Serialize() const = 0;
  // The index of a path relative to the dataset's directory, or ENOENT.
  virtual Expected<size_t> Find(const std::string& path) const = 0;
  // Reads up to length bytes at offset into buffer; returns the bytes read (0 at or past the end).
  virtual Expected<size_t> Read(size_t file, uint64_t offset, size_t length,
                                char* buffer) const = 0;
  // Runs every request, up to `parallel` at once, and calls done once for each as it completes
  // (in completion order, from the worker threads, never two at once). Returns when all are done.
  virtual void ReadBatch(std::span<const ReadRequest> requests,
                         const std::function<void(const ReadResult&)>& done,
                         int parallel = 16) const = 0;
  virtual DatasetStats stats() const = 0;
  // Starts reading `order` (indices into this dataset, repeats allowed) ahead. The dataset must
  // outlive the epoch. EINVAL for an index out of range.
  virtual Expected<std::unique_ptr<Epoch>> BeginEpoch(
      std::vector<size_t> order, const PrefetchOptions& options = {}) const = 0;
};

class Client {
 public:
  virtual ~Client() = default;
  // mountpoint: where a Cairn file system is mounted (its daemon must be running).
  static Expected<std::unique_ptr<Client>> Open(const std::string& mountpoint);
  // dir: a directory relative to the mount point ("" for the whole mount; ".snapshots/NAME/..."
  // for a snapshot's tree). Files written through this host's mount before the call are in it
  // (the mount is synced first).
  virtual Expected<std::unique_ptr<Dataset>> OpenDataset(const std::string& dir) = 0;
  // The same dataset from Dataset::Serialize's bytes (taken from this mount: the tree as it was
  // then; dir as it was opened). EINVAL for bytes that are not an index, or of another dir.
  virtual Expected<std::unique_ptr<Dataset>> OpenDataset(const std::string& dir,
                                                         const std::string& index) = 0;
};

}  // namespace cairn
