// fuse_null_bench: what one FUSE request costs through each way of serving /dev/fuse, measured
// with a file system that does nothing (a root directory, attributes never cached), so that the
// figure is the transport's alone. Client threads call fstat() on the mount's root in a loop; each
// call is one GETATTR request.
//
// Transports, all in this one binary so that one run compares them on the same machine:
//   libfuse  libfuse 3.14's multi-threaded loop (fuse_session_loop_mt), as Cairn's mount serves
//            today (fuse/fuse_adapter.cc)
//   dev      /dev/fuse read and written directly, one cloned descriptor per worker thread
//            (FUSE_DEV_IOC_CLONE)
//   uring    FUSE-over-io_uring: one queue per CPU, each served by a thread pinned to it; turns
//            /sys/module/fuse/parameters/enable_uring on for the run and back as it was
//
// Usage (root): fuse_null_bench [--transport T,...] [--threads N,...] [--seconds S] [--workers W]
//                               [--depth D] [--dir DIR]
// Prints one line per (transport, threads): requests per second and microseconds per request.
#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fuse/kernel_abi.h"
#include "fuse/uring_cmd.h"

namespace {

namespace abi = cairn::fuse::abi;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxWrite = 128 * 1024;
constexpr size_t kBufSize = kMaxWrite + 4096;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuse_null_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

std::atomic<uint64_t> g_requests{0};

// The null file system: answers into out (after a fuse_out_header the caller fills); returns the
// bytes of the reply's arguments, or -errno; kNoReply for requests that get none.
constexpr int kNoReply = 1 << 30;

void RootAttr(fuse_attr* a) {
  std::memset(a, 0, sizeof(*a));
  a->ino = FUSE_ROOT_ID;
  a->mode = S_IFDIR | 0755;
  a->nlink = 2;
  a->blksize = 4096;
}

int Serve(const fuse_in_header& in, const char* arg, char* out) {
  g_requests.fetch_add(1, std::memory_order_relaxed);
  switch (in.opcode) {
    case FUSE_GETATTR: {
      auto* o = reinterpret_cast<fuse_attr_out*>(out);
      std::memset(o, 0, sizeof(*o));
      if (in.nodeid != FUSE_ROOT_ID) return -ENOENT;
      RootAttr(&o->attr);  // attr_valid 0: the kernel asks again at the next stat
      return sizeof(*o);
    }
    case FUSE_LOOKUP:
      return -ENOENT;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      return kNoReply;
    case FUSE_STATFS: {
      auto* o = reinterpret_cast<fuse_statfs_out*>(out);
      std::memset(o, 0, sizeof(*o));
      o->st.bsize = o->st.frsize = 4096;
      o->st.namelen = 255;
      return sizeof(*o);
    }
    case FUSE_OPENDIR: {
      auto* o = reinterpret_cast<fuse_open_out*>(out);
      std::memset(o, 0, sizeof(*o));
      return sizeof(*o);
    }
    case FUSE_READDIR:
    case FUSE_RELEASEDIR:
    case FUSE_ACCESS:
    case FUSE_DESTROY:
      return 0;
    default:
      (void)arg;
      return -ENOSYS;
  }
}

// Handles the INIT request in buf (read from /dev/fuse) and writes the reply.
void ReplyInit(int fd, const char* buf, bool uring) {
  const auto* in = reinterpret_cast<const fuse_in_header*>(buf);
  const auto* init = reinterpret_cast<const fuse_init_in*>(buf + sizeof(fuse_in_header));
  if (in->opcode != FUSE_INIT) Die("first request is not INIT");
  const uint64_t offered =
      init->flags | (init->flags & FUSE_INIT_EXT ? uint64_t(init->flags2) << 32 : 0);
  if (uring && !(offered & abi::kOverIoUring)) {
    errno = ENOTSUP;
    Die("the kernel does not offer FUSE-over-io_uring");
  }
  struct {
    fuse_out_header h;
    fuse_init_out o;
  } r{};
  r.h.len = sizeof(r);
  r.h.unique = in->unique;
  r.o.major = FUSE_KERNEL_VERSION;
  r.o.minor = std::min<uint32_t>(init->minor, abi::kMinorVersion);
  r.o.max_readahead = init->max_readahead;
  uint64_t want =
      FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS | FUSE_INIT_EXT;
  if (uring) want |= abi::kOverIoUring;
  want &= offered;
  r.o.flags = static_cast<uint32_t>(want);
  r.o.flags2 = static_cast<uint32_t>(want >> 32);
  r.o.max_background = 64;
  r.o.congestion_threshold = 48;
  r.o.max_write = kMaxWrite;
  r.o.time_gran = 1;
  r.o.max_pages = kMaxWrite / 4096;
  if (write(fd, &r, sizeof(r)) != sizeof(r)) Die("INIT reply");
}

// One /dev/fuse worker: read a request, answer it, until the connection ends.
void DevWorker(int fd, std::atomic<bool>* stop) {
  std::vector<char> buf(kBufSize);
  char out[4096];
  while (!stop->load()) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
      return;  // ENODEV: unmounted
    }
    const auto& in = *reinterpret_cast<const fuse_in_header*>(buf.data());
    const int r = Serve(in, buf.data() + sizeof(in), out);
    if (r == kNoReply) continue;
    fuse_out_header h{};
    h.unique = in.unique;
    h.error = r < 0 ? r : 0;
    h.len = sizeof(h) + (r > 0 ? r : 0);
    iovec iov[2] = {{&h, sizeof(h)}, {out, static_cast<size_t>(r > 0 ? r : 0)}};
    if (writev(fd, iov, r > 0 ? 2 : 1) < 0 && errno == ENODEV) return;
  }
}

