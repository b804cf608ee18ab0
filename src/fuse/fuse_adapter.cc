#define FUSE_USE_VERSION 312
#include "fuse/fuse_adapter.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fuse_lowlevel.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/logging.h"
#include "fuse/ops.h"
#include "fuse/transport.h"

namespace cairn::fuse {

namespace {

// libfuse only mounts (fuse_session_mount: mount(2) as root, fusermount3 otherwise) and unmounts;
// its session is never run, so it needs no callbacks. Requests are Cairn's (fuse/transport.h).
const fuse_lowlevel_ops kNoOps{};

}  // namespace

namespace {
// The kernel offers FUSE-over-io_uring only while this module parameter is on (kernel 6.14+);
// root may turn it on. What the mount's INIT then negotiates decides.
void EnableUring() {
  const char* path = "/sys/module/fuse/parameters/enable_uring";
  char value = 0;
  const int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    log::Warn("FUSE-over-io_uring: {} missing (kernel older than 6.14?); /dev/fuse serves", path);
    return;
  }
  if (::read(fd, &value, 1) == 1 && value == 'Y') {
    ::close(fd);
    return;
  }
  if (::pwrite(fd, "1", 1, 0) == 1) {
    log::Info("FUSE-over-io_uring: turned {} on", path);
  } else {
    log::Warn("FUSE-over-io_uring: cannot turn {} on ({}); /dev/fuse serves", path,
              std::strerror(errno));
  }
  ::close(fd);
}
}  // namespace

Result<std::unique_ptr<FuseMount>> FuseMount::Mount(fs::FileSystem* fs,
                                                    const std::string& mountpoint,
                                                    const FuseOptions& options) {
  if (options.transport == FuseOptions::Transport::kUring) EnableUring();
  std::unique_ptr<FuseMount> m(new FuseMount());
  m->fs_ = fs;
  m->options_ = options;
  std::vector<std::string> args = {
      "cairn", "-o",           "default_permissions", "-o", "fsname=" + fs->data_dir(),
      "-o",    "subtype=cairn"};
  if (options.allow_other) {
    args.push_back("-o");
    args.push_back("allow_other");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  m->session_ = fuse_session_new(&fargs, &kNoOps, sizeof(kNoOps), nullptr);
  if (!m->session_) return Err(Code::kInvalid, "could not create the FUSE session");
  if (fuse_set_signal_handlers(m->session_) == 0) m->signals_ = true;
  if (fuse_session_mount(m->session_, mountpoint.c_str()) != 0) {
    return Err(Code::kIo, fmt::format("could not mount at {} (is /dev/fuse available and the "
                                      "mount point an existing directory?)",
                                      mountpoint));
  }
  m->mounted_ = true;
  return m;
}

Status SetReadAhead(dev_t dev, uint64_t bytes) {
  // The kernel names a FUSE mount's bdi after its device number; see /sys/class/bdi.
  const std::string path =
      fmt::format("/sys/class/bdi/{}:{}/read_ahead_kb", major(dev), minor(dev));
  const std::string value = fmt::format("{}\n", bytes / 1024);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status(Code::kIo, fmt::format("open {}: {}", path, std::strerror(errno)));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return Status(Code::kIo, fmt::format("write {}: {}", path, std::strerror(saved)));
  }
  return Status::Ok();
}

// Before the transport runs the kernel has cached nothing, so there is nothing to drop. ENOENT from
// the kernel means it did not know the entry or inode: nothing to drop either.
void FuseMount::InvalidateEntry(uint64_t parent, std::string_view name) {
  if (Transport* t = transport_ready_.load()) (void)t->NotifyInvalEntry(parent, name);
}

void FuseMount::InvalidateInode(uint64_t ino) {
  if (Transport* t = transport_ready_.load()) (void)t->NotifyInvalInode(ino, 0, 0);
}

void FuseMount::InvalidateAttributes(uint64_t ino) {
  // A negative offset: attributes only, no page (the kernel takes no page or inode lock).
  if (Transport* t = transport_ready_.load()) (void)t->NotifyInvalInode(ino, -1, 0);
}

FuseMount::~FuseMount() {
  transport_ready_ = nullptr;
  if (!session_) return;
  if (signals_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Run() {
  ops_ = std::make_unique<Ops>(fs_, options_);
  transport_ =
      std::make_unique<Transport>(fuse_session_fd(session_), ops_.get(), options_.max_threads,
                                  options_.transport == FuseOptions::Transport::kUring,
                                  [this] { return fuse_session_exited(session_) != 0; });
  transport_ready_ = transport_.get();
  return transport_->Run();
}

}  // namespace cairn::fuse
