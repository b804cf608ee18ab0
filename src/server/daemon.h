// The mount daemon: opens the file system, serves the admin socket and runs the FUSE loop until
// the file system is unmounted, then flushes everything and exits.
#pragma once

#include <string>

#include "fs/options.h"
#include "fuse/fuse_adapter.h"

namespace cairn::server {

struct DaemonOptions {
  std::string data_dir;
  std::string mountpoint;
  bool foreground = false;  // stay attached, log to stderr
  fs::MountOptions mount;
  fuse::FuseOptions fuse;
};

// Runs `cairn mount`. Without foreground, returns in the parent once the mount is ready (0) or
// failed (1, message printed); the daemon continues in a child process. Returns the exit code.
int RunMount(const DaemonOptions& options);

}  // namespace cairn::server
