#include "fuse/transport.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
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
#include "fuse/kernel_abi.h"
#include "fuse/request_stats.h"
#include "fuse/uring_cmd.h"

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

// A reply into a ring entry: the header area and the payload buffer; the worker commits it.
class RingReply final : public Reply {
 public:
  RingReply(abi::UringReqHeader* header, std::vector<char>* payload, uint64_t unique)
      : header_(header), payload_(payload), unique_(unique) {}
  char* Body() override { return payload_->data(); }
  size_t Capacity() const override { return payload_->size(); }
  int Send(int error, size_t len) override {
    if (error != 0) len = 0;
    fuse_out_header h{};
    h.unique = unique_;
    h.error = -error;
    h.len = static_cast<uint32_t>(sizeof(h) + len);
    std::memset(header_->in_out, 0, sizeof(header_->in_out));
    std::memcpy(header_->in_out, &h, sizeof(h));
    header_->ring_ent_in_out.payload_sz = static_cast<uint32_t>(len);
    sent = true;
    return 0;
  }
  bool sent = false;

 private:
  abi::UringReqHeader* header_;
  std::vector<char>* payload_;
  const uint64_t unique_;
};

// How many queues the kernel makes: one per possible CPU (/sys/devices/system/cpu/possible,
// "0-15").
unsigned PossibleCpus() {
  FILE* f = std::fopen("/sys/devices/system/cpu/possible", "r");
  unsigned first = 0, last = 0;
  const int n = f ? std::fscanf(f, "%u-%u", &first, &last) : 0;
  if (f) std::fclose(f);
  if (n == 2) return last + 1;
  if (n == 1) return first + 1;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

Status Transport::Init() {
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
  wire::InitWants wants = ops_->Wants();
  if (want_uring_) wants.flags |= abi::kOverIoUring;
  auto out = wire::NegotiateInit(in, wants, &session);
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
  uring_ = session.Has(abi::kOverIoUring);
  if (want_uring_ && !uring_) {
    log::Warn(
        "the kernel did not offer FUSE-over-io_uring (enable_uring is off, or the kernel is "
        "older than 6.14): serving /dev/fuse");
  }
  return Status::Ok();
}

void Transport::Worker(int fd) {
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

void Transport::RingWorker(unsigned q, bool pin) {
  if (pin) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(q, &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set);
  }
  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SQE128;
  if (const int r = io_uring_queue_init_params(4, &ring, &params); r < 0) {
    log::Error("io_uring queue {}: {}", q, std::strerror(-r));
    stop_ = true;
    return;
  }
  abi::UringReqHeader header{};
  std::vector<char> payload(std::max<size_t>(kReplyBuffer, ops_->session().max_write + 4096));
  iovec iov[2] = {{&header, sizeof(header)}, {payload.data(), payload.size()}};
  const auto prep = [&](uint32_t cmd) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) return false;
    abi::PrepareUringCmd(sqe, fd_, cmd, static_cast<uint16_t>(q), iov,
                         header.ring_ent_in_out.commit_id, 0);
    return true;
  };
  if (!prep(abi::kUringCmdRegister)) {
    log::Error("io_uring queue {}: no submission entry", q);
    stop_ = true;
    io_uring_queue_exit(&ring);
    return;
  }
  __kernel_timespec wait{0, 100'000'000};
  while (!stop_.load()) {
    io_uring_cqe* cqe = nullptr;
    // Submits what is prepared (the registration, or a reply and the next fetch) and waits.
    const int w = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, nullptr);
    if (w == -ETIME || w == -EINTR || cqe == nullptr) {
      if (exited_()) stop_ = true;
      continue;
    }
    if (w < 0) {
      log::Error("io_uring queue {}: {}", q, std::strerror(-w));
      stop_ = true;
      break;
    }
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (res < 0) {
      // ENOTCONN, ECONNABORTED: the connection ended (unmounted); anything else is logged.
      if (res != -ENOTCONN && res != -ECONNABORTED && res != -ENODEV) {
        log::Error("io_uring queue {}: {}", q, std::strerror(-res));
      }
      stop_ = true;
      break;
    }
    const uint32_t got = std::min<uint32_t>(header.ring_ent_in_out.payload_sz, payload.size());
    uint64_t unique = 0;
    auto req = wire::ParseRing(std::string_view(header.in_out, sizeof(header.in_out)),
                               std::string_view(header.op_in, sizeof(header.op_in)),
                               std::string_view(payload.data(), got), ops_->session(), &unique);
    RingReply reply(&header, &payload, unique);
    if (!req) {
      const bool unknown = req.error().code() == Code::kNotSupported;
      if (!unknown) log::Warn("FUSE request: {}; answered EINVAL", req.error().ToString());
      reply.Send(unknown ? ENOSYS : EINVAL, 0);
    } else {
      ops_->Serve(*req, reply);
      if (!reply.sent) reply.Send(0, 0);  // every ring request takes a commit
    }
    if (!prep(abi::kUringCmdCommitAndFetch)) {
      log::Error("io_uring queue {}: no submission entry", q);
      stop_ = true;
      break;
    }
  }
  io_uring_queue_exit(&ring);  // cancels the entry still registered
}

