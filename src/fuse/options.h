// What a FUSE mount of Cairn asks of the kernel: caches, threads, read-ahead, and how requests
// arrive (the transport).
#pragma once

#include <cstdint>

namespace cairn::fuse {

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
  bool debug = false;  // log every request and its answer
  // How requests arrive (fuse/transport.h): FUSE-over-io_uring where the kernel offers it, else
  // /dev/fuse; or /dev/fuse always.
  enum class Transport { kDev, kUring };
  Transport transport = Transport::kUring;
};

}  // namespace cairn::fuse