// One io_uring queue: `depth` entries registered on CPU q's queue, served by this thread.
void UringQueue(int fd, int q, int depth, std::atomic<bool>* stop, std::atomic<int>* ready) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(q, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  p.cq_entries = depth * 2;
  if (io_uring_queue_init_params(depth, &ring, &p) < 0) Die("io_uring_queue_init");
  struct Entry {
    abi::UringReqHeader header;
    std::vector<char> payload = std::vector<char>(kBufSize);
    iovec iov[2];
  };
  std::vector<Entry> entries(depth);
  const auto submit = [&](Entry& e, uint32_t cmd) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
      if (sqe == nullptr) Die("io_uring_get_sqe");
    }
    abi::PrepareUringCmd(sqe, fd, cmd, static_cast<uint16_t>(q), e.iov,
                         e.header.ring_ent_in_out.commit_id, reinterpret_cast<uint64_t>(&e));
  };
  for (Entry& e : entries) {
    e.iov[0] = {&e.header, sizeof(e.header)};
    e.iov[1] = {e.payload.data(), e.payload.size()};
    submit(e, abi::kUringCmdRegister);
  }
  if (io_uring_submit(&ring) < 0) Die("register ring entries");
  ready->fetch_add(1);
  while (!stop->load()) {
    io_uring_cqe* cqe;
    __kernel_timespec ts{0, 100'000'000};
    const int w = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
    if (w == -ETIME || w == -EINTR) continue;
    if (w < 0) break;
    auto* e = reinterpret_cast<Entry*>(cqe->user_data);
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (res < 0) {
      if (getenv("FNB_DEBUG")) std::fprintf(stderr, "queue %d: cqe %d\n", q, res);
      if (res == -EINTR || res == -EAGAIN) continue;
      break;  // the connection ended
    }
    const auto in = *reinterpret_cast<const fuse_in_header*>(e->header.in_out);
    const int r = Serve(in, e->header.op_in, e->payload.data());
    auto* h = reinterpret_cast<fuse_out_header*>(e->header.in_out);
    std::memset(h, 0, sizeof(*h));
    h->unique = in.unique;
    h->error = r < 0 ? r : 0;
    h->len = sizeof(*h) + (r > 0 ? r : 0);
    e->header.ring_ent_in_out.payload_sz = r > 0 ? r : 0;
    submit(*e, abi::kUringCmdCommitAndFetch);
    io_uring_submit(&ring);
  }
  io_uring_queue_exit(&ring);
}

// libfuse's low-level API over the same null file system.
void LlGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  g_requests.fetch_add(1, std::memory_order_relaxed);
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_attr a;
  RootAttr(&a);
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_blksize = a.blksize;
  fuse_reply_attr(req, &st, 0.0);
}
void LlLookup(fuse_req_t req, fuse_ino_t, const char*) {
  g_requests.fetch_add(1, std::memory_order_relaxed);
  fuse_reply_err(req, ENOENT);
}

struct Mount {
  std::string dir;
  int fd = -1;
  fuse_session* session = nullptr;
  std::vector<std::thread> servers;
  std::atomic<bool> stop{false};
};

void MountDirect(Mount& m) {
  m.fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (m.fd < 0) Die("open /dev/fuse");
  const std::string opts =
      "fd=" + std::to_string(m.fd) + ",rootmode=40000,user_id=0,group_id=0,allow_other";
  if (mount("cairn-null", m.dir.c_str(), "fuse.cairn-null", MS_NOSUID | MS_NODEV, opts.c_str()) !=
      0) {
    Die("mount " + m.dir);
  }
}