void Transport::Serve(std::vector<std::function<void()>> bodies) {
  struct sigaction sa {};
  sa.sa_handler = OnWake;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: read(2) returns EINTR
  ::sigaction(kWakeSignal, &sa, nullptr);
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<std::atomic<bool>>> done;
  for (auto& body : bodies) {
    done.push_back(std::make_unique<std::atomic<bool>>(false));
    threads.emplace_back([body = std::move(body), d = done.back().get()] {
      body();
      *d = true;
    });
  }
  // Stop when a thread saw the unmount or the session was told to exit (a signal handled on
  // any thread), then wake every thread still in read(2).
  while (!stop_.load()) {
    if (exited_()) stop_ = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (size_t i = 0; i < threads.size(); ++i) {
    // Repeated: a signal that lands just before the thread enters read(2) would be lost.
    while (!done[i]->load()) {
      ::pthread_kill(threads[i].native_handle(), kWakeSignal);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    threads[i].join();
  }
}

Status Transport::Run() {
  CAIRN_RETURN_IF_ERROR(Init());
  std::vector<std::function<void()>> bodies;
  std::vector<int> fds;
  if (uring_) {
    const unsigned queues = PossibleCpus();
    // At least four threads a queue: the kernel puts a request on the queue of its caller's CPU
    // (background writes and reads on the flusher's), so one request that waits (a read from the
    // object store, a PostgreSQL round trip) must not hold every other one from that CPU
    // (BENCHMARKS.md: sharded checkpoints and readdir on 16 cores).
    const unsigned per_queue = std::max(4u, workers_ / queues);
    const bool pin = queues <= std::thread::hardware_concurrency();
    for (unsigned q = 0; q < queues; ++q) {
      for (unsigned t = 0; t < per_queue; ++t)
        bodies.push_back([this, q, pin] { RingWorker(q, pin); });
    }
    bodies.push_back([this] { Worker(fd_); });  // FORGET, INTERRUPT, early requests
    SetTransportDescription(fmt::format("io_uring (FUSE {}.{}): {} queues, {} threads each",
                                        FUSE_KERNEL_VERSION, ops_->session().minor, queues,
                                        per_queue));
    log::Info("FUSE over {}", TransportDescription());
  } else {
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
      bodies.push_back([this, fd] { Worker(fd); });
    }
    SetTransportDescription(fmt::format("/dev/fuse (FUSE {}.{}): {} workers", FUSE_KERNEL_VERSION,
                                        ops_->session().minor, workers_));
    log::Info("FUSE over {}", TransportDescription());
  }
  Serve(std::move(bodies));
  for (int fd : fds) ::close(fd);
  return Status::Ok();
}

int Transport::NotifyInvalInode(uint64_t ino, int64_t off, int64_t len) {
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

int Transport::NotifyInvalEntry(uint64_t parent, std::string_view name) {
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
