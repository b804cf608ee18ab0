#include "common/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cairn {

Status ErrnoStatus(std::string_view what) { return ErrnoStatus(errno, what); }

Status ErrnoStatus(int e, std::string_view what) {
  Code code = Code::kIo;
  switch (e) {
    case ENOENT:
      code = Code::kNotFound;
      break;
    case EEXIST:
      code = Code::kExists;
      break;
    case ENOTDIR:
      code = Code::kNotDir;
      break;
    case EISDIR:
      code = Code::kIsDir;
      break;
    case ENOTEMPTY:
      code = Code::kNotEmpty;
      break;
    case EACCES:
      code = Code::kAccess;
      break;
    case EPERM:
      code = Code::kPermission;
      break;
    case ENOSPC:
      code = Code::kNoSpace;
      break;
    case EINVAL:
      code = Code::kInvalid;
      break;
    case EBUSY:
      code = Code::kBusy;
      break;
    default:
      break;
  }
  return Status(code, fmt::format("{}: {}", what, std::strerror(e)));
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

Result<File> File::Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Err(ErrnoStatus("open " + path));
  return File(fd, path);
}

Result<size_t> File::ReadAt(uint64_t offset, char* buf, size_t n) const {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err(ErrnoStatus("read " + path_));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

Status File::WriteAt(uint64_t offset, const char* buf, size_t n) const {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path_);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status File::WriteVAt(uint64_t offset, const struct iovec* iov, int count, size_t total) const {
  ssize_t r;
  do {
    r = ::pwritev(fd_, iov, count, static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus("write " + path_);
  if (static_cast<size_t>(r) == total) return Status::Ok();
  // A short write: finish buffer by buffer from where it stopped.
  size_t skip = static_cast<size_t>(r);
  uint64_t at = offset + skip;
  for (int i = 0; i < count; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    const char* p = static_cast<const char*>(iov[i].iov_base) + skip;
    size_t len = iov[i].iov_len - skip;
    CAIRN_RETURN_IF_ERROR(WriteAt(at, p, len));
    at += len;
    skip = 0;
  }
  return Status::Ok();
}

Status File::DataSync() const {
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_);
  return Status::Ok();
}

void File::DropCleanPages() const { (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); }

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Err(ErrnoStatus("stat " + path_));
  return static_cast<uint64_t>(st.st_size);
}

Status SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory " + path);
  int r = ::fsync(fd);
  Status st = r == 0 ? Status::Ok() : ErrnoStatus("fsync directory " + path);
  ::close(fd);
  return st;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(File f, File::Open(path, O_RDONLY));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  std::string out(size, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t n, f.ReadAt(0, out.data(), size));
  out.resize(n);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp";
  {
    auto f = File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!f) return f.error();
    CAIRN_RETURN_IF_ERROR(f->WriteAt(0, contents.data(), contents.size()));
    if (::fsync(f->fd()) != 0) return ErrnoStatus("fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + tmp);
  auto slash = path.rfind('/');
  return SyncDir(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
}

Status RemoveTree(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT) return Status::Ok();
    if (errno == ENOTDIR) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove " + path);
      return Status::Ok();
    }
    return ErrnoStatus("open " + path);
  }
  Status st;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string child = path + "/" + std::string(n);
    struct stat sb;
    if (::lstat(child.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
      st = RemoveTree(child);
    } else if (::unlink(child.c_str()) != 0 && errno != ENOENT) {
      st = ErrnoStatus("remove " + child);
    }
    if (!st.ok()) break;
  }
  ::closedir(d);
  if (!st.ok()) return st;
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove " + path);
  return Status::Ok();
}

}  // namespace cairn
