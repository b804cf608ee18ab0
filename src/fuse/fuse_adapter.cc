#define FUSE_USE_VERSION 312
#include "fuse/fuse_adapter.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fuse_lowlevel.h>
#include <linux/fs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/logging.h"
#include "fuse/ops.h"
#include "fuse/transport.h"

namespace cairn::fuse {

struct Context {
  fs::FileSystem* fs;
  FuseOptions options;
};

namespace {

Context* Ctx(fuse_req_t req) { return static_cast<Context*>(fuse_req_userdata(req)); }
fs::FileSystem* Fs(fuse_req_t req) { return Ctx(req)->fs; }
// How long the kernel keeps what a reply tells it of inode ino (0: an absence): on a cluster it
// depends on whether this node hears the others' changes now (FileSystem::KernelTimeout).
double AttrTimeout(fuse_req_t req, uint64_t ino) {
  return Fs(req)->KernelTimeout(Ctx(req)->options.attr_timeout_s, ino);
}
double EntryTimeout(fuse_req_t req, uint64_t ino) {
  return Fs(req)->KernelTimeout(Ctx(req)->options.entry_timeout_s, ino);
}

void ReplyStatus(fuse_req_t req, const Status& st) {
  fuse_reply_err(req, st.ok() ? 0 : ToErrno(st.code()));
}

void ReplyEntry(fuse_req_t req, const Result<struct stat>& st) {
  if (!st) {
    fuse_reply_err(req, ToErrno(st.error().code()));
    return;
  }
  fuse_entry_param e{};
  e.ino = st->st_ino;
  e.generation = 1;  // inode numbers are never reused
  e.attr = *st;
  e.attr_timeout = AttrTimeout(req, e.ino);
  e.entry_timeout = EntryTimeout(req, e.ino);
  fuse_reply_entry(req, &e);
}

fs::Context Caller(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return {static_cast<uint32_t>(c->uid), static_cast<uint32_t>(c->gid)};
}

void Init(void* userdata, fuse_conn_info* conn) {
  const FuseOptions& options = static_cast<Context*>(userdata)->options;
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  // Without atomic O_TRUNC the kernel truncates through SETATTR.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // libfuse asks by default that the file system clear set-user-ID and set-group-ID on writes;
  // Cairn does not know the writer's capabilities, the kernel does: it clears them (SETATTR).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // OPEN is served, never skipped (FUSE_CAP_NO_OPEN_SUPPORT stays off): it is where a snapshot
  // view refuses an open for writing, before a byte reaches the page cache (ARCHITECTURE.md,
  // "Snapshots").
  // The writeback cache makes the kernel's size and mtime of a file win over the file system's:
  // right on one node, wrong when other nodes write (cluster mode turns it off).
  if (options.writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  // An open that finds the file changed drops the kernel's attributes; reads then ask again.
  want(FUSE_CAP_AUTO_INVAL_DATA);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_ASYNC_DIO);
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer timer(kLookup);
  auto st = Fs(req)->Lookup(parent, name);
  if (!st && st.error().code() == Code::kNotFound) {
    // A negative entry: the kernel remembers the absence (Cairn is the only writer).
    fuse_entry_param e{};
    e.entry_timeout = EntryTimeout(req, 0);
    fuse_reply_entry(req, &e);
    return;
  }
  ReplyEntry(req, st);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  OpTimer timer(kForget);
  Fs(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  OpTimer timer(kForget);
  for (size_t i = 0; i < count; ++i) Fs(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  OpTimer timer(kGetAttr);
  auto st = Fs(req)->GetAttr(ino);
  if (!st) return (void)fuse_reply_err(req, ToErrno(st.error().code()));
  fuse_reply_attr(req, &*st, AttrTimeout(req, ino));
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  OpTimer timer(kSetAttr);
  fs::SetAttrRequest r;
  if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.atime_now = true;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.atime = meta::Timespec{attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.mtime_now = true;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.mtime = meta::Timespec{attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
  }
  auto st = Fs(req)->SetAttr(ino, r);
  if (!st) return (void)fuse_reply_err(req, ToErrno(st.error().code()));
  fuse_reply_attr(req, &*st, AttrTimeout(req, ino));
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  OpTimer timer(kReadlink);
  auto target = Fs(req)->Readlink(ino);
  if (!target) return (void)fuse_reply_err(req, ToErrno(target.error().code()));
  fuse_reply_readlink(req, target->c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  OpTimer timer(kMknod);
  ReplyEntry(req, Fs(req)->Mknod(Caller(req), parent, name, mode, rdev));
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  OpTimer timer(kMkdir);
  ReplyEntry(req, Fs(req)->Mkdir(Caller(req), parent, name, mode));
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer timer(kUnlink);
  ReplyStatus(req, Fs(req)->Unlink(parent, name));
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer timer(kRmdir);
  ReplyStatus(req, Fs(req)->Rmdir(parent, name));
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  OpTimer timer(kSymlink);
  ReplyEntry(req, Fs(req)->Symlink(Caller(req), parent, name, link));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  OpTimer timer(kRename);
  ReplyStatus(req, Fs(req)->Rename(parent, name, newparent, newname, flags));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  OpTimer timer(kLink);
  ReplyEntry(req, Fs(req)->Link(ino, newparent, newname));
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpTimer timer(kOpen);
  Status st = Fs(req)->Open(ino, fi->flags);
  if (!st.ok()) return ReplyStatus(req, st);
  fi->keep_cache = Ctx(req)->options.keep_cache;
  fuse_reply_open(req, fi);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  OpTimer timer(kCreate);
  auto st = Fs(req)->Create(Caller(req), parent, name, mode, fi->flags);
  if (!st) return (void)fuse_reply_err(req, ToErrno(st.error().code()));
  fuse_entry_param e{};
  e.ino = st->st_ino;
  e.generation = 1;
  e.attr = *st;
  e.attr_timeout = AttrTimeout(req, e.ino);
  e.entry_timeout = EntryTimeout(req, e.ino);
  fi->keep_cache = Ctx(req)->options.keep_cache;
  if (fuse_reply_create(req, &e, fi) != 0) {
    // The kernel did not take the handle (interrupted): undo the open and the lookup.
    (void)Fs(req)->Release(st->st_ino);
    Fs(req)->Forget(st->st_ino, 1);
  }
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  OpTimer timer(kRead);
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  auto n = Fs(req)->Read(ino, static_cast<uint64_t>(off), size, buf.data());
  if (!n) return (void)fuse_reply_err(req, ToErrno(n.error().code()));
  fuse_reply_buf(req, buf.data(), *n);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
           fuse_file_info*) {
  OpTimer timer(kWrite);
  auto n = Fs(req)->Write(ino, static_cast<uint64_t>(off), data, size);
  if (!n) return (void)fuse_reply_err(req, ToErrno(n.error().code()));
  fuse_reply_write(req, *n);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  OpTimer timer(kRelease);
  ReplyStatus(req, Fs(req)->Release(ino));
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  OpTimer timer(kFsync);
  ReplyStatus(req, Fs(req)->Fsync(ino));
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpTimer timer(kOpenDir);
  auto h = Fs(req)->OpenDir(ino);
  if (!h) return (void)fuse_reply_err(req, ToErrno(h.error().code()));
  fi->fh = *h;
  fi->cache_readdir = 0;
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi,
                   bool plus) {
  auto entries = Fs(req)->DirHandle(fi->fh);
  if (!entries) return (void)fuse_reply_err(req, ToErrno(entries.error().code()));
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < (*entries)->size(); ++i) {
    const fs::DirEntry& d = (**entries)[i];
    const off_t next = static_cast<off_t>(i + 1);
    size_t need;
    if (!plus) {
      struct stat st {};
      st.st_ino = d.ino;
      st.st_mode = static_cast<mode_t>(d.type) << 12;
      need = fuse_add_direntry(req, buf.data() + used, size - used, d.name.c_str(), &st, next);
      if (need > size - used) break;
    } else if (d.name == "." || d.name == "..") {
      fuse_entry_param e{};
      e.attr.st_ino = d.ino;
      e.attr.st_mode = S_IFDIR;
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, d.name.c_str(), &e, next);
      if (need > size - used) break;
    } else {
      auto st = Fs(req)->Remember(d.ino);  // readdirplus hands the kernel one reference
      if (!st) continue;                   // removed since opendir
      fuse_entry_param e{};
      e.ino = d.ino;
      e.generation = 1;
      e.attr = *st;
      e.attr_timeout = AttrTimeout(req, e.ino);
      e.entry_timeout = EntryTimeout(req, e.ino);
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, d.name.c_str(), &e, next);
      if (need > size - used) {
        Fs(req)->Forget(d.ino, 1);
        break;
      }
    }
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  OpTimer timer(kReadDir);
  ReadDirCommon(req, ino, size, off, fi, false);
}
void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  OpTimer timer(kReadDirPlus);
  ReadDirCommon(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  OpTimer timer(kReleaseDir);
  Fs(req)->ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  OpTimer timer(kFsyncDir);
  ReplyStatus(req, Fs(req)->FsyncDir(ino));
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  OpTimer timer(kStatFs);
  auto st = Fs(req)->StatFs();
  if (!st) return (void)fuse_reply_err(req, ToErrno(st.error().code()));
  fuse_reply_statfs(req, &*st);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  OpTimer timer(kSetXattr);
  ReplyStatus(req, Fs(req)->SetXattr(ino, name, std::string_view(value, size), flags));
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  OpTimer timer(kGetXattr);
  auto v = Fs(req)->GetXattr(ino, name);
  if (!v) return (void)fuse_reply_err(req, ToErrno(v.error().code()));
  if (size == 0) return (void)fuse_reply_xattr(req, v->size());
  if (size < v->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, v->data(), v->size());
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  OpTimer timer(kListXattr);
  auto names = Fs(req)->ListXattr(ino);
  if (!names) return (void)fuse_reply_err(req, ToErrno(names.error().code()));
  std::string out;
  for (const auto& n : *names) {
    out.append(n);
    out.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, out.size());
  if (size < out.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, out.data(), out.size());
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  OpTimer timer(kRemoveXattr);
  ReplyStatus(req, Fs(req)->RemoveXattr(ino, name));
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  OpTimer timer(kAccess);
  // Only reached without default_permissions; mirrors the kernel's generic_permission.
  auto st = Fs(req)->GetAttr(ino);
  if (!st) return (void)fuse_reply_err(req, ToErrno(st.error().code()));
  const fuse_ctx* c = fuse_req_ctx(req);
  if (mask == F_OK) return (void)fuse_reply_err(req, 0);
  if (c->uid == 0) {
    bool exec_ok = !(mask & X_OK) || S_ISDIR(st->st_mode) || (st->st_mode & 0111);
    return (void)fuse_reply_err(req, exec_ok ? 0 : EACCES);
  }
  unsigned bits = st->st_mode & 07;
  if (c->uid == st->st_uid) {
    bits = (st->st_mode >> 6) & 07;
  } else if (c->gid == st->st_gid) {
    bits = (st->st_mode >> 3) & 07;
  }
  bool ok = ((mask & R_OK) == 0 || (bits & 4)) && ((mask & W_OK) == 0 || (bits & 2)) &&
            ((mask & X_OK) == 0 || (bits & 1));
  fuse_reply_err(req, ok ? 0 : EACCES);
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info*) {
  OpTimer timer(kFallocate);
  if (offset < 0 || length <= 0) return (void)fuse_reply_err(req, EINVAL);
  ReplyStatus(req, Fs(req)->Fallocate(ino, mode, static_cast<uint64_t>(offset),
                                      static_cast<uint64_t>(length)));
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  // No flush: writes are in the segment and the metadata log as soon as they return, so the
  // kernel's ENOSYS fallback (write back dirty pages at close, skip the request) saves a round
  // trip.
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.access = Access;
  ops.fallocate = Fallocate;
  return ops;
}();

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
  m->ctx_ = std::make_unique<Context>(Context{fs, options});
  std::vector<std::string> args = {
      "cairn", "-o",           "default_permissions", "-o", "fsname=" + fs->data_dir(),
      "-o",    "subtype=cairn"};
  if (options.allow_other) {
    args.push_back("-o");
    args.push_back("allow_other");
  }
  if (options.debug) args.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  m->session_ = fuse_session_new(&fargs, &kOps, sizeof(kOps), m->ctx_.get());
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

void FuseMount::InvalidateEntry(uint64_t parent, std::string_view name) {
  if (!mounted_) return;
  if (Transport* dev = dev_ready_.load()) return (void)dev->NotifyInvalEntry(parent, name);
  // ENOENT means the kernel did not know the entry: nothing to drop.
  (void)fuse_lowlevel_notify_inval_entry(session_, parent, name.data(), name.size());
}

void FuseMount::InvalidateInode(uint64_t ino) {
  if (!mounted_) return;
  if (Transport* dev = dev_ready_.load()) return (void)dev->NotifyInvalInode(ino, 0, 0);
  (void)fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
}

void FuseMount::InvalidateAttributes(uint64_t ino) {
  if (!mounted_) return;
  // A negative offset: attributes only, no page (the kernel takes no page or inode lock).
  if (Transport* dev = dev_ready_.load()) return (void)dev->NotifyInvalInode(ino, -1, 0);
  (void)fuse_lowlevel_notify_inval_inode(session_, ino, -1, 0);
}

FuseMount::~FuseMount() {
  dev_ready_ = nullptr;
  if (!session_) return;
  if (signals_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Run() {
  if (ctx_->options.transport != FuseOptions::Transport::kLibfuse) {
    ops_ = std::make_unique<Ops>(ctx_->fs, ctx_->options);
    dev_ = std::make_unique<Transport>(fuse_session_fd(session_), ops_.get(),
                                       ctx_->options.max_threads,
                                       ctx_->options.transport == FuseOptions::Transport::kUring,
                                       [this] { return fuse_session_exited(session_) != 0; });
    dev_ready_ = dev_.get();
    return dev_->Run();
  }
  SetTransportDescription(fmt::format("libfuse's loop: {} workers", ctx_->options.max_threads));
  fuse_loop_config* config = fuse_loop_cfg_create();
  unsigned threads = ctx_->options.max_threads;
  fuse_loop_cfg_set_max_threads(config, threads);
  fuse_loop_cfg_set_idle_threads(config, threads);
  fuse_loop_cfg_set_clone_fd(config, 0);
  int r = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  if (r < 0) return Status(Code::kIo, fmt::format("FUSE loop ended with error {}", r));
  return Status::Ok();
}

}  // namespace cairn::fuse
