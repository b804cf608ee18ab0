// POSIX behaviour of a real Cairn mount: namespace, data, metadata, permissions, persistence and
// the admin commands that read a live or offline file system.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

using std::chrono::milliseconds;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr long kFuseSuperMagic = 0x65735546;

class PosixTest : public MountedTest {};

// ListDir, with a failure turned into a one-element list naming the errno, for EXPECT_EQ.
std::vector<std::string> Entries(const std::string& path) {
  auto names = ListDir(path);
  if (!names) return {"<" + ErrnoName(names.error()) + ">"};
  return *names;
}

// ReadAt, with a failure turned into "<ERRNO>", for SameBytes.
std::string Read(int fd, size_t size, off_t offset) {
  auto data = ReadAt(fd, size, offset);
  if (!data) return "<" + ErrnoName(data.error()) + ">";
  return *data;
}

std::optional<struct stat> Stat(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

std::optional<struct stat> Lstat(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

// stat() that records a test failure (and returns a zeroed struct) when the call fails.
struct stat StatOrFail(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "stat " << path << ": " << ErrnoName(errno);
  }
  return st;
}

// The d_ino readdir() gives for "..", if the file system lists "..".
std::optional<ino_t> DotDotInodeFromReaddir(const std::string& dir_path) {
  DIR* dir = opendir(dir_path.c_str());
  if (dir == nullptr) return std::nullopt;
  std::optional<ino_t> inode;
  while (dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, "..") == 0) inode = entry->d_ino;
  }
  closedir(dir);
  return inode;
}

int FsyncPath(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  if (fsync(fd.get()) != 0) return errno;
  return 0;
}

// Drops the cached pages of path, so that the next read goes to the daemon.
void DropCachePath(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) DropCache(fd.get());
}

// Content check that first evicts cached pages and also checks st_size.
::testing::AssertionResult FileHasContentUncached(const std::string& path,
                                                  std::string_view expected) {
  DropCachePath(path);
  auto st = Stat(path);
  if (!st) return ::testing::AssertionFailure() << "stat " << path << ": " << ErrnoName(errno);
  if (static_cast<size_t>(st->st_size) != expected.size()) {
    return ::testing::AssertionFailure()
           << path << ": st_size " << st->st_size << ", expected " << expected.size();
  }
  return FileHasContent(path, expected);
}

std::vector<std::string> ListXattrNames(const std::string& path) {
  ssize_t size = listxattr(path.c_str(), nullptr, 0);
  if (size < 0) {
    ADD_FAILURE() << "listxattr " << path << ": " << ErrnoName(errno);
    return {};
  }
  std::string buffer(static_cast<size_t>(size), '\0');
  size = listxattr(path.c_str(), buffer.data(), buffer.size());
  if (size < 0) {
    ADD_FAILURE() << "listxattr " << path << ": " << ErrnoName(errno);
    return {};
  }
  buffer.resize(static_cast<size_t>(size));
  std::vector<std::string> names;
  size_t start = 0;
  while (start < buffer.size()) {
    size_t end = buffer.find('\0', start);
    if (end == std::string::npos) end = buffer.size();
    std::string name = buffer.substr(start, end - start);
    // Only our namespace: the kernel or a security module may add others.
    if (name.starts_with("user.")) names.push_back(name);
    start = end + 1;
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The value of an xattr, or the errno name of the failure.
std::string GetXattr(const std::string& path, const std::string& name) {
  ssize_t size = getxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (size < 0) return "<" + ErrnoName(errno) + ">";
  std::string value(static_cast<size_t>(size), '\0');
  size = getxattr(path.c_str(), name.c_str(), value.data(), value.size());
  if (size < 0) return "<" + ErrnoName(errno) + ">";
  value.resize(static_cast<size_t>(size));
  return value;
}

int SetXattr(const std::string& path, const std::string& name, std::string_view value,
             int flags = 0) {
  return setxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags) == 0 ? 0 : errno;
}

// An integer field of a flat JSON object such as `cairn status --json` prints.
std::optional<long long> JsonInteger(const std::string& json, const std::string& key) {
  const std::string quoted = "\"" + key + "\"";
  size_t pos = 0;
  while ((pos = json.find(quoted, pos)) != std::string::npos) {
    size_t i = pos + quoted.size();
    while (i < json.size() && std::isspace(static_cast<unsigned char>(json[i]))) ++i;
    if (i < json.size() && json[i] == ':') {
      ++i;
      while (i < json.size() && std::isspace(static_cast<unsigned char>(json[i]))) ++i;
      const char* begin = json.c_str() + i;
      char* end = nullptr;
      errno = 0;
      long long value = std::strtoll(begin, &end, 10);
      if (end == begin || errno != 0) return std::nullopt;
      return value;
    }
    pos += quoted.size();
  }
  return std::nullopt;
}

struct FsStatus {
  long long files = 0;
  long long directories = 0;
  long long bytes = 0;
  long long inline_files = 0;
  long long segments = 0;
  long long space_used = 0;
  long long space_live = 0;
};

// Runs `cairn status --json` and parses it; the error says what went wrong.
std::expected<FsStatus, std::string> ReadStatus(CairnMount& mount) {
  CommandResult result = mount.StatusJson();
  if (!result.ok()) return std::unexpected(result.Describe());
  FsStatus status;
  const std::pair<const char*, long long*> fields[] = {
      {"files", &status.files},           {"directories", &status.directories},
      {"bytes", &status.bytes},           {"inline_files", &status.inline_files},
      {"segments", &status.segments},     {"space_used", &status.space_used},
      {"space_live", &status.space_live},
  };
  for (const auto& [key, value] : fields) {
    std::optional<long long> parsed = JsonInteger(result.out, key);
    if (!parsed) {
      return std::unexpected("no integer field \"" + std::string(key) + "\" in:\n" + result.out);
    }
    *value = *parsed;
  }
  return status;
}

// Total st_size of DATA_DIR/segments/*.seg.
// A shared mapping that is unmapped on scope exit.
class Mapping {
 public:
  Mapping(int fd, size_t size, int prot)
      : size_(size), address_(mmap(nullptr, size, prot, MAP_SHARED, fd, 0)) {}
  ~Mapping() {
    if (ok()) munmap(address_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return address_ != MAP_FAILED; }
  char* data() const { return static_cast<char*>(address_); }

 private:
  size_t size_;
  void* address_;
};

// ---------------------------------------------------------------------------------------------
// Namespace

TEST_F(PosixTest, NestedDirectoriesAndReaddir) {
  std::string nested;
  for (const char* part : {"a", "b", "c", "d", "e", "f", "g", "h"}) {
    nested += nested.empty() ? part : std::string("/") + part;
    ASSERT_EQ(Outcome(mkdir(Path(nested).c_str(), 0755)), "OK") << nested;
  }
  EXPECT_TRUE(S_ISDIR(StatOrFail(Path(nested)).st_mode));
  EXPECT_EQ(Outcome(mkdir(Path("a").c_str(), 0755)), "EEXIST");
  EXPECT_EQ(Outcome(mkdir(Path("missing/child").c_str(), 0755)), "ENOENT");

  std::vector<std::string> expected{"c"};
  for (int i = 0; i < 50; ++i) {
    const std::string name = "file" + std::to_string(i);
    ASSERT_EQ(ErrnoName(WriteFile(Path("a/b/" + name), name)), "OK");
    expected.push_back(name);
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Entries(Path("a/b")), expected);
  EXPECT_EQ(Entries(Path("a")), std::vector<std::string>{"b"});
  EXPECT_EQ(Outcome(mkdir(Path("a/b/file0/x").c_str(), 0755)), "ENOTDIR");

  // Enough long names that readdir needs several round trips to the daemon.
  ASSERT_EQ(Outcome(mkdir(Path("many").c_str(), 0755)), "OK");
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) {
    std::string name = "entry-" + std::string(60, 'x') + "-" + std::to_string(i);
    UniqueFd fd(open(Path("many/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid()) << name << ": " << ErrnoName(errno);
    many.push_back(std::move(name));
  }
  std::sort(many.begin(), many.end());
  EXPECT_EQ(Entries(Path("many")), many);

  EXPECT_EQ(Outcome(rmdir(Path("a/b/c/d/e/f/g").c_str())), "ENOTEMPTY");
  EXPECT_EQ(Outcome(rmdir(Path("a/b").c_str())), "ENOTEMPTY");
  EXPECT_EQ(Outcome(rmdir(Path("a/b/file0").c_str())), "ENOTDIR");
  EXPECT_EQ(Outcome(unlink(Path("a/b/c").c_str())), "EISDIR");

  for (std::string dir = "a/b/c/d/e/f/g/h"; dir != "a/b"; dir = dir.substr(0, dir.rfind('/'))) {
    ASSERT_EQ(Outcome(rmdir(Path(dir).c_str())), "OK") << dir;
  }
  EXPECT_EQ(Outcome(access(Path("a/b/c").c_str(), F_OK)), "ENOENT");
  expected.erase(std::find(expected.begin(), expected.end(), "c"));
  EXPECT_EQ(Entries(Path("a/b")), expected);

  ASSERT_TRUE(Remount());
  EXPECT_EQ(Entries(Path("a/b")), expected);
  EXPECT_EQ(Entries(Path("many")), many);
  EXPECT_TRUE(FileHasContent(Path("a/b/file7"), "file7"));
}

// ---------------------------------------------------------------------------------------------
// Data

TEST_F(PosixTest, LargeRandomFileReadsBack) {
  constexpr size_t kSize = 64 * kMiB;
  std::string expected = PatternBytes(1, kSize);
  const std::string path = Path("big");
  {
    UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    for (size_t offset = 0; offset < kSize; offset += kMiB) {
      ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), std::string_view(expected).substr(offset, kMiB),
                                     static_cast<off_t>(offset))),
                "OK")
          << "at " << offset;
    }
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_EQ(static_cast<size_t>(st.st_size), kSize);
    DropCache(fd.get());
    // Odd-sized reads so that they straddle every internal block boundary.
    constexpr size_t kChunk = 777'777;
    for (size_t offset = 0; offset < kSize; offset += kChunk) {
      auto got = ReadAt(fd.get(), kChunk, static_cast<off_t>(offset));
      ASSERT_TRUE(got) << "at " << offset << ": " << ErrnoName(got.error());
      ASSERT_TRUE(SameBytes(*got, std::string_view(expected).substr(offset, kChunk)))
          << "chunk at " << offset;
    }

    // Unaligned overwrites, one of them extending the file.
    const std::pair<size_t, size_t> regions[] = {
        {12'345, 100'000}, {33 * kMiB - 7, 5 * kMiB + 11}, {kSize - 3000, 3000}, {kSize - 10, 20}};
    uint64_t seed = 100;
    for (const auto& [offset, length] : regions) {
      std::string patch = PatternBytes(seed++, length);
      ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), patch, static_cast<off_t>(offset))), "OK");
      if (expected.size() < offset + length) expected.resize(offset + length);
      expected.replace(offset, length, patch);
    }
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  EXPECT_TRUE(FileHasContentUncached(path, expected));
  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContentUncached(path, expected));
}

