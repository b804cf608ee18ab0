#include "server/admin_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/file.h"
#include "server/admin_server.h"
#include "server/mounts.h"

namespace cairn::server {
namespace {

// Cairn mounts: (mount point, data directory).
std::vector<std::pair<std::string, std::string>> CairnMounts() {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& m : ListMounts()) {
    if (m.fstype == kCairnFsType) out.emplace_back(std::move(m.mountpoint), std::move(m.source));
  }
  return out;
}

}  // namespace

Result<std::string> DataDirOfPath(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Err(ErrnoStatus(path));
  std::string p = real;
  std::string best_mnt, best_dir;
  for (const auto& [mnt, dir] : CairnMounts()) {
    const bool inside = p == mnt || (p.starts_with(mnt) && (mnt == "/" || p[mnt.size()] == '/'));
    if (inside && mnt.size() > best_mnt.size()) {
      best_mnt = mnt;
      best_dir = dir;
    }
  }
  if (best_dir.empty()) return Err(Code::kInvalid, path + " is not inside a Cairn mount");
  return best_dir;
}

Result<std::string> DataDirOfMount(const std::string& mountpoint) {
  char real[PATH_MAX];
  if (!::realpath(mountpoint.c_str(), real)) {
    if (DaemonGone(errno)) {
      return Err(Code::kIo, mountpoint +
                                ": the Cairn daemon of this mount is gone (crashed?); "
                                "'cairn unmount " +
                                mountpoint + "' detaches it, 'cairn mount' mounts it again");
    }
    return Err(ErrnoStatus(mountpoint));
  }
  std::string found;
  for (const auto& [mnt, dir] : CairnMounts()) {
    if (mnt == real) found = dir;
  }
  if (found.empty()) return Err(Code::kInvalid, mountpoint + " is not a Cairn mount point");
  return found;
}

Result<nlohmann::json> AdminCall(const std::string& data_dir, const nlohmann::json& request,
                                 const std::function<void(const nlohmann::json&)>& on_progress) {
  std::string path = AdminSocketPath(data_dir);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Err(Code::kNameTooLong, path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Err(ErrnoStatus("socket"));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{600, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Err(ErrnoStatus("connect to the mount's admin socket " + path));
  }
  std::string out = request.dump() + "\n";
  if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    return Err(ErrnoStatus("write " + path));
  }
  std::string pending;
  std::string reply;
  // Replies can be large (a dataset's index: megabytes): big reads, and each byte is looked at
  // once for the end of its line.
  std::vector<char> buf(1 << 20);
  size_t scanned = 0;  // bytes of pending known to hold no newline
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(ErrnoStatus("read " + path));
    }
    if (n == 0) break;
    pending.append(buf.data(), static_cast<size_t>(n));
    size_t nl;
    bool got_reply = false;
    while ((nl = pending.find('\n', scanned)) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      scanned = 0;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.value("progress", false)) {
        if (on_progress) on_progress(j);
        continue;
      }
      reply = line;
      got_reply = true;
      break;
    }
    if (got_reply) break;
    scanned = pending.size();
  }
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded()) return Err(Code::kIo, "bad reply from the mount's admin socket");
  if (!j.value("ok", false)) return Err(Code::kIo, j.value("error", std::string("request failed")));
  return j;
}

}  // namespace cairn::server
