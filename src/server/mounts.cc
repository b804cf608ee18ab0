#include "server/mounts.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/file.h"
#include "fs/options.h"

namespace cairn::server {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

// Lines: "id parent major:minor root mountpoint options [optional fields] - fstype source
// superopts".
std::vector<MountEntry> ListMounts() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string fstype, source;
    rest >> fstype >> source;
    out.push_back({Unescape(mnt), fstype, Unescape(source)});
  }
  return out;
}

std::vector<MountEntry> MountsAt(const std::string& mountpoint) {
  std::vector<MountEntry> out;
  for (auto& m : ListMounts()) {
    if (m.mountpoint == mountpoint) out.push_back(std::move(m));
  }
  return out;
}

Result<std::string> AbsolutePath(const std::string& path) {
  if (path.empty()) return Err(Code::kInvalid, "empty path");
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (p == "/") return p;
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
  std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
  char real[PATH_MAX];
  if (!::realpath(dir.c_str(), real)) return Err(ErrnoStatus(dir));
  std::string out = real;
  if (base == "." || base == "..") {
    // Not a name to keep lexically: resolve the whole path.
    if (!::realpath(p.c_str(), real)) return Err(ErrnoStatus(p));
    return std::string(real);
  }
  if (out != "/") out += '/';
  out += base;
  // A symlink in the last component still counts (a live path); a dead mount cannot be one.
  struct stat st;
  if (::lstat(out.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (!::realpath(out.c_str(), real)) return Err(ErrnoStatus(out));
    return std::string(real);
  }
  return out;
}

bool DaemonGone(int e) { return e == ENOTCONN || e == ECONNABORTED; }

bool IsDeadMount(const std::string& path) {
  // statfs always reaches the daemon (stat may be answered from the kernel's attribute cache).
  struct statfs st;
  return ::statfs(path.c_str(), &st) != 0 && DaemonGone(errno);
}

int RunProgram(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Status DetachMount(const std::string& mountpoint) {
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      return ErrnoStatus("unmount " + mountpoint);
    }
    return Status::Ok();
  }
  if (RunProgram({"fusermount3", "-u", "-z", mountpoint}) != 0) {
    return Status(Code::kIo, "fusermount3 -u -z " + mountpoint + " failed");
  }
  return Status::Ok();
}

}  // namespace cairn::server

namespace cairn::server {

Result<int> DetachDeadMounts(const std::string& mountpoint, const std::string& data_dir) {
  int detached = 0;
  for (; detached < 64; ++detached) {
    auto at = MountsAt(mountpoint);
    if (at.empty() || at.back().fstype != kCairnFsType) break;
    if (!data_dir.empty() && at.back().source != data_dir) break;
    if (!IsDeadMount(mountpoint)) break;
    CAIRN_RETURN_IF_ERROR(DetachMount(mountpoint));
  }
  return detached;
}

Status WaitForDataDir(const std::string& data_dir, std::chrono::milliseconds timeout,
                      const std::function<void()>& on_wait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool waiting = false;
  for (;;) {
    auto fd = fs::LockDataDir(data_dir);
    if (fd) {
      ::close(*fd);
      return Status::Ok();
    }
    if (fd.error().code() != Code::kBusy) return fd.error();
    if (std::chrono::steady_clock::now() > deadline) return fd.error();
    if (!waiting && on_wait) on_wait();
    waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace cairn::server
