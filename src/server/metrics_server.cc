#include "server/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/file.h"
#include "common/metrics.h"

namespace cairn::server {

MetricsServer::MetricsServer(std::string address, std::function<std::string()> gauges)
    : address_(std::move(address)), gauges_(std::move(gauges)) {}

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Start() {
  const size_t colon = address_.rfind(':');
  if (colon == std::string::npos) {
    return Status(Code::kInvalid, "metrics address '" + address_ + "' is not HOST:PORT");
  }
  const std::string host = address_.substr(0, colon);
  char* end = nullptr;
  const long port = std::strtol(address_.c_str() + colon + 1, &end, 10);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (*end != '\0' || colon + 1 == address_.size() || port < 0 || port > 65535 ||
      ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status(Code::kInvalid, "metrics address '" + address_ + "' is not IPv4-HOST:PORT");
  }
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    return Status(Code::kInvalid, "metrics address must be a loopback address (127.0.0.0/8)");
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoStatus("socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus("bind metrics address " + address_);
  }
  if (::listen(listen_fd_, 16) != 0) return ErrnoStatus("listen " + address_);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  url_ = fmt::format("http://{}:{}/metrics", host, ntohs(addr.sin_port));
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void MetricsServer::Stop() {
  if (thread_.joinable()) {
    char c = 'x';
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void MetricsServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      ::close(fd);
    }
  }
}

void MetricsServer::Serve(int fd) {
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string status = "200 OK";
  std::string body;
  if (request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?")) {
    body = metrics::RenderPrometheus();
    if (gauges_) body += gauges_();
  } else {
    status = "404 Not Found";
    body = "Cairn serves /metrics only\n";
  }
  std::string out = fmt::format(
      "HTTP/1.0 {}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, body.size(), body);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace cairn::server
