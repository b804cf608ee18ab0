// DevTransport: /dev/fuse read and written by Cairn itself, without libfuse's request loop. The
// mount stays libfuse's (fuse_session_mount: mount(2) as root, fusermount3 otherwise); this serves
// the descriptor it opened, the way the kernel documents the protocol: one INIT exchange, then
// each worker thread reads requests from a descriptor of its own (FUSE_DEV_IOC_CLONE) and writes
// each reply back on it. Notifications (cache invalidations) go out on the mount's descriptor.
// Thread-safety: Run blocks; the Notify methods may be called from any thread at any time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

#include "common/status.h"
#include "fuse/ops.h"

namespace cairn::fuse {

class DevTransport {
 public:
  // fd: the mounted session's /dev/fuse descriptor (not owned). exited: whether the session was
  // told to end (a termination signal).
  DevTransport(int fd, Ops* ops, unsigned workers, std::function<bool()> exited)
      : fd_(fd), ops_(ops), workers_(workers == 0 ? 1 : workers), exited_(std::move(exited)) {}

  // Answers INIT, then serves requests until the file system is unmounted or exited() says so.
  // kNotSupported when the kernel's protocol is too old; kIo when /dev/fuse fails.
  Status Run();

  // Drops what the kernel caches of an inode (its attributes; its pages in [off, off+len), none
  // for a negative off, all for len 0) or of a name. 0, or the errno the kernel answered
  // (ENOENT: it had nothing cached). Nothing before INIT completes.
  int NotifyInvalInode(uint64_t ino, int64_t off, int64_t len);
  int NotifyInvalEntry(uint64_t parent, std::string_view name);

 private:
  Status Init();
  void Worker(int fd);

  const int fd_;
  Ops* const ops_;
  const unsigned workers_;
  const std::function<bool()> exited_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace cairn::fuse
