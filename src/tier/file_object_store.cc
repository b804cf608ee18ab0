#include "tier/file_object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <vector>

#include "common/file.h"

namespace cairn::tier {
namespace {

constexpr std::string_view kTmpPrefix = ".cairn-tmp-";

std::string EtagOf(const struct stat& st) {
  return fmt::format("{:x}-{:x}-{:x}", st.st_size,
                     static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                         static_cast<uint64_t>(st.st_mtim.tv_nsec),
                     st.st_ino);
}

Status MakeParents(const std::string& root, std::string_view key) {
  size_t pos = 0;
  while ((pos = key.find('/', pos)) != std::string_view::npos) {
    std::string dir = root + "/" + std::string(key.substr(0, pos));
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + dir);
    ++pos;
  }
  return Status::Ok();
}

class FileObjectStore final : public ObjectStore {
 public:
  explicit FileObjectStore(std::string root) : root_(std::move(root)) {}

  Status Put(std::string_view key, std::string_view data, const CallOptions&) override {
    return Write(key, [&](const File& f) { return f.WriteAt(0, data.data(), data.size()); });
  }

  Status PutFile(std::string_view key, const std::string& path, uint64_t offset, uint64_t length,
                 const CallOptions&) override {
    CAIRN_ASSIGN_OR_RETURN(File src, File::Open(path, O_RDONLY));
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, src.Size());
    if (offset == 0 && length == size) {
      // A whole immutable file (a sealed segment) on the same file system: link it, no copy.
      // The store then shares the bytes with NVMe, as the embedded default shares the disk.
      Status linked = Link(key, path);
      if (linked.ok()) return linked;
    }
    return Write(key, [&](const File& f) -> Status {
      loff_t in = static_cast<loff_t>(offset);
      loff_t out = 0;
      uint64_t left = length;
      while (left > 0) {
        ssize_t n = ::copy_file_range(src.fd(), &in, f.fd(), &out, left, 0);
        if (n < 0) return ErrnoStatus("copy " + path);
        if (n == 0) return Status(Code::kIo, path + " is shorter than expected");
        left -= static_cast<uint64_t>(n);
      }
      return Status::Ok();
    });
  }

  Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                          std::string_view if_match, const CallOptions&) override {
    CAIRN_ASSIGN_OR_RETURN(File f, OpenObject(key, if_match));
    return f.ReadAt(offset, out, length);
  }

  Result<uint64_t> GetToFile(std::string_view key, const std::string& path,
                             std::string_view if_match, const CallOptions&) override {
    CAIRN_ASSIGN_OR_RETURN(File src, OpenObject(key, if_match));
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, src.Size());
    CAIRN_ASSIGN_OR_RETURN(File dst, File::Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    loff_t in = 0;
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = ::copy_file_range(src.fd(), &in, dst.fd(), nullptr, left, 0);
      if (n < 0) return Err(ErrnoStatus("copy to " + path));
      if (n == 0) return Err(Code::kCorruption, "object " + std::string(key) + " shrank");
      left -= static_cast<uint64_t>(n);
    }
    return size;
  }

  Result<ObjectInfo> Head(std::string_view key, const CallOptions&) override {
    CAIRN_RETURN_IF_ERROR(CheckKey(key));
    struct stat st;
    std::string path = Path(key);
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Err(Code::kNotFound, "object " + std::string(key));
    }
    return ObjectInfo{std::string(key), static_cast<uint64_t>(st.st_size), EtagOf(st),
                      st.st_mtim.tv_sec};
  }

  Result<ListPage> List(std::string_view prefix, std::string_view delimiter, std::string_view token,
                        int max_keys, const CallOptions&) override {
    if (!delimiter.empty() && delimiter != "/") {
      return Err(Code::kNotSupported, "file object stores list with delimiter '/' only");
    }
    ListPage page;
    const size_t slash = prefix.rfind('/');
    const std::string dir_key =
        slash == std::string_view::npos ? "" : std::string(prefix.substr(0, slash + 1));
    const std::string start(prefix.substr(slash == std::string_view::npos ? 0 : slash + 1));
    Walk(dir_key, start, !delimiter.empty(), std::string(token), std::max(1, max_keys), &page);
    return page;
  }

  // The token of this store is the last key listed: start_after serves as one.
  Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after, int max_keys,
                             const CallOptions& o) override {
    return List(prefix, "", start_after, max_keys, o);
  }

  Status Delete(std::string_view key, const CallOptions&) override {
    CAIRN_RETURN_IF_ERROR(CheckKey(key));
    std::string path = Path(key);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path);
    return Status::Ok();
  }

  std::string Describe() const override { return "file://" + root_; }

 private:
  std::string Path(std::string_view key) const { return root_ + "/" + std::string(key); }

  Result<File> OpenObject(std::string_view key, std::string_view if_match) {
    CAIRN_RETURN_IF_ERROR(CheckKey(key));
    std::string path = Path(key);
    auto f = File::Open(path, O_RDONLY);
    if (!f) {
      if (f.error().code() == Code::kNotFound) {
        return Err(Code::kNotFound, "object " + std::string(key));
      }
      return Err(f.error());
    }
    if (!if_match.empty()) {
      struct stat st;
      if (::fstat(f->fd(), &st) != 0) return Err(ErrnoStatus("fstat " + path));
      if (EtagOf(st) != if_match) {
        return Err(Code::kChanged, "object " + std::string(key) + " changed (ETag " + EtagOf(st) +
                                       ", expected " + std::string(if_match) + ")");
      }
    }
    return f;
  }

  // Publishes the file at path under key by a hard link (kCrossDevice when on another file
  // system).
  Status Link(std::string_view key, const std::string& path) {
    CAIRN_RETURN_IF_ERROR(CheckKey(key));
    CAIRN_RETURN_IF_ERROR(MakeParents(root_, key));
    std::string dst = Path(key);
    const size_t slash = dst.rfind('/');
    std::string tmp = fmt::format("{}{}{}.{}", dst.substr(0, slash + 1), kTmpPrefix, ::getpid(),
                                  next_tmp_.fetch_add(1));
    if (::link(path.c_str(), tmp.c_str()) != 0) {
      return Status(errno == EXDEV ? Code::kCrossDevice : Code::kIo, "link " + path);
    }
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      Status st = ErrnoStatus("rename " + dst);
      ::unlink(tmp.c_str());
      return st;
    }
    return SyncDir(dst.substr(0, slash));
  }

  template <typename Fill>
  Status Write(std::string_view key, Fill&& fill) {
    CAIRN_RETURN_IF_ERROR(CheckKey(key));
    CAIRN_RETURN_IF_ERROR(MakeParents(root_, key));
    std::string path = Path(key);
    const size_t slash = path.rfind('/');
    std::string tmp = fmt::format("{}{}{}.{}", path.substr(0, slash + 1), kTmpPrefix, ::getpid(),
                                  next_tmp_.fetch_add(1));
    Status st;
    {
      CAIRN_ASSIGN_OR_RETURN(File f, File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
      st = fill(f);
      if (st.ok()) st = f.DataSync();
    }
    if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("rename " + path);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    return SyncDir(path.substr(0, slash));
  }

  // Lists, in key order, the keys under directory key dir_key (ends in '/' or is empty) whose
  // next component starts with `start`, after token. Recursive unless rolling up prefixes.
  // Returns false once the page is full.
  bool Walk(const std::string& dir_key, const std::string& start, bool rollup,
            const std::string& token, int max_keys, ListPage* page) {
    std::string dir = dir_key.empty() ? root_ : root_ + "/" + dir_key;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return true;
    std::vector<std::pair<std::string, bool>> entries;  // name, is directory
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name.starts_with(kTmpPrefix)) continue;
      if (!name.starts_with(start)) continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::stat((dir + "/" + std::string(name)).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      entries.emplace_back(std::string(name), is_dir);
    }
    ::closedir(d);
    // Key order: a directory "a" sorts as "a/" among its siblings.
    auto sort_key = [](const std::pair<std::string, bool>& e) {
      return e.second ? e.first + "/" : e.first;
    };
    std::sort(entries.begin(), entries.end(),
              [&](const auto& a, const auto& b) { return sort_key(a) < sort_key(b); });
    for (const auto& entry : entries) {
      std::string key = dir_key + sort_key(entry);
      if (entry.second) {
        if (rollup) {
          if (key <= token) continue;
          if (Full(page, max_keys, key)) return false;
          page->prefixes.push_back(key);
          continue;
        }
        // Skip subtrees wholly before the token.
        if (key < token && !token.starts_with(key)) continue;
        if (!Walk(key, "", rollup, token, max_keys, page)) return false;
        continue;
      }
      if (key <= token) continue;
      struct stat st;
      if (::stat((root_ + "/" + key).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (Full(page, max_keys, key)) return false;
      page->objects.push_back(
          {key, static_cast<uint64_t>(st.st_size), EtagOf(st), st.st_mtim.tv_sec});
    }
    return true;
  }

  // True (and sets the continuation token) when the page already holds max_keys entries.
  static bool Full(ListPage* page, int max_keys, const std::string&) {
    const size_t n = page->objects.size() + page->prefixes.size();
    if (n < static_cast<size_t>(max_keys)) return false;
    const std::string& last_obj = page->objects.empty() ? "" : page->objects.back().key;
    const std::string& last_pre = page->prefixes.empty() ? "" : page->prefixes.back();
    page->next_token = std::max(last_obj, last_pre);
    return true;
  }

  const std::string root_;
  std::atomic<uint64_t> next_tmp_{0};
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::string& root) {
  if (root.empty() || root.front() != '/') {
    return Err(Code::kInvalid, "file object store needs an absolute path, got '" + root + "'");
  }
  // Create the directory and its parents.
  for (size_t pos = 1; pos <= root.size(); ++pos) {
    if (pos == root.size() || root[pos] == '/') {
      std::string dir = root.substr(0, pos);
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return Err(ErrnoStatus("mkdir " + dir));
    }
  }
  struct stat st;
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Err(Code::kInvalid, "file object store root " + root + " is not a directory");
  }
  return std::unique_ptr<ObjectStore>(new FileObjectStore(root));
}

}  // namespace cairn::tier
