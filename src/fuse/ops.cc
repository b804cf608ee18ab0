#include "fuse/ops.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "common/logging.h"
#include "fs/snapshot_view.h"
#include "fuse/request_stats.h"

namespace cairn::fuse {

namespace {

void SplitTimeout(double t, uint64_t* sec, uint32_t* nsec) {
  if (!(t > 0)) {
    *sec = 0;
    *nsec = 0;
    return;
  }
  if (t >= 1e18) t = 1e18;
  *sec = static_cast<uint64_t>(t);
  *nsec =
      std::min<uint32_t>(static_cast<uint32_t>((t - static_cast<double>(*sec)) * 1e9), 999999999);
}

fs::Context Caller(const wire::Request& req) { return {req.header.uid, req.header.gid}; }

int Errno(const Status& st) { return st.ok() ? 0 : ToErrno(st.code()); }

template <typename T>
T* At(char* body) {
  return reinterpret_cast<T*>(body);
}

// Logs a malformed request once per kind and answers it with EINVAL.
bool Malformed(const wire::Request& req, Reply& reply, const char* what) {
  log::Warn("FUSE {} request {}: {}; answered EINVAL", wire::OpcodeName(req.opcode()), req.unique(),
            what);
  reply.Send(EINVAL, 0);
  return true;
}

}  // namespace

void ToFuseAttr(const struct stat& st, fuse_attr* a) {
  std::memset(a, 0, sizeof(*a));
  a->ino = st.st_ino;
  a->mode = st.st_mode;
  a->nlink = static_cast<uint32_t>(st.st_nlink);
  a->uid = st.st_uid;
  a->gid = st.st_gid;
  a->rdev = static_cast<uint32_t>(st.st_rdev);
  a->size = static_cast<uint64_t>(st.st_size);
  a->blocks = static_cast<uint64_t>(st.st_blocks);
  a->blksize = static_cast<uint32_t>(st.st_blksize);
  a->atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a->mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a->ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a->atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a->mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a->ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
}

wire::InitWants Ops::Wants() const {
  wire::InitWants w;
  // Asynchronous and parallel reads and lookups, readdirplus when it pays, automatic page
  // invalidation when attributes change, 1 MiB requests. No ATOMIC_O_TRUNC: the kernel truncates
  // through SETATTR. OPEN is always sent: it is where a snapshot refuses writing. The writeback
  // cache only where one node is the only writer.
  // HANDLE_KILLPRIV_V2: the kernel, which knows whether the caller may keep them (CAP_FSETID),
  // flags a write, truncate or chown that must clear set-user-ID and set-group-ID, and Cairn
  // clears them (KillPrivileges). In exchange the kernel stops asking for security.capability
  // before every write(2): once it has seen a file without set-ID bits or capability it
  // remembers (S_NOSEC), where it sent one GETXATTR per write(2) before.
  w.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS |
            FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES |
            FUSE_IOCTL_DIR | FUSE_HANDLE_KILLPRIV_V2 | FUSE_INIT_EXT;
  if (options_.writeback_cache) w.flags |= FUSE_WRITEBACK_CACHE;
  w.max_write = 1 << 20;
  w.max_readahead = 1 << 20;
  return w;
}

Result<std::optional<uint32_t>> Ops::KillPrivileges(uint64_t ino) {
  auto st = fs_->GetAttr(ino);
  if (!st) return Err(st.error());
  if (!S_ISREG(st->st_mode)) return std::nullopt;
  constexpr std::string_view kCapability = "security.capability";
  if (fs_->GetXattr(ino, kCapability)) CAIRN_RETURN_IF_ERROR(fs_->RemoveXattr(ino, kCapability));
  uint32_t kill = S_ISUID;
  if (st->st_mode & S_IXGRP) kill |= S_ISGID;  // without group execute, set-group-ID stays
  if ((st->st_mode & kill) == 0) return std::nullopt;
  return static_cast<uint32_t>(st->st_mode & ~kill);
}

Status Ops::KillPrivilegesNow(uint64_t ino) {
  CAIRN_ASSIGN_OR_RETURN(auto mode, KillPrivileges(ino));
  if (!mode) return Status::Ok();
  fs::SetAttrRequest r;
  r.mode = *mode;
  auto set = fs_->SetAttr(ino, r);
  return set ? Status::Ok() : set.error();
}

double Ops::AttrTimeout(uint64_t ino) const {
  return fs_->KernelTimeout(options_.attr_timeout_s, ino);
}
double Ops::EntryTimeout(uint64_t ino) const {
  return fs_->KernelTimeout(options_.entry_timeout_s, ino);
}

size_t Ops::PutEntry(char* out, const struct stat* st) const {
  auto* e = At<fuse_entry_out>(out);
  std::memset(e, 0, sizeof(*e));
  if (st == nullptr) {
    // A negative entry: the kernel remembers the absence for the entry timeout.
    SplitTimeout(EntryTimeout(0), &e->entry_valid, &e->entry_valid_nsec);
    return sizeof(*e);
  }
  e->nodeid = st->st_ino;
  e->generation = 1;  // inode numbers are never reused
  SplitTimeout(EntryTimeout(st->st_ino), &e->entry_valid, &e->entry_valid_nsec);
  SplitTimeout(AttrTimeout(st->st_ino), &e->attr_valid, &e->attr_valid_nsec);
  ToFuseAttr(*st, &e->attr);
  return sizeof(*e);
}

void Ops::ReplyEntry(Reply& reply, const Result<struct stat>& st) const {
  if (!st) {
    reply.Send(ToErrno(st.error().code()), 0);
    return;
  }
  reply.Send(0, PutEntry(reply.Body(), &*st));
}

void Ops::ReplyAttr(Reply& reply, uint64_t ino, const Result<struct stat>& st) const {
  if (!st) {
    reply.Send(ToErrno(st.error().code()), 0);
    return;
  }
  auto* o = At<fuse_attr_out>(reply.Body());
  std::memset(o, 0, sizeof(*o));
  SplitTimeout(AttrTimeout(ino), &o->attr_valid, &o->attr_valid_nsec);
  ToFuseAttr(*st, &o->attr);
  reply.Send(0, sizeof(*o));
}

void Ops::ReplyBytes(Reply& reply, uint64_t size, const std::string& bytes) const {
  // getxattr/listxattr: size 0 asks how large; a smaller buffer is ERANGE.
  if (size == 0) {
    auto* o = At<fuse_getxattr_out>(reply.Body());
    std::memset(o, 0, sizeof(*o));
    o->size = static_cast<uint32_t>(bytes.size());
    reply.Send(0, sizeof(*o));
    return;
  }
  if (size < bytes.size() || bytes.size() > reply.Capacity()) {
    reply.Send(ERANGE, 0);
    return;
  }
  std::memcpy(reply.Body(), bytes.data(), bytes.size());
  reply.Send(0, bytes.size());
}

void Ops::ReadDir(const wire::Request& req, Reply& reply, bool plus) {
  const auto& in = req.As<fuse_read_in>();
  auto entries = fs_->DirHandle(in.fh);
  if (!entries) {
    reply.Send(ToErrno(entries.error().code()), 0);
    return;
  }
  char* buf = reply.Body();
  const size_t size = std::min<size_t>(in.size, reply.Capacity());
  size_t used = 0;
  for (size_t i = static_cast<size_t>(in.offset); i < (*entries)->size(); ++i) {
    const fs::DirEntry& d = (**entries)[i];
    const size_t namelen = d.name.size();
    const size_t need = plus ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen)
                             : FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
    if (need > size - used) break;
    char* at = buf + used;
    std::memset(at, 0, need);
    fuse_dirent* dirent;
    if (plus) {
      auto* dp = At<fuse_direntplus>(at);
      dirent = &dp->dirent;
      if (d.name == "." || d.name == "..") {
        // No entry for the kernel to keep, only the name's inode and type.
        dp->entry_out.attr.ino = d.ino;
        dp->entry_out.attr.mode = S_IFDIR;
      } else {
        auto st = fs_->Remember(d.ino);  // readdirplus hands the kernel one reference
        if (!st) continue;               // removed since opendir
        PutEntry(reinterpret_cast<char*>(&dp->entry_out), &*st);
      }
    } else {
      dirent = At<fuse_dirent>(at);
    }
    dirent->ino = d.ino;
    dirent->off = i + 1;
    dirent->namelen = static_cast<uint32_t>(namelen);
    dirent->type = d.type;
    std::memcpy(dirent->name, d.name.data(), namelen);
    used += need;
  }
  reply.Send(0, used);
}

