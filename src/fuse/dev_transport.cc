#include "fuse/dev_transport.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/logging.h"

namespace cairn::fuse {

namespace {

// A request's buffer: the largest write (1 MiB) plus its header and arguments.
constexpr size_t kRequestBuffer = (1 << 20) + (64 << 10);
// A reply's body: the largest read or directory page.
constexpr size_t kReplyBuffer = (1 << 20) + (4 << 10);

// Wakes a worker blocked in read(2) when the transport stops (the handler does nothing; the
// read returns EINTR).
constexpr int kWakeSignal = SIGUSR2;
void OnWake(int) {}

class DevReply final : public Reply {
 public:
  DevReply(int fd, uint64_t unique, std::vector<char>* body)
      : fd_(fd), unique_(unique), body_(body) {}
  char* Body() override { return body_->data(); }
  size_t Capacity() const override { return body_->size(); }
  int Send(int error, size_t len) override {
    fuse_out_header h{};
    h.unique = unique_;
    h.error = -error;
    if (error != 0) len = 0;
    h.len = static_cast<uint32_t>(sizeof(h) + len);
    iovec iov[2] = {{&h, sizeof(h)}, {body_->data(), len}};
    for (;;) {
      const ssize_t n = ::writev(fd_, iov, len > 0 ? 2 : 1);
      if (n >= 0) return 0;
      if (errno == EINTR) continue;
      // ENOENT: the request was interrupted and is gone; ENODEV: unmounted.
      if (errno != ENOENT && errno != ENODEV) {
        log::Warn("FUSE reply to request {}: {}", unique_, std::strerror(errno));
      }
      return errno;
    }
  }

