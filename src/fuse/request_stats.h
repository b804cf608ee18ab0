// Per-request-type counts and the time Cairn spent on them (not the kernel's), for `cairn status`,
// whichever transport served them. Thread-safe (relaxed atomics).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace cairn::fuse {

enum Op : int {
  kLookup,
  kForget,
  kGetAttr,
  kSetAttr,
  kReadlink,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRename,
  kLink,
  kOpen,
  kCreate,
  kRead,
  kWrite,
  kRelease,
  kFsync,
  kOpenDir,
  kReadDir,
  kReadDirPlus,
  kReleaseDir,
  kFsyncDir,
  kStatFs,
  kSetXattr,
  kGetXattr,
  kListXattr,
  kRemoveXattr,
  kAccess,
  kFallocate,
  kOpCount
};
inline constexpr const char* kOpNames[kOpCount] = {
    "lookup",   "forget",   "getattr",     "setattr",     "readlink", "mknod",
    "mkdir",    "unlink",   "rmdir",       "symlink",     "rename",   "link",
    "open",     "create",   "read",        "write",       "release",  "fsync",
    "opendir",  "readdir",  "readdirplus", "releasedir",  "fsyncdir", "statfs",
    "setxattr", "getxattr", "listxattr",   "removexattr", "access",   "fallocate"};
struct OpCounter {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> nanos{0};
};
extern OpCounter g_ops[kOpCount];

class OpTimer {
 public:
  explicit OpTimer(Op op) : op_(op), start_(std::chrono::steady_clock::now()) {}
  ~OpTimer() {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    g_ops[op_].count.fetch_add(1, std::memory_order_relaxed);
    g_ops[op_].nanos.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }

 private:
  Op op_;
  std::chrono::steady_clock::time_point start_;
};

// Requests served since the mount started, per type, and the time Cairn spent on them.
struct RequestStat {
  const char* name;
  uint64_t count;
  uint64_t nanos;
};
std::vector<RequestStat> RequestStats();

// How the mount's requests arrive ("io_uring: 2 queues, 4 threads each"), set once the
// transport serves; empty before.
void SetTransportDescription(std::string description);
std::string TransportDescription();

}  // namespace cairn::fuse
