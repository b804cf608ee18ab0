// FuseMount: a FUSE mount of a FileSystem. libfuse mounts and unmounts it (mount(2) as root,
// fusermount3 otherwise) and turns termination signals into the end of the session; Cairn's own
// transport (fuse/transport.h: FUSE-over-io_uring or /dev/fuse, as FuseOptions::transport says)
// serves its requests through fuse/ops.h.
// Thread-safety: Run() blocks while requests are served; the KernelCache methods may be called
// from any thread at any time.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fs/file_system.h"
#include "fuse/options.h"
#include "fuse/request_stats.h"

struct fuse_session;

namespace cairn::fuse {

class Transport;
class Ops;

// Sets the read-ahead window of the FUSE mount whose root has device number `dev` (st_dev of the
// mount point, once the mount answers). Only root may; the error says why it could not.
Status SetReadAhead(dev_t dev, uint64_t bytes);

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
  fs::FileSystem* fs_ = nullptr;
  FuseOptions options_;
  // Made in Run and kept until destroyed, so that late invalidations find them.
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Transport> transport_;
  std::atomic<Transport*> transport_ready_{nullptr};
};

}  // namespace cairn::fuse