TEST_F(PosixTest, SparseFileHolesReadAsZeros) {
  constexpr off_t kGiB = 1LL << 30;
  constexpr off_t kMiddle = 512LL * (1 << 20) + 3;
  const std::string tail = "tail-data";
  const std::string middle = PatternBytes(2, 10'000);
  const std::string path = Path("sparse");
  {
    UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), tail, kGiB)), "OK");
    ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), middle, kMiddle)), "OK");
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  auto check = [&] {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    DropCache(fd.get());
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_EQ(st.st_size, kGiB + static_cast<off_t>(tail.size()));
    EXPECT_TRUE(SameBytes(Read(fd.get(), 64 * kKiB, 0), std::string(64 * kKiB, '\0')));
    EXPECT_TRUE(SameBytes(Read(fd.get(), 64 * kKiB, 300LL << 20), std::string(64 * kKiB, '\0')));
    EXPECT_TRUE(SameBytes(Read(fd.get(), 64 * kKiB, 800LL << 20), std::string(64 * kKiB, '\0')));
    std::string around_middle = std::string(5003, '\0') + middle + std::string(4997, '\0');
    auto got_middle = ReadAt(fd.get(), around_middle.size(), kMiddle - 5003);
    ASSERT_TRUE(got_middle);
    EXPECT_TRUE(SameBytes(*got_middle, around_middle));
    auto got_tail = ReadAt(fd.get(), 8192 + 100, kGiB - 8192);
    ASSERT_TRUE(got_tail);
    EXPECT_TRUE(SameBytes(*got_tail, std::string(8192, '\0') + tail));
    EXPECT_TRUE(
        SameBytes(Read(fd.get(), 100, kGiB + static_cast<off_t>(tail.size())), std::string()));
  };
  check();
  ASSERT_TRUE(Remount());
  check();
}

TEST_F(PosixTest, TruncateUpAndDown) {
  const std::string path = Path("t");
  std::string expected = PatternBytes(3, 10'000);
  ASSERT_EQ(ErrnoName(WriteFile(path, expected)), "OK");

  ASSERT_EQ(Outcome(truncate(path.c_str(), 3000)), "OK");
  expected.resize(3000);
  EXPECT_TRUE(FileHasContentUncached(path, expected));
  // Growing again must expose zeros, never the bytes cut off before.
  ASSERT_EQ(Outcome(truncate(path.c_str(), 20'000)), "OK");
  expected.resize(20'000, '\0');
  EXPECT_TRUE(FileHasContentUncached(path, expected));

  {
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(Outcome(ftruncate(fd.get(), 0)), "OK");
    ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), "hello", 100)), "OK");
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  expected = std::string(100, '\0') + "hello";
  EXPECT_TRUE(FileHasContentUncached(path, expected));

  // Across the inline limit in both directions.
  const std::string small_path = Path("small");
  std::string small = PatternBytes(4, 100);
  ASSERT_EQ(ErrnoName(WriteFile(small_path, small)), "OK");
  ASSERT_EQ(Outcome(truncate(small_path.c_str(), 8192)), "OK");
  small.resize(8192, '\0');
  EXPECT_TRUE(FileHasContentUncached(small_path, small));
  {
    UniqueFd fd(open(small_path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    std::string patch = PatternBytes(5, 150);
    ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), patch, 4000)), "OK");
    small.replace(4000, patch.size(), patch);
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  EXPECT_TRUE(FileHasContentUncached(small_path, small));
  ASSERT_EQ(Outcome(truncate(small_path.c_str(), kInlineLimit)), "OK");
  small.resize(kInlineLimit);
  EXPECT_TRUE(FileHasContentUncached(small_path, small));
  ASSERT_EQ(Outcome(truncate(small_path.c_str(), kInlineLimit + 1)), "OK");
  small.resize(kInlineLimit + 1, '\0');
  EXPECT_TRUE(FileHasContentUncached(small_path, small));

  // A huge sparse extension and back.
  ASSERT_EQ(Outcome(truncate(small_path.c_str(), 1LL << 30)), "OK");
  EXPECT_EQ(StatOrFail(small_path).st_size, 1LL << 30);
  ASSERT_EQ(Outcome(truncate(small_path.c_str(), 10)), "OK");
  small.resize(10);
  EXPECT_TRUE(FileHasContentUncached(small_path, small));

  EXPECT_EQ(Outcome(truncate(path.c_str(), -1)), "EINVAL");
  ASSERT_EQ(Outcome(mkdir(Path("dir").c_str(), 0755)), "OK");
  EXPECT_EQ(Outcome(truncate(Path("dir").c_str(), 0)), "EISDIR");

  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContentUncached(path, expected));
  EXPECT_TRUE(FileHasContentUncached(small_path, small));
}

TEST_F(PosixTest, AppendModeWritesAtEnd) {
  const std::string path = Path("log");
  ASSERT_EQ(ErrnoName(WriteFile(path, "abc")), "OK");
  {
    UniqueFd first(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    UniqueFd second(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_TRUE(first.valid() && second.valid());
    ASSERT_EQ(lseek(first.get(), 0, SEEK_SET), 0);
    ASSERT_EQ(write(first.get(), "def", 3), 3);
    EXPECT_EQ(lseek(first.get(), 0, SEEK_CUR), 6);
    ASSERT_EQ(write(second.get(), "1", 1), 1);
    ASSERT_EQ(write(first.get(), "22", 2), 2);
    ASSERT_EQ(write(second.get(), "333", 3), 3);
    ASSERT_EQ(Outcome(fsync(first.get())), "OK");
  }
  EXPECT_TRUE(FileHasContentUncached(path, "abcdef122333"));

  // Appends that move a file from inline storage into a segment.
  const std::string grow_path = Path("grow");
  std::string expected = PatternBytes(6, 4000);
  ASSERT_EQ(ErrnoName(WriteFile(grow_path, expected)), "OK");
  {
    UniqueFd fd(open(grow_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    for (size_t piece : {200UL, 10'000UL, 1UL, 70'000UL}) {
      std::string more = PatternBytes(piece, piece);
      ASSERT_EQ(write(fd.get(), more.data(), more.size()), static_cast<ssize_t>(more.size()));
      expected += more;
    }
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), static_cast<off_t>(expected.size()));
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  EXPECT_TRUE(FileHasContentUncached(grow_path, expected));
  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContentUncached(path, "abcdef122333"));
  EXPECT_TRUE(FileHasContentUncached(grow_path, expected));
}

// ---------------------------------------------------------------------------------------------
// Rename

TEST_F(PosixTest, RenameFileToNewName) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("old"), "content")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("dir").c_str(), 0755)), "OK");
  const ino_t inode = StatOrFail(Path("old")).st_ino;
  ASSERT_EQ(Outcome(rename(Path("old").c_str(), Path("new").c_str())), "OK");
  EXPECT_EQ(Outcome(access(Path("old").c_str(), F_OK)), "ENOENT");
  EXPECT_EQ(StatOrFail(Path("new")).st_ino, inode);
  EXPECT_TRUE(FileHasContent(Path("new"), "content"));
  ASSERT_EQ(Outcome(rename(Path("new").c_str(), Path("dir/moved").c_str())), "OK");
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"dir"});
  EXPECT_EQ(Entries(Path("dir")), std::vector<std::string>{"moved"});
  // Renaming a name onto itself is a no-op.
  EXPECT_EQ(Outcome(rename(Path("dir/moved").c_str(), Path("dir/moved").c_str())), "OK");
  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContent(Path("dir/moved"), "content"));
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"dir"});
}

