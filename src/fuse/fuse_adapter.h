// FuseMount: the libfuse3 low-level adapter. It maps each FUSE request to one FileSystem call and
// each Status to an errno (ToErrno), and runs the multi-threaded session loop. The only file in
// Cairn that sees FUSE types.
// Thread-safety: Run() blocks in the loop; Exit() may be called from any thread or signal handler
// context set up by libfuse.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fs/file_system.h"

struct fuse_session;

namespace cairn::fuse {

struct Context;

struct FuseOptions {
  bool allow_other = true;          // let every user use the mount (the kernel checks permissions)
  double entry_timeout_s = 3600.0;  // Cairn is the only writer, so kernel caches stay valid
  double attr_timeout_s = 3600.0;
  // Keep a file's cached pages across opens. Off in cluster mode, where other nodes write: each
  // open then reads what was closed before it (close-to-open).
  bool keep_cache = true;
  bool writeback_cache = true;  // the kernel gathers small writes (off in cluster mode)
  unsigned max_threads = 8;     // more only adds context switches on a small node
  // The kernel's read-ahead window for the mount (its bdi's read_ahead_kb); 0 keeps the kernel's
  // default of 128 KiB, which caps one sequential stream at about half the disk (BENCHMARKS.md,
  // "Checkpoints").
  uint64_t read_ahead_bytes = 16 << 20;
  bool debug = false;
};

// Sets the read-ahead window of the FUSE mount whose root has device number `dev` (st_dev of the
// mount point, once the mount answers). Only root may; the error says why it could not.
Status SetReadAhead(dev_t dev, uint64_t bytes);

// Requests served since the mount started, per type, and the time Cairn spent on them.
struct RequestStat {
  const char* name;
  uint64_t count;
  uint64_t nanos;
};
std::vector<RequestStat> RequestStats();

class FuseMount : public fs::KernelCache {
 public:
  // Creates the session and mounts it; the mount is ready when this returns.
  static Result<std::unique_ptr<FuseMount>> Mount(fs::FileSystem* fs, const std::string& mountpoint,
                                                  const FuseOptions& options);
  ~FuseMount() override;
  // fs::KernelCache: drops what the kernel caches of an entry or an inode (attributes, pages).
  void InvalidateEntry(uint64_t parent, std::string_view name) override;
  void InvalidateInode(uint64_t ino) override;
  void InvalidateAttributes(uint64_t ino) override;
  // Serves requests until the file system is unmounted or a termination signal arrives.
  Status Run();

 private:
  FuseMount() = default;
  struct fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_ = false;
  std::unique_ptr<Context> ctx_;
};

}  // namespace cairn::fuse
