#include "server/daemon.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/file.h"
#include "common/logging.h"
#include "common/units.h"
#include "server/admin_server.h"

namespace cairn::server {
namespace {

nlohmann::json StatsJson(fs::FileSystem& fs) {
  fs::Stats s = fs.GetStats();
  nlohmann::json requests = nlohmann::json::object();
  for (const auto& r : fuse::RequestStats()) {
    requests[r.name] = {{"count", r.count}, {"seconds", static_cast<double>(r.nanos) / 1e9}};
  }
  return {
      {"fuse_requests", requests},
      {"ok", true},
      {"data_dir", fs.data_dir()},
      {"uuid", fs.superblock().uuid},
      {"pid", ::getpid()},
      {"files", s.files},
      {"directories", s.directories},
      {"symlinks", s.symlinks},
      {"bytes", s.bytes},
      {"inline_files", s.inline_files},
      {"inline_bytes", s.inline_bytes},
      {"segments", s.segments},
      {"space_used", s.space_used},
      {"space_live", s.space_live},
      {"compacted_segments", s.compacted_segments},
      {"cached_inodes", s.cached_inodes},
      {"inline_max", fs.superblock().inline_max},
      {"segment_size", fs.superblock().segment_size},
  };
}

nlohmann::json Handle(fs::FileSystem& fs, const nlohmann::json& req) {
  const std::string op = req.value("op", "");
  if (op == "status") return StatsJson(fs);
  if (op == "compact") {
    double threshold = req.value("threshold", 0.5);
    auto n = fs.CompactOnce(threshold);
    if (!n) return {{"ok", false}, {"error", n.error().ToString()}};
    return {{"ok", true}, {"compacted", *n}};
  }
  if (op == "ping") return {{"ok", true}, {"pid", ::getpid()}};
  return {{"ok", false}, {"error", "unknown op '" + op + "'"}};
}

// Tells the waiting parent how the mount went, then closes the pipe.
void Report(int fd, const std::string& message) {
  if (fd < 0) return;
  (void)!::write(fd, message.data(), message.size());
  ::close(fd);
}

int Serve(const DaemonOptions& o, int ready_fd) {
  auto fs = fs::FileSystem::Open(o.data_dir, o.mount);
  if (!fs) {
    Report(ready_fd, "cannot open " + o.data_dir + ": " + fs.error().ToString());
    return 1;
  }
  std::string pid_path = o.data_dir + "/cairn.pid";
  (void)WriteFileAtomic(pid_path, fmt::format("{}\n", ::getpid()));
  AdminServer admin(AdminSocketPath(o.data_dir),
                    [&](const nlohmann::json& r) { return Handle(**fs, r); });
  Status st = admin.Start();
  if (!st.ok()) {
    Report(ready_fd, "cannot start the admin socket: " + st.ToString());
    return 1;
  }
  auto mount = fuse::FuseMount::Mount(fs->get(), o.mountpoint, o.fuse);
  if (!mount) {
    Report(ready_fd, mount.error().ToString());
    return 1;
  }
  log::Info("mounted {} at {} (pid {})", o.data_dir, o.mountpoint, ::getpid());
  Report(ready_fd, "OK");
  st = (*mount)->Run();
  if (!st.ok()) log::Error("{}", st.ToString());
  mount->reset();  // unmount (if still mounted) before flushing
  admin.Stop();
  st = (*fs)->Shutdown();
  if (!st.ok()) {
    log::Error("flush at unmount failed: {}", st.ToString());
    return 1;
  }
  fs->reset();
  ::unlink(pid_path.c_str());
  log::Info("unmounted {}; everything is durable", o.data_dir);
  return 0;
}

}  // namespace

int RunMount(const DaemonOptions& options) {
  DaemonOptions o = options;
  char real[PATH_MAX];
  if (!::realpath(o.data_dir.c_str(), real)) {
    fmt::print(stderr, "cairn mount: {}: {}\n", o.data_dir, std::strerror(errno));
    return 1;
  }
  o.data_dir = real;
  auto super = fs::ReadSuperblock(o.data_dir);
  if (!super) {
    fmt::print(stderr, "cairn mount: {}\n", super.error().message());
    return 1;
  }
  struct stat st;
  if (::stat(o.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fmt::print(stderr, "cairn mount: mount point {} is not an existing directory\n", o.mountpoint);
    return 1;
  }
  if (!::realpath(o.mountpoint.c_str(), real)) {
    fmt::print(stderr, "cairn mount: {}: {}\n", o.mountpoint, std::strerror(errno));
    return 1;
  }
  o.mountpoint = real;

  if (o.foreground) return Serve(o, -1);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    fmt::print(stderr, "cairn mount: pipe: {}\n", std::strerror(errno));
    return 1;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    fmt::print(stderr, "cairn mount: fork: {}\n", std::strerror(errno));
    return 1;
  }
  if (pid > 0) {
    ::close(pipe_fds[1]);
    std::string message;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0)
      message.append(buf, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    if (message == "OK") return 0;
    if (message.empty())
      message = "the daemon exited before the mount was ready; see " + o.data_dir + "/cairn.log";
    fmt::print(stderr, "cairn mount: {}\n", message);
    return 1;
  }
  // The daemon: its own session, no terminal, logs to DATA_DIR/cairn.log.
  ::close(pipe_fds[0]);
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  std::string log_path = o.data_dir + "/cairn.log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  if (log_fd >= 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
  }
  if (::chdir("/") != 0) {
    Report(pipe_fds[1], "chdir /");
    ::_exit(1);
  }
  int code = Serve(o, pipe_fds[1]);
  ::_exit(code);
}

}  // namespace cairn::server