TEST_F(PosixTest, RenameFileOverExistingFile) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("a"), "AAAA")), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("b"), PatternBytes(7, 9000))), "OK");
  const ino_t inode_a = StatOrFail(Path("a")).st_ino;
  UniqueFd replaced(open(Path("b").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(replaced.valid());

  ASSERT_EQ(Outcome(rename(Path("a").c_str(), Path("b").c_str())), "OK");
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"b"});
  EXPECT_EQ(StatOrFail(Path("b")).st_ino, inode_a);
  EXPECT_TRUE(FileHasContentUncached(Path("b"), "AAAA"));
  // The replaced file lives on while open.
  struct stat st;
  ASSERT_EQ(fstat(replaced.get(), &st), 0);
  EXPECT_EQ(st.st_nlink, 0U);
  DropCache(replaced.get());
  EXPECT_TRUE(SameBytes(Read(replaced.get(), 20'000, 0), PatternBytes(7, 9000)));
  replaced.Reset();

  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContent(Path("b"), "AAAA"));
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"b"});
}

// The kernel keeps a directory's listing across opens (FOPEN_CACHE_DIR on a single node): every
// change of the directory shows in the next listing, a large one and a directory listed while
// another handle has it open too.
TEST_F(PosixTest, AListingShowsEveryChangeMadeAfterTheLastOne) {
  const std::string d = Path("listed");
  ASSERT_EQ(Outcome(mkdir(d.c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("elsewhere").c_str(), 0755)), "OK");
  std::vector<std::string> expected;
  auto check = [&](const std::string& step) {
    std::vector<std::string> want = expected;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(Entries(d), want) << "after " << step;
    EXPECT_EQ(Entries(d), want) << "listed twice after " << step;
  };
  check("mkdir");
  ASSERT_EQ(ErrnoName(WriteFile(d + "/a", "a")), "OK");
  expected.push_back("a");
  check("create");
  ASSERT_EQ(Outcome(mkdir((d + "/sub").c_str(), 0755)), "OK");
  expected.push_back("sub");
  check("mkdir in it");
  ASSERT_EQ(Outcome(symlink("a", (d + "/link").c_str())), "OK");
  expected.push_back("link");
  check("symlink");
  ASSERT_EQ(Outcome(link((d + "/a").c_str(), (d + "/hard").c_str())), "OK");
  expected.push_back("hard");
  check("link");
  ASSERT_EQ(Outcome(rename((d + "/a").c_str(), (d + "/b").c_str())), "OK");
  expected.erase(std::find(expected.begin(), expected.end(), "a"));
  expected.push_back("b");
  check("rename within");
  ASSERT_EQ(Outcome(rename((d + "/b").c_str(), Path("elsewhere/b").c_str())), "OK");
  expected.erase(std::find(expected.begin(), expected.end(), "b"));
  check("rename out");
  ASSERT_EQ(ErrnoName(WriteFile(Path("elsewhere/c"), "c")), "OK");
  ASSERT_EQ(Outcome(rename(Path("elsewhere/c").c_str(), (d + "/c").c_str())), "OK");
  expected.push_back("c");
  check("rename in");
  ASSERT_EQ(Outcome(unlink((d + "/hard").c_str())), "OK");
  expected.erase(std::find(expected.begin(), expected.end(), "hard"));
  check("unlink");
  ASSERT_EQ(Outcome(rmdir((d + "/sub").c_str())), "OK");
  expected.erase(std::find(expected.begin(), expected.end(), "sub"));
  check("rmdir");

  // Many pages of entries, listed, changed at both ends, listed again.
  for (int i = 0; i < 1500; ++i) {
    const std::string name = "n" + std::string(40, 'x') + std::to_string(i);
    UniqueFd fd(open((d + "/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid()) << name << ": " << ErrnoName(errno);
    expected.push_back(name);
  }
  check("1,500 creates");
  ASSERT_EQ(ErrnoName(WriteFile(d + "/0first", "")), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(d + "/zlast", "")), "OK");
  expected.push_back("0first");
  expected.push_back("zlast");
  check("creates at both ends");

  // A handle opened before a change keeps paging; one opened after it sees the change.
  DIR* before = opendir(d.c_str());
  ASSERT_NE(before, nullptr);
  ASSERT_NE(readdir(before), nullptr);
  ASSERT_EQ(Outcome(unlink((d + "/0first").c_str())), "OK");
  expected.erase(std::find(expected.begin(), expected.end(), "0first"));
  check("unlink while another handle lists");
  size_t seen = 1;
  while (readdir(before) != nullptr) ++seen;
  closedir(before);
  EXPECT_GE(seen, expected.size() + 2);  // ".", "..", and the entries it began with
}

TEST_F(PosixTest, RenameDirectoryOverEmptyDirectory) {
  ASSERT_EQ(Outcome(mkdir(Path("src").c_str(), 0755)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("src/inner"), "x")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("dst").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(rename(Path("src").c_str(), Path("dst").c_str())), "OK");
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"dst"});
  EXPECT_TRUE(FileHasContent(Path("dst/inner"), "x"));
  ASSERT_TRUE(Remount());
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"dst"});
  EXPECT_TRUE(FileHasContent(Path("dst/inner"), "x"));
}

TEST_F(PosixTest, RenameDirectoryOverNonEmptyDirectoryFails) {
  ASSERT_EQ(Outcome(mkdir(Path("src").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("dst").c_str(), 0755)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("dst/keep"), "keep")), "OK");
  EXPECT_EQ(Outcome(rename(Path("src").c_str(), Path("dst").c_str())), "ENOTEMPTY");
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{"dst", "src"}));
  EXPECT_TRUE(FileHasContent(Path("dst/keep"), "keep"));
}

TEST_F(PosixTest, RenameFileOverDirectoryFails) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("file"), "f")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("dir").c_str(), 0755)), "OK");
  EXPECT_EQ(Outcome(rename(Path("file").c_str(), Path("dir").c_str())), "EISDIR");
  EXPECT_TRUE(S_ISDIR(StatOrFail(Path("dir")).st_mode));
  EXPECT_TRUE(FileHasContent(Path("file"), "f"));
}

TEST_F(PosixTest, RenameDirectoryOverFileFails) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("file"), "f")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("dir").c_str(), 0755)), "OK");
  EXPECT_EQ(Outcome(rename(Path("dir").c_str(), Path("file").c_str())), "ENOTDIR");
  EXPECT_TRUE(S_ISDIR(StatOrFail(Path("dir")).st_mode));
  EXPECT_TRUE(FileHasContent(Path("file"), "f"));
}

TEST_F(PosixTest, RenameDirectoryIntoItsOwnSubdirectoryFails) {
  ASSERT_EQ(Outcome(mkdir(Path("a").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("a/b").c_str(), 0755)), "OK");
  EXPECT_EQ(Outcome(rename(Path("a").c_str(), Path("a/b/c").c_str())), "EINVAL");
  EXPECT_EQ(Outcome(rename(Path("a").c_str(), Path("a/x").c_str())), "EINVAL");
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{"a"});
  EXPECT_EQ(Entries(Path("a")), std::vector<std::string>{"b"});
}

TEST_F(PosixTest, RenameNoReplaceFailsOnExistingTarget) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("a"), "A")), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("b"), "B")), "OK");
  EXPECT_EQ(Outcome(renameat2(AT_FDCWD, Path("a").c_str(), AT_FDCWD, Path("b").c_str(),
                              RENAME_NOREPLACE)),
            "EEXIST");
  EXPECT_TRUE(FileHasContent(Path("a"), "A"));
  EXPECT_TRUE(FileHasContent(Path("b"), "B"));
  EXPECT_EQ(Outcome(renameat2(AT_FDCWD, Path("a").c_str(), AT_FDCWD, Path("c").c_str(),
                              RENAME_NOREPLACE)),
            "OK");
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(FileHasContent(Path("c"), "A"));
}

