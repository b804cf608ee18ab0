// The mount table as Cairn needs it: which Cairn mounts exist, what is mounted at a path, whether
// a mount's daemon is gone, and how to detach a mount. Read from /proc/self/mountinfo.
// Thread-safety: the functions share no state; DetachMount forks (call it from a single-threaded
// process, the CLI or the daemon's parent before it starts threads).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::server {

// The type of a Cairn mount in the mount table ("fuse." + FUSE subtype).
inline constexpr const char* kCairnFsType = "fuse.cairn";

struct MountEntry {
  std::string mountpoint;  // absolute, as the kernel shows it
  std::string fstype;      // "fuse.cairn", "tmpfs", ...
  std::string source;      // for a Cairn mount: its data directory
};

// Every mount, in the order of the table (a later entry at the same point stacks on an earlier).
std::vector<MountEntry> ListMounts();
// The mounts at exactly `mountpoint` (absolute, as AbsolutePath gives it), bottom first.
std::vector<MountEntry> MountsAt(const std::string& mountpoint);
// `path` made absolute with every symlink resolved except in its last component, which is kept
// as named: that works on a mount point whose daemon is gone, where realpath fails (ENOTCONN).
Result<std::string> AbsolutePath(const std::string& path);
// Whether a call on a FUSE mount that failed with errno e says its daemon is gone: ENOTCONN once
// the connection ended; ECONNABORTED for a request the kernel caught in flight as it ended it
// (with FUSE-over-io_uring that ending can trail the daemon's exit: the ring, torn down after
// the process, holds the connection until then).
bool DaemonGone(int e);
// True when statfs(path) fails so (DaemonGone): a FUSE mount whose daemon died.
bool IsDeadMount(const std::string& path);
// Detaches the mount at `mountpoint` lazily (umount2 MNT_DETACH as root, `fusermount3 -u -z`
// otherwise): it goes from the namespace now, and from the kernel once nothing uses it.
Status DetachMount(const std::string& mountpoint);
// Detaches, from the top down, every dead Cairn mount stacked at mountpoint (of data_dir only,
// when it is not empty); stops at the first entry that is not one. Returns how many went.
Result<int> DetachDeadMounts(const std::string& mountpoint, const std::string& data_dir = {});
// Waits until no process holds data_dir's lock (a daemon flushing after its unmount); kBusy after
// timeout. on_wait runs once, when the wait begins.
Status WaitForDataDir(const std::string& data_dir, std::chrono::milliseconds timeout,
                      const std::function<void()>& on_wait = nullptr);
// Runs a program (argv[0] looked up in PATH) and waits; its exit code, or -1.
int RunProgram(const std::vector<std::string>& argv);

}  // namespace cairn::server
