// Transport: FUSE requests served by Cairn itself, without libfuse's request loop. The mount stays
// libfuse's (fuse_session_mount: mount(2) as root, fusermount3 otherwise); this serves the
// descriptor it opened, the way the kernel documents the protocol. INIT comes on /dev/fuse; then
// either
//   - /dev/fuse: each worker thread reads requests from a descriptor of its own
//     (FUSE_DEV_IOC_CLONE) and writes each reply back on it; or
//   - FUSE-over-io_uring (protocol 7.42, when asked for and the kernel offers it): one queue per
//     possible CPU, the kernel handing each request to the queue of the CPU its caller runs on;
//     each queue is served by threads pinned to that CPU, each with a ring of its own and one
//     entry (a header and a payload buffer) registered on the queue, so that an entry is free
//     exactly while its thread waits. One reply and the fetch of the next request are one
//     submission. FORGET, INTERRUPT and requests sent before every queue was registered still
//     come on /dev/fuse, which one worker keeps reading.
// Notifications (cache invalidations) go out on the mount's descriptor either way.
// Thread-safety: Run blocks; the Notify methods may be called from any thread at any time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

#include "common/status.h"
#include "fuse/ops.h"

namespace cairn::fuse {

class Transport {
 public:
  // fd: the mounted session's /dev/fuse descriptor (not owned). workers: threads serving
  // requests (with the ring: at least one per queue). exited: whether the session was told to
  // end (a termination signal).
  Transport(int fd, Ops* ops, unsigned workers, bool uring, std::function<bool()> exited)
      : fd_(fd),
        ops_(ops),
        workers_(workers == 0 ? 1 : workers),
        want_uring_(uring),
        exited_(std::move(exited)) {}

  // What serves requests once Run has answered INIT: "dev" or "io_uring".
  const char* name() const { return uring_.load() ? "io_uring" : "dev"; }

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
  // One thread of queue q: a ring with one entry registered on it. Returns when stopped.
  void RingWorker(unsigned q, bool pin);
  // Runs the threads until the session ends.
  void Serve(std::vector<std::function<void()>> bodies);

  const int fd_;
  Ops* const ops_;
  const unsigned workers_;
  const bool want_uring_;
  std::atomic<bool> uring_{false};
  const std::function<bool()> exited_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace cairn::fuse