TEST_F(PosixTest, RenameExchangeSwapsFileAndDirectory) {
  ASSERT_EQ(Outcome(mkdir(Path("x").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("y").c_str(), 0755)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("x/f"), "file body")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("y/d").c_str(), 0755)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(Path("y/d/inner"), "inner body")), "OK");
  const ino_t file_inode = StatOrFail(Path("x/f")).st_ino;
  const ino_t dir_inode = StatOrFail(Path("y/d")).st_ino;

  ASSERT_EQ(Outcome(renameat2(AT_FDCWD, Path("x/f").c_str(), AT_FDCWD, Path("y/d").c_str(),
                              RENAME_EXCHANGE)),
            "OK");
  auto check = [&] {
    EXPECT_EQ(StatOrFail(Path("x/f")).st_ino, dir_inode);
    EXPECT_TRUE(S_ISDIR(StatOrFail(Path("x/f")).st_mode));
    EXPECT_EQ(StatOrFail(Path("y/d")).st_ino, file_inode);
    EXPECT_TRUE(S_ISREG(StatOrFail(Path("y/d")).st_mode));
    EXPECT_TRUE(FileHasContent(Path("x/f/inner"), "inner body"));
    EXPECT_TRUE(FileHasContent(Path("y/d"), "file body"));
    EXPECT_EQ(StatOrFail(Path("x/f/..")).st_ino, StatOrFail(Path("x")).st_ino);
    if (auto dotdot = DotDotInodeFromReaddir(Path("x/f"))) {
      EXPECT_EQ(*dotdot, StatOrFail(Path("x")).st_ino) << "readdir's \"..\" of the moved directory";
    }
  };
  check();
  ASSERT_TRUE(Remount());
  check();
}

TEST_F(PosixTest, RenameAcrossDirectoriesUpdatesDotDot) {
  for (const char* dir : {"p1", "p2", "p1/d", "p1/d/sub"}) {
    ASSERT_EQ(Outcome(mkdir(Path(dir).c_str(), 0755)), "OK") << dir;
  }
  ASSERT_EQ(ErrnoName(WriteFile(Path("p1/d/f"), "payload")), "OK");
  ASSERT_EQ(Outcome(rename(Path("p1/d").c_str(), Path("p2/d").c_str())), "OK");
  auto check = [&] {
    EXPECT_EQ(Entries(Path("p1")), std::vector<std::string>{});
    EXPECT_EQ(Entries(Path("p2")), std::vector<std::string>{"d"});
    EXPECT_EQ(StatOrFail(Path("p2/d/..")).st_ino, StatOrFail(Path("p2")).st_ino);
    EXPECT_EQ(StatOrFail(Path("p2/d/sub/..")).st_ino, StatOrFail(Path("p2/d")).st_ino);
    if (auto dotdot = DotDotInodeFromReaddir(Path("p2/d"))) {
      EXPECT_EQ(*dotdot, StatOrFail(Path("p2")).st_ino) << "readdir's \"..\" of p2/d";
    }
    EXPECT_TRUE(FileHasContent(Path("p2/d/f"), "payload"));
  };
  check();
  ASSERT_TRUE(Remount());
  check();
  EXPECT_EQ(Outcome(rmdir(Path("p1").c_str())), "OK");
  EXPECT_EQ(Outcome(rmdir(Path("p2").c_str())), "ENOTEMPTY");
}

TEST_F(PosixTest, RenameBetweenLinksOfTheSameFileIsANoOp) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("a"), "same")), "OK");
  ASSERT_EQ(Outcome(link(Path("a").c_str(), Path("b").c_str())), "OK");
  EXPECT_EQ(Outcome(rename(Path("a").c_str(), Path("b").c_str())), "OK");
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(StatOrFail(Path("a")).st_nlink, 2U);
}

// ---------------------------------------------------------------------------------------------
// Links

TEST_F(PosixTest, HardLinksShareContent) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("a"), "first")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("sub").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(link(Path("a").c_str(), Path("b").c_str())), "OK");
  EXPECT_EQ(StatOrFail(Path("a")).st_nlink, 2U);
  EXPECT_EQ(StatOrFail(Path("b")).st_nlink, 2U);
  EXPECT_EQ(StatOrFail(Path("a")).st_ino, StatOrFail(Path("b")).st_ino);

  const std::string second = PatternBytes(8, 10'000);
  ASSERT_EQ(ErrnoName(WriteFile(Path("b"), second)), "OK");
  EXPECT_TRUE(FileHasContentUncached(Path("a"), second));

  ASSERT_EQ(Outcome(link(Path("a").c_str(), Path("sub/c").c_str())), "OK");
  EXPECT_EQ(StatOrFail(Path("b")).st_nlink, 3U);
  EXPECT_EQ(Outcome(link(Path("a").c_str(), Path("b").c_str())), "EEXIST");
  EXPECT_EQ(Outcome(link(Path("sub").c_str(), Path("sublink").c_str())), "EPERM");

  ASSERT_EQ(Outcome(unlink(Path("a").c_str())), "OK");
  EXPECT_EQ(StatOrFail(Path("b")).st_nlink, 2U);
  EXPECT_TRUE(FileHasContentUncached(Path("b"), second));
  ASSERT_EQ(Outcome(unlink(Path("sub/c").c_str())), "OK");
  EXPECT_EQ(StatOrFail(Path("b")).st_nlink, 1U);
  EXPECT_TRUE(FileHasContentUncached(Path("b"), second));

  ASSERT_EQ(Outcome(link(Path("b").c_str(), Path("sub/again").c_str())), "OK");
  ASSERT_TRUE(Remount());
  EXPECT_EQ(StatOrFail(Path("b")).st_nlink, 2U);
  EXPECT_EQ(StatOrFail(Path("b")).st_ino, StatOrFail(Path("sub/again")).st_ino);
  EXPECT_TRUE(FileHasContentUncached(Path("sub/again"), second));
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{"b", "sub"}));
}

TEST_F(PosixTest, SymlinksReadlinkAndLstat) {
  ASSERT_EQ(ErrnoName(WriteFile(Path("target"), "pointed-to")), "OK");
  ASSERT_EQ(Outcome(symlink("target", Path("link").c_str())), "OK");
  ASSERT_EQ(Outcome(symlink("../elsewhere/nothing", Path("dangling").c_str())), "OK");
  std::string long_target;
  while (long_target.size() < 1000) long_target += "long/";
  ASSERT_EQ(Outcome(symlink(long_target.c_str(), Path("long").c_str())), "OK");

  auto read_link = [](const std::string& path) {
    std::string buffer(8192, '\0');
    ssize_t n = readlink(path.c_str(), buffer.data(), buffer.size());
    if (n < 0) return "<" + ErrnoName(errno) + ">";
    buffer.resize(static_cast<size_t>(n));
    return buffer;
  };
  auto check = [&] {
    EXPECT_EQ(read_link(Path("link")), "target");
    EXPECT_EQ(read_link(Path("dangling")), "../elsewhere/nothing");
    EXPECT_EQ(read_link(Path("long")), long_target);
    EXPECT_EQ(read_link(Path("target")), "<EINVAL>");
    auto link_stat = Lstat(Path("link"));
    ASSERT_TRUE(link_stat);
    EXPECT_TRUE(S_ISLNK(link_stat->st_mode));
    EXPECT_EQ(link_stat->st_size, 6);
    auto followed = Stat(Path("link"));
    ASSERT_TRUE(followed);
    EXPECT_TRUE(S_ISREG(followed->st_mode));
    EXPECT_EQ(followed->st_ino, StatOrFail(Path("target")).st_ino);
    EXPECT_EQ(followed->st_size, 10);
    EXPECT_TRUE(FileHasContent(Path("link"), "pointed-to"));
    EXPECT_EQ(Outcome(access(Path("dangling").c_str(), F_OK)), "ENOENT");
    EXPECT_TRUE(Lstat(Path("dangling")));
    EXPECT_EQ(Lstat(Path("long"))->st_size, static_cast<off_t>(long_target.size()));
  };
  check();
  EXPECT_EQ(Outcome(symlink("x", Path("link").c_str())), "EEXIST");
  {
    int fd = open(Path("link").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    EXPECT_EQ(Outcome(fd), "ELOOP");
    if (fd >= 0) close(fd);
  }
  ASSERT_TRUE(Remount());
  check();
}

// ---------------------------------------------------------------------------------------------
// Metadata

TEST_F(PosixTest, ExtendedAttributes) {
  const std::string file = Path("f");
  const std::string dir = Path("d");
  ASSERT_EQ(ErrnoName(WriteFile(file, "x")), "OK");
  ASSERT_EQ(Outcome(mkdir(dir.c_str(), 0755)), "OK");
  const std::string binary = std::string("a\0b\0\xff", 5) + PatternBytes(9, 300);
  const std::string large = PatternBytes(10, 2000);

  ASSERT_EQ(ErrnoName(SetXattr(file, "user.alpha", "one")), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(file, "user.beta", binary)), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(file, "user.empty", "")), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(file, "user.large", large)), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(dir, "user.on_dir", "dir value")), "OK");

  EXPECT_EQ(getxattr(file.c_str(), "user.alpha", nullptr, 0), 3);
  EXPECT_EQ(GetXattr(file, "user.alpha"), "one");
  EXPECT_EQ(GetXattr(file, "user.beta"), binary);
  EXPECT_EQ(GetXattr(file, "user.empty"), "");
  EXPECT_EQ(GetXattr(file, "user.large"), large);
  EXPECT_EQ(GetXattr(dir, "user.on_dir"), "dir value");
  char tiny[1];
  EXPECT_EQ(Outcome(getxattr(file.c_str(), "user.alpha", tiny, sizeof(tiny))), "ERANGE");
  EXPECT_EQ(ListXattrNames(file),
            (std::vector<std::string>{"user.alpha", "user.beta", "user.empty", "user.large"}));

  EXPECT_EQ(ErrnoName(SetXattr(file, "user.alpha", "again", XATTR_CREATE)), "EEXIST");
  EXPECT_EQ(ErrnoName(SetXattr(file, "user.missing", "v", XATTR_REPLACE)), "ENODATA");
  EXPECT_EQ(GetXattr(file, "user.missing"), "<ENODATA>");
  EXPECT_EQ(ErrnoName(SetXattr(file, "user.alpha", "uno-replaced", XATTR_REPLACE)), "OK");
  EXPECT_EQ(GetXattr(file, "user.alpha"), "uno-replaced");
  EXPECT_EQ(ErrnoName(SetXattr(file, "user.fresh", "new", XATTR_CREATE)), "OK");

  EXPECT_EQ(Outcome(removexattr(file.c_str(), "user.alpha")), "OK");
  EXPECT_EQ(GetXattr(file, "user.alpha"), "<ENODATA>");
  EXPECT_EQ(Outcome(removexattr(file.c_str(), "user.alpha")), "ENODATA");

  auto check = [&] {
    EXPECT_EQ(ListXattrNames(file),
              (std::vector<std::string>{"user.beta", "user.empty", "user.fresh", "user.large"}));
    EXPECT_EQ(GetXattr(file, "user.beta"), binary);
    EXPECT_EQ(GetXattr(file, "user.empty"), "");
    EXPECT_EQ(GetXattr(file, "user.fresh"), "new");
    EXPECT_EQ(GetXattr(file, "user.large"), large);
    EXPECT_EQ(GetXattr(file, "user.alpha"), "<ENODATA>");
    EXPECT_EQ(GetXattr(dir, "user.on_dir"), "dir value");
  };
  check();
  ASSERT_TRUE(Remount());
  check();
}