namespace {

// --debug: each request and what answered it, on the log.
class LoggedReply final : public Reply {
 public:
  LoggedReply(const wire::Request& req, Reply& inner) : req_(req), inner_(inner) {}
  char* Body() override { return inner_.Body(); }
  size_t Capacity() const override { return inner_.Capacity(); }
  int Send(int error, size_t len) override {
    const int r = inner_.Send(error, len);
    log::Info("FUSE {} #{} node {}: {}{}", wire::OpcodeName(req_.opcode()), req_.unique(),
              req_.nodeid(), error == 0 ? fmt::format("{} bytes", len) : std::strerror(error),
              r == 0 ? "" : fmt::format(" (the kernel: {})", std::strerror(r)));
    return r;
  }

 private:
  const wire::Request& req_;
  Reply& inner_;
};

}  // namespace

bool Ops::Serve(const wire::Request& req, Reply& reply) {
  if (!options_.debug) return ServeOne(req, reply);
  LoggedReply logged(req, reply);
  const bool answered = ServeOne(req, logged);
  if (!answered) {
    log::Info("FUSE {} #{} node {}: no answer", wire::OpcodeName(req.opcode()), req.unique(),
              req.nodeid());
  }
  return answered;
}

bool Ops::ServeOne(const wire::Request& req, Reply& reply) {
  const uint64_t ino = req.nodeid();
  std::string_view rest = req.rest;
  switch (req.opcode()) {
    case FUSE_LOOKUP: {
      OpTimer timer(kLookup);
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      auto st = fs_->Lookup(ino, *name);
      if (!st && st.error().code() == Code::kNotFound) {
        reply.Send(0, PutEntry(reply.Body(), nullptr));
      } else {
        ReplyEntry(reply, st);
      }
      return true;
    }
    case FUSE_FORGET: {
      OpTimer timer(kForget);
      fs_->Forget(ino, req.As<fuse_forget_in>().nlookup);
      return false;
    }
    case FUSE_BATCH_FORGET: {
      OpTimer timer(kForget);
      const uint32_t count = req.As<fuse_batch_forget_in>().count;
      const size_t whole = rest.size() / sizeof(fuse_forget_one);
      if (whole < count) {
        log::Warn("FUSE BATCH_FORGET request {} lists {} inodes in room for {}", req.unique(),
                  count, whole);
      }
      for (size_t i = 0; i < std::min<size_t>(count, whole); ++i) {
        fuse_forget_one one;
        std::memcpy(&one, rest.data() + i * sizeof(one), sizeof(one));
        fs_->Forget(one.nodeid, one.nlookup);
      }
      return false;
    }
    case FUSE_INTERRUPT:
      // Cairn's operations are short and not interruptible: each runs to its reply.
      return false;
    case FUSE_GETATTR: {
      OpTimer timer(kGetAttr);
      ReplyAttr(reply, ino, fs_->GetAttr(ino));
      return true;
    }
    case FUSE_SETATTR: {
      OpTimer timer(kSetAttr);
      const auto& a = req.As<fuse_setattr_in>();
      fs::SetAttrRequest r;
      if (a.valid & FATTR_MODE) r.mode = a.mode;
      if (a.valid & FATTR_UID) r.uid = a.uid;
      if (a.valid & FATTR_GID) r.gid = a.gid;
      if (a.valid & FATTR_SIZE) r.size = a.size;
      if (a.valid & FATTR_ATIME_NOW) {
        r.atime_now = true;
      } else if (a.valid & FATTR_ATIME) {
        r.atime = meta::Timespec{static_cast<int64_t>(a.atime), a.atimensec};
      }
      if (a.valid & FATTR_MTIME_NOW) {
        r.mtime_now = true;
      } else if (a.valid & FATTR_MTIME) {
        r.mtime = meta::Timespec{static_cast<int64_t>(a.mtime), a.mtimensec};
      }
      if ((a.valid & FATTR_KILL_SUIDGID) && !r.mode) {
        // A chown, or a truncate by a caller who may not keep them: the set-ID bits go in the
        // same change, the capability just before it.
        auto mode = KillPrivileges(ino);
        if (!mode) return reply.Send(Errno(mode.error()), 0), true;
        r.mode = *mode;
      }
      ReplyAttr(reply, ino, fs_->SetAttr(ino, r));
      return true;
    }
    case FUSE_READLINK: {
      OpTimer timer(kReadlink);
      auto target = fs_->Readlink(ino);
      if (!target) return reply.Send(ToErrno(target.error().code()), 0), true;
      if (target->size() > reply.Capacity()) return reply.Send(ENAMETOOLONG, 0), true;
      std::memcpy(reply.Body(), target->data(), target->size());
      reply.Send(0, target->size());
      return true;
    }
    case FUSE_MKNOD: {
      OpTimer timer(kMknod);
      const auto& a = req.As<fuse_mknod_in>();
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      ReplyEntry(reply, fs_->Mknod(Caller(req), ino, *name, a.mode, a.rdev));
      return true;
    }
    case FUSE_MKDIR: {
      OpTimer timer(kMkdir);
      const auto& a = req.As<fuse_mkdir_in>();
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      ReplyEntry(reply, fs_->Mkdir(Caller(req), ino, *name, a.mode));
      return true;
    }
    case FUSE_UNLINK:
    case FUSE_RMDIR: {
      const bool dir = req.opcode() == FUSE_RMDIR;
      OpTimer timer(dir ? kRmdir : kUnlink);
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      reply.Send(Errno(dir ? fs_->Rmdir(ino, *name) : fs_->Unlink(ino, *name)), 0);
      return true;
    }
    case FUSE_SYMLINK: {
      OpTimer timer(kSymlink);
      auto name = wire::TakeString(&rest);
      auto target = name ? wire::TakeString(&rest) : name;
      if (!name || !target) return Malformed(req, reply, "no name or target");
      ReplyEntry(reply, fs_->Symlink(Caller(req), ino, *name, *target));
      return true;
    }
    case FUSE_RENAME:
    case FUSE_RENAME2: {
      OpTimer timer(kRename);
      uint64_t newdir;
      unsigned flags = 0;
      if (req.opcode() == FUSE_RENAME) {
        newdir = req.As<fuse_rename_in>().newdir;
      } else {
        newdir = req.As<fuse_rename2_in>().newdir;
        flags = req.As<fuse_rename2_in>().flags;
      }
      auto from = wire::TakeString(&rest);
      auto to = from ? wire::TakeString(&rest) : from;
      if (!from || !to) return Malformed(req, reply, "no names");
      reply.Send(Errno(fs_->Rename(ino, *from, newdir, *to, flags)), 0);
      return true;
    }
    case FUSE_LINK: {
      OpTimer timer(kLink);
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      ReplyEntry(reply, fs_->Link(req.As<fuse_link_in>().oldnodeid, ino, *name));
      return true;
    }
    case FUSE_OPEN: {
      OpTimer timer(kOpen);
      const auto& a = req.As<fuse_open_in>();
      Status st = fs_->Open(ino, static_cast<int>(a.flags));
      if (!st.ok()) return reply.Send(Errno(st), 0), true;
      if (a.open_flags & FUSE_OPEN_KILL_SUIDGID) {
        // An open that truncates, by a caller who may not keep the set-ID bits.
        if (Status k = KillPrivilegesNow(ino); !k.ok()) {
          (void)fs_->Release(ino);
          return reply.Send(Errno(k), 0), true;
        }
      }
      auto* o = At<fuse_open_out>(reply.Body());
      std::memset(o, 0, sizeof(*o));
      if (options_.keep_cache) o->open_flags = FOPEN_KEEP_CACHE;
      if (reply.Send(0, sizeof(*o)) == ENOENT) (void)fs_->Release(ino);  // interrupted
      return true;
    }
    case FUSE_CREATE: {
      OpTimer timer(kCreate);
      const auto& a = req.As<fuse_create_in>();
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      auto st = fs_->Create(Caller(req), ino, *name, a.mode, static_cast<int>(a.flags));
      if (!st) return reply.Send(ToErrno(st.error().code()), 0), true;
      char* body = reply.Body();
      const size_t n = PutEntry(body, &*st);
      auto* o = At<fuse_open_out>(body + n);
      std::memset(o, 0, sizeof(*o));
      if (options_.keep_cache) o->open_flags = FOPEN_KEEP_CACHE;
      if (reply.Send(0, n + sizeof(*o)) == ENOENT) {
        // The kernel did not take the handle (interrupted): undo the open and the lookup.
        (void)fs_->Release(st->st_ino);
        fs_->Forget(st->st_ino, 1);
      }
      return true;
    }
    case FUSE_READ: {
      OpTimer timer(kRead);
      const auto& a = req.As<fuse_read_in>();
      const size_t size = std::min<size_t>(a.size, reply.Capacity());
      auto n = fs_->Read(ino, a.offset, size, reply.Body());
      if (!n) return reply.Send(ToErrno(n.error().code()), 0), true;
      reply.Send(0, *n);
      return true;
    }
    case FUSE_WRITE: {
      OpTimer timer(kWrite);
      const auto& a = req.As<fuse_write_in>();
      if (rest.size() < a.size) return Malformed(req, reply, "data shorter than its size");
      if (a.write_flags & FUSE_WRITE_KILL_SUIDGID) {
        // The writer may not keep set-user-ID and set-group-ID (the kernel checked CAP_FSETID).
        if (Status k = KillPrivilegesNow(ino); !k.ok()) return reply.Send(Errno(k), 0), true;
      }
      auto n = fs_->Write(ino, a.offset, rest.data(), a.size);
      if (!n) return reply.Send(ToErrno(n.error().code()), 0), true;
      auto* o = At<fuse_write_out>(reply.Body());
      std::memset(o, 0, sizeof(*o));
      o->size = static_cast<uint32_t>(*n);
      reply.Send(0, sizeof(*o));
      return true;
    }
    case FUSE_STATFS: {
      OpTimer timer(kStatFs);
      auto st = fs_->StatFs();
      if (!st) return reply.Send(ToErrno(st.error().code()), 0), true;
      auto* o = At<fuse_statfs_out>(reply.Body());
      std::memset(o, 0, sizeof(*o));
      o->st.blocks = st->f_blocks;
      o->st.bfree = st->f_bfree;
      o->st.bavail = st->f_bavail;
      o->st.files = st->f_files;
      o->st.ffree = st->f_ffree;
      o->st.bsize = static_cast<uint32_t>(st->f_bsize);
      o->st.namelen = static_cast<uint32_t>(st->f_namemax);
      o->st.frsize = static_cast<uint32_t>(st->f_frsize);
      reply.Send(0, sizeof(*o));
      return true;
    }
    case FUSE_RELEASE: {
      OpTimer timer(kRelease);
      reply.Send(Errno(fs_->Release(ino)), 0);
      return true;
    }
    case FUSE_FSYNC: {
      OpTimer timer(kFsync);
      reply.Send(Errno(fs_->Fsync(ino)), 0);
      return true;
    }
    case FUSE_FSYNCDIR: {
      OpTimer timer(kFsyncDir);
      reply.Send(Errno(fs_->FsyncDir(ino)), 0);
      return true;
    }
    case FUSE_OPENDIR: {
      OpTimer timer(kOpenDir);
      auto h = fs_->OpenDir(ino);
      if (!h) return reply.Send(ToErrno(h.error().code()), 0), true;
      auto* o = At<fuse_open_out>(reply.Body());
      std::memset(o, 0, sizeof(*o));
      o->fh = *h;
      // Where this node is the only writer, the kernel keeps the listing it read in its page
      // cache across opens: every change through the mount invalidates it, and so does Cairn's
      // own (an import) through notify_inval_inode. Not .snapshots, whose entries come and go
      // without the kernel knowing.
      if (options_.keep_cache && !fs::IsSnapIno(ino)) {
        o->open_flags = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
      }
      if (reply.Send(0, sizeof(*o)) == ENOENT) fs_->ReleaseDir(*h);  // interrupted
      return true;
    }
    case FUSE_READDIR: {
      OpTimer timer(kReadDir);
      ReadDir(req, reply, false);
      return true;
    }
    case FUSE_READDIRPLUS: {
      OpTimer timer(kReadDirPlus);
      ReadDir(req, reply, true);
      return true;
    }
    case FUSE_RELEASEDIR: {
      OpTimer timer(kReleaseDir);
      fs_->ReleaseDir(req.As<fuse_release_in>().fh);
      reply.Send(0, 0);
      return true;
    }
    case FUSE_SETXATTR: {
      OpTimer timer(kSetXattr);
      // The compatible form (without FUSE_SETXATTR_EXT) is the first two fields.
      const auto& a = req.As<fuse_setxattr_in>();
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      if (rest.size() < a.size) return Malformed(req, reply, "value shorter than its size");
      reply.Send(
          Errno(fs_->SetXattr(ino, *name, rest.substr(0, a.size), static_cast<int>(a.flags))), 0);
      return true;
    }
    case FUSE_GETXATTR: {
      OpTimer timer(kGetXattr);
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      auto v = fs_->GetXattr(ino, *name);
      if (!v) return reply.Send(ToErrno(v.error().code()), 0), true;
      ReplyBytes(reply, req.As<fuse_getxattr_in>().size, *v);
      return true;
    }
    case FUSE_LISTXATTR: {
      OpTimer timer(kListXattr);
      auto names = fs_->ListXattr(ino);
      if (!names) return reply.Send(ToErrno(names.error().code()), 0), true;
      std::string out;
      for (const auto& n : *names) {
        out.append(n);
        out.push_back('\0');
      }
      ReplyBytes(reply, req.As<fuse_getxattr_in>().size, out);
      return true;
    }
    case FUSE_REMOVEXATTR: {
      OpTimer timer(kRemoveXattr);
      auto name = wire::TakeString(&rest);
      if (!name) return Malformed(req, reply, "no name");
      reply.Send(Errno(fs_->RemoveXattr(ino, *name)), 0);
      return true;
    }
    case FUSE_ACCESS: {
      OpTimer timer(kAccess);
      // Only reached without default_permissions; mirrors the kernel's generic_permission.
      const uint32_t mask = req.As<fuse_access_in>().mask;
      auto st = fs_->GetAttr(ino);
      if (!st) return reply.Send(ToErrno(st.error().code()), 0), true;
      if (mask == F_OK) return reply.Send(0, 0), true;
      if (req.header.uid == 0) {
        const bool exec_ok = !(mask & X_OK) || S_ISDIR(st->st_mode) || (st->st_mode & 0111);
        return reply.Send(exec_ok ? 0 : EACCES, 0), true;
      }
      unsigned bits = st->st_mode & 07;
      if (req.header.uid == st->st_uid) {
        bits = (st->st_mode >> 6) & 07;
      } else if (req.header.gid == st->st_gid) {
        bits = (st->st_mode >> 3) & 07;
      }
      const bool ok = ((mask & R_OK) == 0 || (bits & 4)) && ((mask & W_OK) == 0 || (bits & 2)) &&
                      ((mask & X_OK) == 0 || (bits & 1));
      reply.Send(ok ? 0 : EACCES, 0);
      return true;
    }
    case FUSE_FALLOCATE: {
      OpTimer timer(kFallocate);
      const auto& a = req.As<fuse_fallocate_in>();
      if (static_cast<int64_t>(a.offset) < 0 || static_cast<int64_t>(a.length) <= 0) {
        return reply.Send(EINVAL, 0), true;
      }
      reply.Send(Errno(fs_->Fallocate(ino, static_cast<int>(a.mode), a.offset, a.length)), 0);
      return true;
    }
    case FUSE_DESTROY:
      reply.Send(0, 0);
      return true;
    case FUSE_INIT:
      return Malformed(req, reply, "INIT after the session began");
    default:
      reply.Send(ENOSYS, 0);
      return true;
  }
}

}  // namespace cairn::fuse
