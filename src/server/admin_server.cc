#include "server/admin_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/file.h"
#include "common/logging.h"

namespace cairn::server {

std::string AdminSocketPath(const std::string& data_dir) { return data_dir + "/admin.sock"; }

AdminServer::AdminServer(std::string socket_path, AdminHandler handler)
    : path_(std::move(socket_path)), handler_(std::move(handler)) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    return Status(Code::kNameTooLong, "admin socket path too long: " + path_);
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  ::unlink(path_.c_str());  // a stale socket of a crashed daemon; the data dir lock is held
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoStatus("socket");
  // Create the socket with mode 0600 from the start: no window where others could connect.
  mode_t old = ::umask(0177);
  int r = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (r != 0) return ErrnoStatus("bind " + path_);
  if (::listen(listen_fd_, 16) != 0) return ErrnoStatus("listen " + path_);
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void AdminServer::Stop() {
  if (thread_.joinable()) {
    char c = 'x';
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
  }
  std::vector<std::thread> conns;
  {
    std::lock_guard lock(conns_mu_);
    conns.swap(conns_);
  }
  for (auto& t : conns) t.join();
  for (int* fd : {&listen_fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  ::unlink(path_.c_str());
}

void AdminServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error("admin socket poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(conns_mu_);
      conns_.emplace_back([this, fd] {
        Serve(fd);
        ::close(fd);
      });
    }
  }
}

void AdminServer::Serve(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string line;
  char buf[4096];
  while (line.find('\n') == std::string::npos && line.size() < (1 << 20)) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    line.append(buf, static_cast<size_t>(n));
  }
  auto request = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  auto send = [fd](const nlohmann::json& j) {
    std::string out = j.dump() + "\n";
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the client went away; the operation still completes
      done += static_cast<size_t>(n);
    }
  };
  nlohmann::json reply;
  if (request.is_discarded() || !request.is_object() || !request.contains("op")) {
    reply = {{"ok", false}, {"error", "bad request"}};
  } else {
    reply = handler_(request, [&](const nlohmann::json& p) {
      nlohmann::json line = p;
      line["progress"] = true;
      send(line);
    });
  }
  send(reply);
}

}  // namespace cairn::server