void Start(Mount& m, const std::string& transport, int workers, int depth) {
  if (transport == "libfuse") {
    static const fuse_lowlevel_ops ops = [] {
      fuse_lowlevel_ops o{};
      o.getattr = LlGetattr;
      o.lookup = LlLookup;
      return o;
    }();
    char arg0[] = "fuse_null_bench";
    char* argv[] = {arg0};
    fuse_args args = FUSE_ARGS_INIT(1, argv);
    m.session = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
    if (!m.session || fuse_session_mount(m.session, m.dir.c_str()) != 0) Die("libfuse mount");
    m.servers.emplace_back([&m, workers] {
      fuse_loop_config* c = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(c, workers);
      fuse_loop_cfg_set_idle_threads(c, workers);
      fuse_loop_cfg_set_clone_fd(c, 0);
      fuse_session_loop_mt(m.session, c);
      fuse_loop_cfg_destroy(c);
    });
    return;
  }
  const bool uring = transport == "uring";
  MountDirect(m);
  std::vector<char> buf(kBufSize);
  ssize_t n;
  do {
    n = read(m.fd, buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in))) Die("read INIT");
  ReplyInit(m.fd, buf.data(), uring);
  if (uring) {
    // Requests come on the ring; FORGET, INTERRUPT and notifications stay on /dev/fuse.
    m.servers.emplace_back(DevWorker, m.fd, &m.stop);
    std::atomic<int> ready{0};
    const int queues = static_cast<int>(std::thread::hardware_concurrency());
    for (int q = 0; q < queues; ++q) {
      m.servers.emplace_back(UringQueue, m.fd, q, depth, &m.stop, &ready);
    }
    while (ready.load() < queues) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return;
  }
  for (int w = 0; w < workers; ++w) {
    int clone = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    uint32_t master = m.fd;
    if (clone < 0 || ioctl(clone, FUSE_DEV_IOC_CLONE, &master) != 0) Die("FUSE_DEV_IOC_CLONE");
    m.servers.emplace_back([clone, &m] {
      DevWorker(clone, &m.stop);
      close(clone);
    });
  }
}

void Stop(Mount& m) {
  m.stop = true;
  if (m.session) {
    fuse_session_exit(m.session);
    fuse_session_unmount(m.session);  // the loop's read returns ENODEV
  } else {
    umount2(m.dir.c_str(), MNT_DETACH);
  }
  for (auto& t : m.servers) t.join();
  if (m.session) fuse_session_destroy(m.session);
  if (m.fd >= 0) close(m.fd);
}

// Client threads fstat() the root for `seconds`; returns requests per second the server saw.
double Drive(const std::string& dir, int threads, double seconds) {
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      const int fd = open(dir.c_str(), O_PATH | O_CLOEXEC);
      if (fd < 0) Die("open " + dir);
      struct stat st;
      while (!done.load(std::memory_order_relaxed)) {
        if (fstat(fd, &st) != 0) Die("fstat");
      }
      close(fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // warm up
  const uint64_t before = g_requests.load();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t after = g_requests.load();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  done = true;
  for (auto& c : clients) c.join();
  return static_cast<double>(after - before) / elapsed;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string ReadParam() {
  std::ifstream f("/sys/module/fuse/parameters/enable_uring");
  std::string v;
  f >> v;
  return v;
}
bool WriteParam(const std::string& v) {
  std::ofstream f("/sys/module/fuse/parameters/enable_uring");
  f << v;
  return static_cast<bool>(f.flush());
}

}  // namespace

int main(int argc, char** argv) {
  std::string transports = "libfuse,dev,uring", threads = "1,16", dir = "/tmp/cairn-null-bench";
  double seconds = 3;
  int workers = static_cast<int>(std::thread::hardware_concurrency());
  int depth = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fuse_null_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--transport") {
      transports = next();
    } else if (a == "--threads") {
      threads = next();
    } else if (a == "--seconds") {
      seconds = std::atof(next().c_str());
    } else if (a == "--workers") {
      workers = std::atoi(next().c_str());
    } else if (a == "--depth") {
      depth = std::atoi(next().c_str());
    } else if (a == "--dir") {
      dir = next();
    } else {
      std::fprintf(stderr,
                   "usage: fuse_null_bench [--transport libfuse,dev,uring] [--threads 1,16] "
                   "[--seconds S] [--workers W] [--depth D] [--dir DIR]\n");
      return 2;
    }
  }
  if (seconds <= 0 || workers < 1 || depth < 1) {
    std::fprintf(stderr, "fuse_null_bench: seconds, workers and depth must be positive\n");
    return 2;
  }
  mkdir(dir.c_str(), 0755);
  const std::string uring_before = ReadParam();
  std::printf("%-8s %8s %14s %12s\n", "transport", "threads", "requests/s", "us/request");
  for (const auto& transport : Split(transports)) {
    if (transport != "libfuse" && transport != "dev" && transport != "uring") {
      std::fprintf(stderr, "fuse_null_bench: unknown transport %s\n", transport.c_str());
      return 2;
    }
    if (transport == "uring" && !WriteParam("Y")) {
      std::fprintf(stderr, "fuse_null_bench: cannot turn enable_uring on; uring skipped\n");
      continue;
    }
    for (const auto& t : Split(threads)) {
      const int n = std::atoi(t.c_str());
      if (n < 1) return 2;
      Mount m;
      m.dir = dir;
      Start(m, transport, workers, depth);
      const double rate = Drive(dir, n, seconds);
      Stop(m);
      std::printf("%-8s %8d %14.0f %12.2f\n", transport.c_str(), n, rate, n * 1e6 / rate);
      std::fflush(stdout);
    }
    if (transport == "uring") WriteParam(uring_before);
  }
  return 0;
}
