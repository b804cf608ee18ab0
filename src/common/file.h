// The small OS file layer that the data layer and the daemon reach disk through: an owned file
// descriptor with positional I/O that returns Status instead of setting errno, and helpers for
// directories. Thread-safety: a File may be used by many threads at once (pread/pwrite only).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn {

// Status for the current errno, with what was being done ("pread segment 12").
Status ErrnoStatus(std::string_view what);
// The same for an error number given (libraries that return -errno).
Status ErrnoStatus(int err, std::string_view what);

class File {
 public:
  File() = default;
  explicit File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File();
  File(File&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  static Result<File> Open(const std::string& path, int flags, mode_t mode = 0644);

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Reads exactly n bytes at offset unless end of file comes first; returns bytes read.
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const;
  // Writes all n bytes at offset.
  Status WriteAt(uint64_t offset, const char* buf, size_t n) const;
  // Writes the buffers (total bytes in all) back to back at offset.
  Status WriteVAt(uint64_t offset, const struct iovec* iov, int count, size_t total) const;
  Status DataSync() const;
  // Drops the file's clean pages from the page cache (posix_fadvise DONTNEED); dirty ones stay.
  // Advice only: nothing to report.
  void DropCleanPages() const;
  Result<uint64_t> Size() const;

 private:
  int fd_ = -1;
  std::string path_;
};

// fsync of a directory, so that entries created in it survive a crash.
Status SyncDir(const std::string& path);
Result<std::string> ReadWholeFile(const std::string& path);
// Writes path via a temporary file, fsync and rename: the file is either old or new after a crash.
Status WriteFileAtomic(const std::string& path, std::string_view contents);
// Removes a directory tree (or a file); missing is not an error.
Status RemoveTree(const std::string& path);

}  // namespace cairn