 private:
  const int fd_;
  const uint64_t unique_;
  std::vector<char>* body_;
};

}  // namespace

Status DevTransport::Init() {
  std::vector<char> buf(kRequestBuffer);
  ssize_t n;
  do {
    n = ::read(fd_, buf.data(), buf.size());
  } while (n < 0 && (errno == EINTR || errno == EAGAIN) && !exited_());
  if (n < 0) return Status(Code::kIo, fmt::format("read INIT: {}", std::strerror(errno)));
  uint64_t unique = 0;
  wire::Session none;
  auto req = wire::ParseDev(std::string_view(buf.data(), static_cast<size_t>(n)), none, &unique);
  if (!req || req->opcode() != FUSE_INIT) {
    return Status(Code::kIo, "the kernel's first request is not a valid INIT");
  }
  // An older kernel sends a shorter fuse_init_in: the rest reads as zero.
  fuse_init_in in{};
  std::memcpy(&in, req->arg.data(), std::min(sizeof(in), req->arg.size() + req->rest.size()));
  wire::Session session;
  auto out = wire::NegotiateInit(in, ops_->Wants(), &session);
  std::vector<char> body(sizeof(fuse_init_out));
  DevReply reply(fd_, unique, &body);
  if (!out) {
    reply.Send(EPROTO, 0);
    return out.error();
  }
  std::memcpy(body.data(), &*out, sizeof(*out));
  ops_->SetSession(session);
  if (reply.Send(0, sizeof(*out)) != 0) return Status(Code::kIo, "INIT reply refused");
  ready_ = true;
  log::Info("FUSE {}.{} over /dev/fuse, {} workers", FUSE_KERNEL_VERSION, session.minor, workers_);
  return Status::Ok();
}

void DevTransport::Worker(int fd) {
  std::vector<char> in(kRequestBuffer);
  std::vector<char> body(kReplyBuffer);
  while (!stop_.load()) {
    const ssize_t n = ::read(fd, in.data(), in.size());
    if (n < 0) {
      // EINTR: a signal (stop or exit is checked above); ENOENT: the request was interrupted
      // before it was read; EAGAIN: nothing this time.
      if (errno == EINTR || errno == ENOENT || errno == EAGAIN) {
        if (exited_()) stop_ = true;
        continue;
      }
      if (errno != ENODEV) log::Error("read /dev/fuse: {}", std::strerror(errno));
      stop_ = true;  // ENODEV: unmounted
      return;
    }
    uint64_t unique = 0;
    auto req = wire::ParseDev(std::string_view(in.data(), static_cast<size_t>(n)), ops_->session(),
                              &unique);
    if (!req) {
      const bool unknown = req.error().code() == Code::kNotSupported;
      if (!unknown) log::Warn("FUSE request: {}; answered EINVAL", req.error().ToString());
      if (unique != 0) DevReply(fd, unique, &body).Send(unknown ? ENOSYS : EINVAL, 0);
      continue;
    }
    DevReply reply(fd, unique, &body);
    ops_->Serve(*req, reply);
  }
}

Status DevTransport::Run() {
  CAIRN_RETURN_IF_ERROR(Init());
  struct sigaction sa {};
  sa.sa_handler = OnWake;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: read(2) returns EINTR
  ::sigaction(kWakeSignal, &sa, nullptr);

  std::vector<std::thread> threads;
  std::vector<int> fds;
  std::vector<std::unique_ptr<std::atomic<bool>>> done;
  for (unsigned i = 0; i < workers_; ++i) {
    int fd = fd_;
    if (i > 0) {
      // A descriptor of its own per worker: requests are handed to readers one by one and
      // replies do not queue behind another worker's.
      fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
      uint32_t master = static_cast<uint32_t>(fd_);
      if (fd < 0 || ::ioctl(fd, FUSE_DEV_IOC_CLONE, &master) != 0) {
        log::Warn("cloning /dev/fuse: {}; worker {} shares the mount's", std::strerror(errno), i);
        if (fd >= 0) ::close(fd);
        fd = fd_;
      } else {
        fds.push_back(fd);
      }
    }
    done.push_back(std::make_unique<std::atomic<bool>>(false));
    threads.emplace_back([this, fd, d = done.back().get()] {
      Worker(fd);
      *d = true;
    });
  }
  // Stop when a worker saw the unmount or the session was told to exit (a signal handled on
  // any thread), then wake every worker still in read(2).
  while (!stop_.load()) {
    if (exited_()) stop_ = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (size_t i = 0; i < threads.size(); ++i) {
    // Repeated: a signal that lands just before the worker enters read(2) would be lost.
    while (!done[i]->load()) {
      ::pthread_kill(threads[i].native_handle(), kWakeSignal);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    threads[i].join();
  }
  for (int fd : fds) ::close(fd);
  return Status::Ok();
}

int DevTransport::NotifyInvalInode(uint64_t ino, int64_t off, int64_t len) {
  if (!ready_.load()) return 0;
  fuse_out_header h{};
  fuse_notify_inval_inode_out o{};
  o.ino = ino;
  o.off = off;
  o.len = len;
  h.error = FUSE_NOTIFY_INVAL_INODE;
  h.len = sizeof(h) + sizeof(o);
  iovec iov[2] = {{&h, sizeof(h)}, {&o, sizeof(o)}};
  return ::writev(fd_, iov, 2) < 0 ? errno : 0;
}

int DevTransport::NotifyInvalEntry(uint64_t parent, std::string_view name) {
  if (!ready_.load()) return 0;
  fuse_out_header h{};
  fuse_notify_inval_entry_out o{};
  o.parent = parent;
  o.namelen = static_cast<uint32_t>(name.size());
  char nul = '\0';
  h.error = FUSE_NOTIFY_INVAL_ENTRY;
  h.len = static_cast<uint32_t>(sizeof(h) + sizeof(o) + name.size() + 1);
  iovec iov[4] = {
      {&h, sizeof(h)}, {&o, sizeof(o)}, {const_cast<char*>(name.data()), name.size()}, {&nul, 1}};
  return ::writev(fd_, iov, 4) < 0 ? errno : 0;
}

}  // namespace cairn::fuse