TEST_F(PosixTest, ChmodChownUtimensReflectedInStat) {
  const std::string file = Path("f");
  const std::string dir = Path("d");
  ASSERT_EQ(ErrnoName(WriteFile(file, "x")), "OK");
  ASSERT_EQ(Outcome(mkdir(dir.c_str(), 0755)), "OK");
  const bool root = geteuid() == 0;

  ASSERT_EQ(Outcome(chmod(file.c_str(), 0640)), "OK");
  EXPECT_EQ(StatOrFail(file).st_mode & 07777, 0640U);
  EXPECT_TRUE(S_ISREG(StatOrFail(file).st_mode));
  ASSERT_EQ(Outcome(chmod(dir.c_str(), 01777)), "OK");
  EXPECT_EQ(StatOrFail(dir).st_mode & 07777, 01777U);
  if (root) {
    // chown before chmod: chown clears the set-user-ID bit.
    ASSERT_EQ(Outcome(chown(file.c_str(), 1234, 5678)), "OK");
    EXPECT_EQ(StatOrFail(file).st_uid, 1234U);
    EXPECT_EQ(StatOrFail(file).st_gid, 5678U);
    ASSERT_EQ(Outcome(chmod(file.c_str(), 04751)), "OK");
    EXPECT_EQ(StatOrFail(file).st_mode & 07777, 04751U);
    ASSERT_EQ(Outcome(symlink("f", Path("link").c_str())), "OK");
    ASSERT_EQ(Outcome(lchown(Path("link").c_str(), 4321, 8765)), "OK");
    EXPECT_EQ(Lstat(Path("link"))->st_uid, 4321U);
    EXPECT_EQ(StatOrFail(file).st_uid, 1234U);
  }

  const timespec times[2] = {{1'000'000'000, 123'456'789}, {1'100'000'000, 987'654'321}};
  ASSERT_EQ(Outcome(utimensat(AT_FDCWD, file.c_str(), times, 0)), "OK");
  struct stat st = StatOrFail(file);
  EXPECT_EQ(st.st_atim.tv_sec, 1'000'000'000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123'456'789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'100'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987'654'321);

  const timespec omit_atime[2] = {{0, UTIME_OMIT}, {1'200'000'000, 500}};
  ASSERT_EQ(Outcome(utimensat(AT_FDCWD, file.c_str(), omit_atime, 0)), "OK");
  st = StatOrFail(file);
  EXPECT_EQ(st.st_atim.tv_sec, 1'000'000'000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'200'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 500);

  const timespec now_mtime[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  const std::string other = Path("other");
  ASSERT_EQ(ErrnoName(WriteFile(other, "y")), "OK");
  ASSERT_EQ(Outcome(utimensat(AT_FDCWD, other.c_str(), now_mtime, 0)), "OK");
  EXPECT_LE(std::abs(StatOrFail(other).st_mtim.tv_sec - std::time(nullptr)), 60);

  // A write moves mtime forward from an old value.
  const timespec old_times[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
  ASSERT_EQ(Outcome(utimensat(AT_FDCWD, other.c_str(), old_times, 0)), "OK");
  {
    UniqueFd fd(open(other.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(write(fd.get(), "zz", 2), 2);
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  EXPECT_GT(StatOrFail(other).st_mtim.tv_sec, 1'000'000'000);

  ASSERT_TRUE(Remount());
  st = StatOrFail(file);
  EXPECT_EQ(st.st_mode & 07777, root ? 04751U : 0640U);
  EXPECT_EQ(StatOrFail(dir).st_mode & 07777, 01777U);
  EXPECT_EQ(st.st_atim.tv_sec, 1'000'000'000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'200'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 500);
  if (root) {
    EXPECT_EQ(st.st_uid, 1234U);
    EXPECT_EQ(st.st_gid, 5678U);
    EXPECT_EQ(Lstat(Path("link"))->st_uid, 4321U);
  }
}

TEST_F(PosixTest, NamesOf255BytesWorkAnd256Fail) {
  const std::string longest(255, 'n');
  const std::string too_long(256, 'm');
  ASSERT_EQ(ErrnoName(WriteFile(Path(longest), "ok")), "OK");
  EXPECT_TRUE(FileHasContent(Path(longest), "ok"));
  ASSERT_EQ(Outcome(mkdir(Path(std::string(255, 'd')).c_str(), 0755)), "OK");
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{std::string(255, 'd'), longest}));

  {
    int fd = open(Path(too_long).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    EXPECT_EQ(Outcome(fd), "ENAMETOOLONG");
    if (fd >= 0) close(fd);
  }
  EXPECT_EQ(Outcome(mkdir(Path(std::string(256, 'e')).c_str(), 0755)), "ENAMETOOLONG");
  EXPECT_EQ(Outcome(rename(Path(longest).c_str(), Path(too_long).c_str())), "ENAMETOOLONG");
  EXPECT_EQ(Outcome(symlink("x", Path(too_long).c_str())), "ENAMETOOLONG");
  EXPECT_EQ(Outcome(link(Path(longest).c_str(), Path(too_long).c_str())), "ENAMETOOLONG");
  EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{std::string(255, 'd'), longest}));

  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContent(Path(longest), "ok"));
}

TEST_F(PosixTest, UnlinkedOpenFileStaysUsableUntilClose) {
  const std::string path = Path("ghost");
  const std::string first = PatternBytes(11, 6000);
  const std::string more = PatternBytes(12, 20'000);
  {
    UniqueFd writer(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    ASSERT_TRUE(writer.valid());
    ASSERT_EQ(ErrnoName(WriteAllAt(writer.get(), first, 0)), "OK");
    UniqueFd reader(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());

    ASSERT_EQ(Outcome(unlink(path.c_str())), "OK");
    EXPECT_EQ(Outcome(access(path.c_str(), F_OK)), "ENOENT");
    EXPECT_EQ(Entries(Path("")), std::vector<std::string>{});
    struct stat st;
    ASSERT_EQ(fstat(writer.get(), &st), 0);
    EXPECT_EQ(st.st_nlink, 0U);

    ASSERT_EQ(ErrnoName(WriteAllAt(writer.get(), more, 6000)), "OK");
    ASSERT_EQ(Outcome(fsync(writer.get())), "OK");
    DropCache(reader.get());
    EXPECT_TRUE(SameBytes(Read(reader.get(), 50'000, 0), first + more));

    // A new file under the old name is a different file.
    ASSERT_EQ(ErrnoName(WriteFile(path, "new file")), "OK");
    ASSERT_EQ(Outcome(ftruncate(writer.get(), 1000)), "OK");
    DropCache(reader.get());
    EXPECT_TRUE(SameBytes(Read(reader.get(), 50'000, 0), first.substr(0, 1000)));
    EXPECT_TRUE(FileHasContentUncached(path, "new file"));
  }
  ASSERT_EQ(Outcome(unlink(path.c_str())), "OK");
  // Nothing of the unlinked inodes may be left behind for fsck to complain about.
  ASSERT_TRUE(UnmountOnly());
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  ASSERT_TRUE(MountOnly());
  EXPECT_EQ(Entries(Path("")), std::vector<std::string>{});
}

TEST_F(PosixTest, MmapSharedWriteThenRead) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = 3 * page + 100;
  const std::string expected = PatternBytes(13, size);
  const std::string path = Path("mapped");
  {
    UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(Outcome(ftruncate(fd.get(), static_cast<off_t>(size))), "OK");
    Mapping map(fd.get(), size, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(map.ok()) << "mmap: " << ErrnoName(errno);
    std::memcpy(map.data(), expected.data(), size);
    ASSERT_EQ(Outcome(msync(map.data(), size, MS_SYNC)), "OK");
  }
  EXPECT_TRUE(FileHasContent(path, expected));
  EXPECT_TRUE(FileHasContentUncached(path, expected));

  // And the other way: data written with write() seen through a read-only shared mapping.
  const std::string written = PatternBytes(14, 2 * page + 7);
  ASSERT_EQ(ErrnoName(WriteFile(Path("written"), written)), "OK");
  {
    UniqueFd fd(open(Path("written").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    DropCache(fd.get());
    Mapping map(fd.get(), written.size(), PROT_READ);
    ASSERT_TRUE(map.ok()) << "mmap: " << ErrnoName(errno);
    EXPECT_TRUE(SameBytes(std::string_view(map.data(), written.size()), written));
  }
  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContentUncached(path, expected));
}

TEST_F(PosixTest, FallocateModeZeroExtendsSize) {
  const std::string fresh = Path("fresh");
  {
    UniqueFd fd(open(fresh.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(Outcome(fallocate(fd.get(), 0, 0, 1 << 20)), "OK");
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_EQ(st.st_size, 1 << 20);
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  EXPECT_TRUE(FileHasContentUncached(fresh, std::string(kMiB, '\0')));

  const std::string existing = Path("existing");
  std::string expected = PatternBytes(15, 10'000);
  ASSERT_EQ(ErrnoName(WriteFile(existing, expected)), "OK");
  {
    UniqueFd fd(open(existing.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    // Inside the file: size and data unchanged.
    ASSERT_EQ(Outcome(fallocate(fd.get(), 0, 0, 5000)), "OK");
    // Past the end: size grows, the new range reads as zeros.
    ASSERT_EQ(Outcome(fallocate(fd.get(), 0, 9000, 6000)), "OK");
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  expected.resize(15'000, '\0');
  EXPECT_TRUE(FileHasContentUncached(existing, expected));
  ASSERT_TRUE(Remount());
  EXPECT_TRUE(FileHasContentUncached(fresh, std::string(kMiB, '\0')));
  EXPECT_TRUE(FileHasContentUncached(existing, expected));
}

TEST_F(PosixTest, StatfsWorks) {
  struct statfs fs;
  ASSERT_EQ(Outcome(statfs(mount_->mountpoint().c_str(), &fs)), "OK");
  EXPECT_EQ(fs.f_type, kFuseSuperMagic);
  struct statvfs vfs;
  ASSERT_EQ(Outcome(statvfs(mount_->mountpoint().c_str(), &vfs)), "OK");
  EXPECT_GT(vfs.f_bsize, 0U);
  EXPECT_GT(vfs.f_blocks, 0U);
  EXPECT_LE(vfs.f_bfree, vfs.f_blocks);
  EXPECT_LE(vfs.f_bavail, vfs.f_blocks);
  EXPECT_EQ(vfs.f_namemax, 255U);
  // Also through a path inside the mount.
  ASSERT_EQ(Outcome(mkdir(Path("d").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(statvfs(Path("d").c_str(), &vfs)), "OK");
}

TEST_F(PosixTest, ConcurrentThreadsWriteAndReadDistinctFiles) {
  constexpr int kThreads = 8;
  constexpr int kFilesPerThread = 24;
  ASSERT_EQ(Outcome(mkdir(Path("shared").c_str(), 0755)), "OK");
  auto name_of = [](int thread, int i) {
    return (i % 2 == 0 ? "shared/" : "t" + std::to_string(thread) + "/") + "f" +
           std::to_string(thread) + "_" + std::to_string(i);
  };
  auto content_of = [](const std::string& name) {
    uint64_t hash = HashString(name);
    return PatternBytes(hash, 1 + hash % (300 * kKiB));
  };

  std::mutex mutex;
  std::vector<std::string> problems;
  auto report = [&](std::string problem) {
    std::lock_guard lock(mutex);
    problems.push_back(std::move(problem));
  };
  auto worker = [&](int thread) {
    const std::string own_dir = Path("t" + std::to_string(thread));
    if (mkdir(own_dir.c_str(), 0755) != 0) return report(own_dir + ": mkdir " + ErrnoName(errno));
    for (int i = 0; i < kFilesPerThread; ++i) {
      const std::string name = name_of(thread, i);
      const std::string content = content_of(name);
      UniqueFd fd(open(Path(name).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644));
      if (!fd.valid()) return report(name + ": open " + ErrnoName(errno));
      // Three writes, out of order, so the file is assembled from pieces.
      const size_t third = content.size() / 3;
      const std::pair<size_t, size_t> pieces[] = {
          {2 * third, content.size() - 2 * third}, {0, third}, {third, third}};
      for (const auto& [offset, length] : pieces) {
        int rc = WriteAllAt(fd.get(), std::string_view(content).substr(offset, length),
                            static_cast<off_t>(offset));
        if (rc != 0) return report(name + ": write " + ErrnoName(rc));
      }
      if (fsync(fd.get()) != 0) return report(name + ": fsync " + ErrnoName(errno));
      DropCache(fd.get());
      auto got = ReadAt(fd.get(), content.size() + 1, 0);
      if (!got) return report(name + ": read " + ErrnoName(got.error()));
      if (*got != content) report(name + ": " + SameBytes(*got, content).message());
    }
    for (int i = 0; i < kFilesPerThread; ++i) {
      const std::string name = name_of(thread, i);
      if (auto same = FileHasContentUncached(Path(name), content_of(name)); !same) {
        report(same.message());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  auto shared = ListDir(Path("shared"));
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->size(), static_cast<size_t>(kThreads * kFilesPerThread / 2));
  ASSERT_TRUE(Remount());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kFilesPerThread; ++i) {
      const std::string name = name_of(t, i);
      EXPECT_TRUE(FileHasContent(Path(name), content_of(name)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Permissions, checked by the kernel (default_permissions) for another user (allow_other).

// fn run as nobody: "OK" or the errno's name it returned, or why it could not run.
std::string AsNobody(const std::function<int()>& fn) {
  auto result = RunAsUser(fn);
  if (!result) return "<" + result.error() + ">";
  return ErrnoName(*result);
}

TEST_F(PosixTest, PermissionsAsNonRootUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as uid " << kNobodyUid;
  ASSERT_EQ(Outcome(chmod(mount_->mountpoint().c_str(), 0755)), "OK");
  const std::string root_file = Path("root_file");
  ASSERT_EQ(ErrnoName(WriteFile(root_file, "secret")), "OK");
  ASSERT_EQ(Outcome(chmod(root_file.c_str(), 0644)), "OK");
  const std::string pub = Path("pub");
  ASSERT_EQ(Outcome(mkdir(pub.c_str(), 0777)), "OK");
  ASSERT_EQ(Outcome(chmod(pub.c_str(), 0777)), "OK");
  const std::string sticky = Path("sticky");
  ASSERT_EQ(Outcome(mkdir(sticky.c_str(), 0777)), "OK");
  ASSERT_EQ(Outcome(chmod(sticky.c_str(), 01777)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(sticky + "/roots", "root's")), "OK");
  const std::string closed = Path("closed");
  ASSERT_EQ(Outcome(mkdir(closed.c_str(), 0700)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(closed + "/inside", "hidden")), "OK");

  auto open_errno = [](const std::string& path, int flags) {
    return [path, flags] {
      int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
      if (fd < 0) return errno;
      close(fd);
      return 0;
    };
  };
  auto call_errno = [](auto call) { return [call] { return call() == 0 ? 0 : errno; }; };

  EXPECT_EQ(AsNobody(open_errno(root_file, O_WRONLY)), "EACCES");
  EXPECT_EQ(AsNobody(open_errno(root_file, O_RDONLY)), "OK");
  EXPECT_EQ(AsNobody(open_errno(Path("mine_at_root"), O_CREAT | O_WRONLY)), "EACCES");
  EXPECT_EQ(AsNobody(call_errno([&] { return chmod(root_file.c_str(), 0666); })), "EPERM");
  EXPECT_EQ(AsNobody(open_errno(closed + "/inside", O_RDONLY)), "EACCES");
  EXPECT_EQ(AsNobody(call_errno([&] { return unlink(root_file.c_str()); })), "EACCES");

  EXPECT_EQ(AsNobody(open_errno(pub + "/mine", O_CREAT | O_WRONLY)), "OK");
  auto mine = Stat(pub + "/mine");
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->st_uid, kNobodyUid);
  EXPECT_EQ(mine->st_gid, kNobodyGid);
  EXPECT_EQ(AsNobody(call_errno([&] { return mkdir((pub + "/mydir").c_str(), 0755); })), "OK");

  // Sticky directory: others' files cannot be removed or renamed; one's own can.
  EXPECT_EQ(AsNobody(call_errno([&] { return unlink((sticky + "/roots").c_str()); })), "EPERM");
  EXPECT_EQ(AsNobody(call_errno(
                [&] { return rename((sticky + "/roots").c_str(), (sticky + "/stolen").c_str()); })),
            "EPERM");
  EXPECT_TRUE(FileHasContent(sticky + "/roots", "root's"));
  EXPECT_EQ(AsNobody(open_errno(sticky + "/own", O_CREAT | O_WRONLY)), "OK");
  EXPECT_EQ(AsNobody(call_errno([&] { return unlink((sticky + "/own").c_str()); })), "OK");
  EXPECT_EQ(Entries(sticky), std::vector<std::string>{"roots"});

  // A write by a user who may not keep them clears set-user-ID and set-group-ID, as on ext4.
  const std::string setid = Path("setid");
  ASSERT_EQ(ErrnoName(WriteFile(setid, "x")), "OK");
  ASSERT_EQ(Outcome(chmod(setid.c_str(), 06777)), "OK");
  EXPECT_EQ(AsNobody([&] {
              int fd = open(setid.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
              if (fd < 0) return errno;
              const int err = write(fd, "y", 1) == 1 ? 0 : errno;
              close(fd);
              return err;
            }),
            "OK");
  auto after = Stat(setid);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->st_mode & 07777, 0777u);
  EXPECT_TRUE(FileHasContent(setid, "xy"));
}

// Who keeps set-user-ID, set-group-ID and a file capability through a write, a truncate and a
// chown: the same as on ext4. The kernel knows the caller's privileges and flags each change
// (FUSE_HANDLE_KILLPRIV_V2); the mount clears the bits.
TEST_F(PosixTest, SetIdBitsAndCapabilitiesGoAsOnExt4) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as uid " << kNobodyUid;
  ASSERT_EQ(Outcome(chmod(mount_->mountpoint().c_str(), 0755)), "OK");
  const std::string f = Path("setid");
  ASSERT_EQ(ErrnoName(WriteFile(f, "x")), "OK");
  auto mode = [&] {
    auto st = Stat(f);
    return st ? st->st_mode & 07777 : 0u;
  };
  auto append = [&](int extra_flags) {
    return [&f, extra_flags] {
      int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC | extra_flags);
      if (fd < 0) return errno;
      void* block = nullptr;
      if (posix_memalign(&block, 4096, 4096) != 0) return ENOMEM;
      std::memset(block, 'z', 4096);
      const bool direct = (extra_flags & O_DIRECT) != 0;
      const ssize_t n = direct ? pwrite(fd, block, 4096, 0) : write(fd, block, 1);
      const int err = n > 0 ? 0 : errno;
      std::free(block);
      close(fd);
      return err;
    };
  };

  // root may keep them (CAP_FSETID).
  ASSERT_EQ(Outcome(chmod(f.c_str(), 06777)), "OK");
  ASSERT_EQ(append(O_APPEND)(), 0);
  EXPECT_EQ(mode(), 06777u);
  // A write through O_DIRECT by nobody clears both.
  EXPECT_EQ(AsNobody(append(O_DIRECT)), "OK");
  EXPECT_EQ(mode(), 0777u);
  // So does a truncate by nobody.
  ASSERT_EQ(Outcome(chmod(f.c_str(), 06777)), "OK");
  EXPECT_EQ(AsNobody([&] { return truncate(f.c_str(), 1) == 0 ? 0 : errno; }), "OK");
  EXPECT_EQ(mode(), 0777u);
  // Without group execute, set-group-ID marks mandatory locking and stays; set-user-ID goes.
  ASSERT_EQ(Outcome(chmod(f.c_str(), 06767)), "OK");
  EXPECT_EQ(AsNobody(append(O_APPEND)), "OK");
  EXPECT_EQ(mode(), 02767u);
  // A chown clears set-user-ID even for root, and set-group-ID where group may execute.
  ASSERT_EQ(Outcome(chmod(f.c_str(), 06755)), "OK");
  ASSERT_EQ(Outcome(chown(f.c_str(), 65534, static_cast<gid_t>(-1))), "OK");
  EXPECT_EQ(mode(), 0755u);
  ASSERT_EQ(Outcome(chown(f.c_str(), 0, static_cast<gid_t>(-1))), "OK");

  // A file capability (VFS_CAP_REVISION_2: magic, then permitted and inheritable words) goes
  // with any write, root's too.
  const uint32_t cap[5] = {0x02000000u, 1u << 10, 0, 0, 0};  // CAP_NET_BIND_SERVICE
  ASSERT_EQ(Outcome(setxattr(f.c_str(), "security.capability", cap, sizeof(cap), 0)), "OK");
  char back[64];
  ASSERT_EQ(getxattr(f.c_str(), "security.capability", back, sizeof(back)),
            static_cast<ssize_t>(sizeof(cap)));
  ASSERT_EQ(append(O_APPEND)(), 0);
  EXPECT_EQ(getxattr(f.c_str(), "security.capability", back, sizeof(back)), -1);
  EXPECT_EQ(errno, ENODATA);
}

// ---------------------------------------------------------------------------------------------
// Persistence and admin commands

TEST_F(PosixTest, TreePersistsAcrossUnmountAndMount) {
  struct FileSpec {
    std::string path;
    std::string content;
    mode_t mode;
  };
  const std::vector<FileSpec> files = {
      {"empty", "", 0644},
      {"one", "1", 0600},
      {"inline", PatternBytes(20, kInlineLimit), 0640},
      {"boundary", PatternBytes(21, kInlineLimit + 1), 0755},
      {"docs/medium", PatternBytes(22, 100'000), 0444},
      {"docs/deep/er/big", PatternBytes(23, kMiB + 3), 0600},
  };
  const bool root = geteuid() == 0;
  ASSERT_EQ(Outcome(mkdir(Path("docs").c_str(), 0750)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("docs/deep").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("docs/deep/er").c_str(), 0700)), "OK");
  for (const FileSpec& spec : files) {
    ASSERT_EQ(ErrnoName(WriteFile(Path(spec.path), spec.content)), "OK") << spec.path;
    ASSERT_EQ(Outcome(chmod(Path(spec.path).c_str(), spec.mode)), "OK");
  }
  ASSERT_EQ(Outcome(chmod(Path("docs").c_str(), 0750)), "OK");
  ASSERT_EQ(Outcome(link(Path("docs/medium").c_str(), Path("medium_link").c_str())), "OK");
  ASSERT_EQ(Outcome(symlink("deep/er/big", Path("docs/to_big").c_str())), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(Path("docs/medium"), "user.tag", "tagged")), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(Path("docs"), "user.dir", "d")), "OK");
  {
    UniqueFd fd(open(Path("sparse").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(ErrnoName(WriteAllAt(fd.get(), "end!", 100 << 20)), "OK");
    ASSERT_EQ(Outcome(fsync(fd.get())), "OK");
  }
  if (root) {
    ASSERT_EQ(Outcome(chown(Path("one").c_str(), 1000, 1001)), "OK");
  }
  const timespec times[2] = {{1'500'000'000, 1}, {1'600'000'000, 2}};
  ASSERT_EQ(Outcome(utimensat(AT_FDCWD, Path("boundary").c_str(), times, 0)), "OK");
  for (const char* dir : {"", "docs", "docs/deep", "docs/deep/er"}) {
    ASSERT_EQ(ErrnoName(FsyncPath(Path(dir))), "OK") << dir;
  }

  auto verify = [&] {
    for (const FileSpec& spec : files) {
      EXPECT_TRUE(FileHasContentUncached(Path(spec.path), spec.content));
      EXPECT_EQ(StatOrFail(Path(spec.path)).st_mode & 07777, spec.mode) << spec.path;
    }
    EXPECT_EQ(Entries(Path("")), (std::vector<std::string>{"boundary", "docs", "empty", "inline",
                                                           "medium_link", "one", "sparse"}));
    EXPECT_EQ(Entries(Path("docs")), (std::vector<std::string>{"deep", "medium", "to_big"}));
    EXPECT_EQ(Entries(Path("docs/deep/er")), std::vector<std::string>{"big"});
    EXPECT_EQ(StatOrFail(Path("docs")).st_mode & 07777, 0750U);
    EXPECT_EQ(StatOrFail(Path("docs/deep/er")).st_mode & 07777, 0700U);
    EXPECT_EQ(StatOrFail(Path("medium_link")).st_ino, StatOrFail(Path("docs/medium")).st_ino);
    EXPECT_EQ(StatOrFail(Path("medium_link")).st_nlink, 2U);
    char target[256] = {};
    EXPECT_EQ(readlink(Path("docs/to_big").c_str(), target, sizeof(target) - 1), 11);
    EXPECT_STREQ(target, "deep/er/big");
    EXPECT_EQ(GetXattr(Path("medium_link"), "user.tag"), "tagged");
    EXPECT_EQ(GetXattr(Path("docs"), "user.dir"), "d");
    EXPECT_EQ(StatOrFail(Path("sparse")).st_size, (100 << 20) + 4);
    UniqueFd fd(open(Path("sparse").c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(SameBytes(Read(fd.get(), 8, (100 << 20) - 4), std::string(4, '\0') + "end!"));
    EXPECT_TRUE(SameBytes(Read(fd.get(), 4096, 50 << 20), std::string(4096, '\0')));
    if (root) {
      EXPECT_EQ(StatOrFail(Path("one")).st_uid, 1000U);
      EXPECT_EQ(StatOrFail(Path("one")).st_gid, 1001U);
    }
    const struct stat boundary = StatOrFail(Path("boundary"));
    EXPECT_EQ(boundary.st_mtim.tv_sec, 1'600'000'000);
    EXPECT_EQ(boundary.st_mtim.tv_nsec, 2);
  };
  verify();
  ASSERT_TRUE(UnmountOnly());
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  ASSERT_TRUE(MountOnly());
  verify();
  ASSERT_TRUE(Remount());
  verify();
}

TEST_F(PosixTest, StatusJsonCountsKnownFiles) {
  auto baseline = ReadStatus(*mount_);
  ASSERT_TRUE(baseline) << baseline.error();
  CommandResult plain = RunCairn({"status", mount_->mountpoint()});
  EXPECT_TRUE(plain.ok()) << plain.Describe();
  EXPECT_FALSE(plain.out.empty());

  for (const char* dir : {"s1", "s2", "s2/s3"}) {
    ASSERT_EQ(Outcome(mkdir(Path(dir).c_str(), 0755)), "OK");
  }
  const std::map<std::string, size_t> files = {
      {"s1/a", 1},                 // inline
      {"s1/b", kInlineLimit},      // inline, at the limit
      {"s2/c", kInlineLimit + 1},  // segment
      {"s2/s3/d", 64 * kKiB},      // segment
      {"e", kMiB},                 // segment
  };
  long long total = 0;
  long long in_segments = 0;
  for (const auto& [name, size] : files) {
    ASSERT_EQ(ErrnoName(WriteFile(Path(name), PatternBytes(size, size))), "OK");
    total += static_cast<long long>(size);
    if (size > kInlineLimit) in_segments += static_cast<long long>(size);
  }
  for (const char* dir : {"", "s1", "s2", "s2/s3"})
    ASSERT_EQ(ErrnoName(FsyncPath(Path(dir))), "OK");

  // Counters may trail the fsync a little; wait for them, then compare.
  std::expected<FsStatus, std::string> now;
  for (int attempt = 0; attempt < 50; ++attempt) {
    now = ReadStatus(*mount_);
    ASSERT_TRUE(now) << now.error();
    if (now->files - baseline->files == 5 && now->bytes - baseline->bytes == total &&
        now->inline_files - baseline->inline_files == 2) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(now->files - baseline->files, 5);
  EXPECT_EQ(now->directories - baseline->directories, 3);
  EXPECT_EQ(now->bytes - baseline->bytes, total);
  EXPECT_EQ(now->inline_files - baseline->inline_files, 2);
  EXPECT_GE(now->segments, 1);
  EXPECT_GE(now->space_live - baseline->space_live, in_segments);
  EXPECT_GE(now->space_used, now->space_live);

  ASSERT_EQ(Outcome(unlink(Path("e").c_str())), "OK");
  ASSERT_EQ(ErrnoName(FsyncPath(Path(""))), "OK");
  std::expected<FsStatus, std::string> after;
  for (int attempt = 0; attempt < 50; ++attempt) {
    after = ReadStatus(*mount_);
    ASSERT_TRUE(after) << after.error();
    if (after->files - baseline->files == 4 && after->space_live < now->space_live) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(after->files - baseline->files, 4);
  EXPECT_EQ(after->bytes - baseline->bytes, total - static_cast<long long>(kMiB));
  EXPECT_LT(after->space_live, now->space_live);
}

TEST_F(PosixTest, SmallFilesStayOutOfSegments) {
  // Segment bytes as the file system counts them (local files, or a cluster's RADOS objects).
  auto segment_bytes = [&]() -> long long {
    auto status = ReadStatus(*mount_);
    return status ? status->space_used : -1;
  };
  const long long before = segment_bytes();
  ASSERT_GE(before, 0);
  for (size_t size : {1UL, 10UL, 100UL, 1000UL, 4000UL, kInlineLimit}) {
    const std::string name = "small" + std::to_string(size);
    ASSERT_EQ(ErrnoName(WriteFile(Path(name), PatternBytes(size, size))), "OK");
  }
  ASSERT_EQ(ErrnoName(FsyncPath(Path(""))), "OK");
  EXPECT_EQ(segment_bytes(), before)
      << "files of at most " << kInlineLimit << " bytes must be stored inline";
  ASSERT_EQ(ErrnoName(WriteFile(Path("large"), PatternBytes(1, kInlineLimit + 1))), "OK");
  EXPECT_GE(segment_bytes(), before + static_cast<long long>(kInlineLimit) + 1);
}

TEST_F(PosixTest, FsckIsCleanAfterUnmount) {
  ASSERT_EQ(Outcome(mkdir(Path("a").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("b").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("a/sub").c_str(), 0755)), "OK");
  for (int i = 0; i < 30; ++i) {
    const std::string name = "a/f" + std::to_string(i);
    ASSERT_EQ(ErrnoName(WriteFile(Path(name), PatternBytes(i, 1 + i * 7000))), "OK");
  }
  // Overwrites, truncations, renames across directories, unlinks, links, symlinks, xattrs.
  ASSERT_EQ(ErrnoName(WriteFile(Path("a/f3"), PatternBytes(99, 200'000))), "OK");
  ASSERT_EQ(Outcome(truncate(Path("a/f4").c_str(), 10)), "OK");
  ASSERT_EQ(Outcome(truncate(Path("a/f5").c_str(), 300'000)), "OK");
  ASSERT_EQ(Outcome(rename(Path("a/f6").c_str(), Path("b/f6").c_str())), "OK");
  ASSERT_EQ(Outcome(rename(Path("a/f7").c_str(), Path("b/f8").c_str())), "OK");
  ASSERT_EQ(Outcome(rename(Path("a/sub").c_str(), Path("b/sub").c_str())), "OK");
  ASSERT_EQ(Outcome(unlink(Path("a/f9").c_str())), "OK");
  ASSERT_EQ(Outcome(unlink(Path("a/f10").c_str())), "OK");
  ASSERT_EQ(Outcome(link(Path("a/f11").c_str(), Path("b/f11").c_str())), "OK");
  ASSERT_EQ(Outcome(unlink(Path("a/f11").c_str())), "OK");
  ASSERT_EQ(Outcome(link(Path("a/f12").c_str(), Path("b/f12").c_str())), "OK");
  ASSERT_EQ(Outcome(symlink("../a/f13", Path("b/l13").c_str())), "OK");
  ASSERT_EQ(ErrnoName(SetXattr(Path("a/f14"), "user.k", "v")), "OK");
  ASSERT_EQ(Outcome(mkdir(Path("gone").c_str(), 0755)), "OK");
  ASSERT_EQ(Outcome(rmdir(Path("gone").c_str())), "OK");
  ASSERT_EQ(Outcome(renameat2(AT_FDCWD, Path("a/f15").c_str(), AT_FDCWD, Path("b/sub").c_str(),
                              RENAME_EXCHANGE)),
            "OK");

  const std::optional<pid_t> daemon = mount_->daemon_pid();
  ASSERT_TRUE(UnmountOnly());
  if (daemon) {
    EXPECT_FALSE(ProcessAlive(*daemon)) << "`cairn unmount` returned before the daemon exited";
  }
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  ASSERT_TRUE(MountOnly());
  EXPECT_TRUE(FileHasContent(Path("a/f3"), PatternBytes(99, 200'000)));
  EXPECT_TRUE(FileHasContent(Path("b/f6"), PatternBytes(6, 1 + 6 * 7000)));
  EXPECT_TRUE(FileHasContent(Path("b/f11"), PatternBytes(11, 1 + 11 * 7000)));
  EXPECT_TRUE(S_ISDIR(StatOrFail(Path("a/f15")).st_mode));
}

}  // namespace
}  // namespace cairn::integration
