// Helpers for the integration tests: they drive a real Cairn mount through the `cairn` program
// (path in the CAIRN_BIN compile definition) and plain POSIX calls, and link nothing from src/.
//
// CairnMount owns a temporary directory under /var/tmp holding DATA_DIR and MOUNTPOINT; its
// destructor always unmounts (`cairn unmount`, then `fusermount3 -uz`), kills a daemon that is
// still alive and removes the directory. MountedTest is a gtest fixture that formats and mounts one
// in SetUp. Nothing here is thread-safe unless said so; RunCommand and RunAsUser fork, so call them
// only while the test has no other threads.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::integration {

inline constexpr uid_t kNobodyUid = 65534;
inline constexpr gid_t kNobodyGid = 65534;
inline constexpr std::chrono::milliseconds kCommandTimeout{60'000};
// Largest file the contract stores inline in metadata rather than in a segment.
inline constexpr size_t kInlineLimit = 4096;

// The outcome of one program run.
struct CommandResult {
  // The exit status; 128 + signal number if a signal killed it; -1 if it could not be started.
  int exit_code = -1;
  bool timed_out = false;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr

  bool ok() const { return exit_code == 0 && !timed_out; }
  // "`cairn mount a b` exited 1; stderr: ..." for failure messages.
  std::string Describe() const;

  std::string command;  // the command line, for Describe()
};

// "OK" for 0, else the symbolic name of the errno value ("ENOENT"), so that EXPECT_EQ failures
// read well: EXPECT_EQ(Outcome(rmdir(path)), "ENOTEMPTY").
std::string ErrnoName(int error);
// "OK" if a system call returned >= 0, else ErrnoName(errno). Pass the call itself as argument.
template <typename T>
std::string Outcome(T rc) {
  return rc >= 0 ? "OK" : ErrnoName(errno);
}

// Runs argv (argv[0] is looked up in PATH when it has no slash) with stdin from /dev/null and
// returns its exit status and output. The child is killed after `timeout`. Output goes to memory
// files rather than pipes, so a daemon that inherits them neither blocks the caller waiting for
// EOF nor dies of SIGPIPE later.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = kCommandTimeout);

// KEY='value' lines of scripts/cluster.sh's env file, and the value of KEY in the one that
// CAIRN_TEST_CLUSTER_ENV names ("" when unset).
std::string EnvValue(const std::string& text, const std::string& key);
std::string ClusterEnv(const std::string& key);

// RunCommand with CAIRN_BIN prepended.
CommandResult RunCairn(const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = kCommandTimeout);

// Forks; the child drops all supplementary groups, switches to gid then uid, runs fn and reports
// what fn returned (by convention 0 on success or an errno value). The error holds why no value
// came back (identity switch failed, child crashed). fn runs in another process: it must not use
// gtest assertions, and what it changes in memory is lost.
std::expected<int, std::string> RunAsUser(const std::function<int()>& fn, uid_t uid = kNobodyUid,
                                          gid_t gid = kNobodyGid);

// True if `path` is the mount point of a mounted file system (per /proc/self/mountinfo), including
// a FUSE mount whose daemon died. Compared as text, without touching the file system, so `path`
// must be absolute and free of symlinks (as the paths of TempDir are).
bool IsMounted(const std::string& path);
// How many mounts are stacked at exactly `path` (same lexical rules as IsMounted).
int MountCount(const std::string& path);

// True if the process exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Polls until ProcessAlive(pid) is false; returns false on timeout. Reaps pid if it is our child.
bool WaitForProcessExit(pid_t pid, std::chrono::milliseconds timeout);

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now; returns 0 or the errno of close().
  int Reset();

 private:
  int fd_;
};

// Deterministic pseudo-random bytes (splitmix64, so the same on every platform and library).
std::string PatternBytes(uint64_t seed, size_t size);
// FNV-1a; used to derive seeds and sizes from file names.
uint64_t HashString(std::string_view text);

// pwrite()s all of data at offset; returns 0 or errno.
int WriteAllAt(int fd, std::string_view data, off_t offset);
// pread()s up to size bytes at offset (fewer only at end of file).
std::expected<std::string, int> ReadAt(int fd, size_t size, off_t offset);
// Creates or truncates path with mode, writes data, fsyncs and closes; returns 0 or errno.
int WriteFile(const std::string& path, std::string_view data, mode_t mode = 0644);
// Reads all of path or returns the errno of the first failing call.
std::expected<std::string, int> ReadFile(const std::string& path);
// Names in a directory other than "." and "..", sorted; errno on failure.
std::expected<std::vector<std::string>, int> ListDir(const std::string& path);
// Drops the page cache of a file (after writing it back), so the next read reaches the daemon.
void DropCache(int fd);
// Writes back and drops the whole page cache (root only; a no-op otherwise), so the next reads of
// any file reach the daemon.
void DropCaches();
// Checks that path holds exactly `expected`; on a mismatch says where, not the whole content.
::testing::AssertionResult FileHasContent(const std::string& path, std::string_view expected);
// Checks `actual == expected`; on a mismatch reports sizes and first differing offset.
::testing::AssertionResult SameBytes(std::string_view actual, std::string_view expected);

// A temporary directory under /var/tmp, mode 0755 so other users can reach a mount inside it.
// The destructor removes it recursively, unless something is still mounted inside.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One Cairn file system: TEMP/data (DATA_DIR, not created until Format) and TEMP/mnt (MOUNTPOINT).
class CairnMount {
 public:
  CairnMount();
  // Unmounts if mounted, kills the daemon if it is still alive, removes the temporary directory.
  ~CairnMount();
  CairnMount(const CairnMount&) = delete;
  CairnMount& operator=(const CairnMount&) = delete;

  // False if the temporary directory could not be made.
  bool ok() const { return dir_.ok(); }
  const std::string& root() const { return dir_.path(); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& mountpoint() const { return mountpoint_; }
  // mountpoint()/relative
  std::string Path(std::string_view relative) const;

  // `cairn format DATA_DIR EXTRA...`.
  CommandResult Format(const std::vector<std::string>& extra = {});
  // `cairn mount DATA_DIR MOUNTPOINT EXTRA...`; on success also checks that the mount is visible
  // and remembers the daemon pid.
  CommandResult Mount(const std::vector<std::string>& extra = {});
  // `cairn unmount`.
  CommandResult Unmount();
  // `fusermount3 -uz`, for a mount whose daemon is dead or stuck. True if nothing is mounted after.
  bool ForceUnmount();
  CommandResult Fsck();
  CommandResult StatusJson();

  // The pid in DATA_DIR/cairn.pid, if the file exists and holds a number.
  std::optional<pid_t> ReadPidFile() const;
  // The daemon pid read when the last Mount() succeeded.
  std::optional<pid_t> daemon_pid() const { return daemon_pid_; }
  // True if pid is alive and is a Cairn daemon for this data directory (so safe to kill).
  bool IsOurDaemon(pid_t pid) const;
  // SIGKILLs the daemon (pid from DATA_DIR/cairn.pid, else the remembered one) and waits for it to
  // die. Leaves the mount attached, dead. False if there was no such daemon or it did not die.
  bool KillDaemon();

 private:
  TempDir dir_;
  std::string data_dir_;
  std::string mountpoint_;
  std::optional<pid_t> daemon_pid_;
};

// Fixture: a formatted and mounted Cairn per test. Skips when FUSE cannot be used here.
class MountedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string Path(std::string_view relative) const { return mount_->Path(relative); }
  // Unmounts with `cairn unmount` and mounts again; all descriptors into the mount must be closed.
  ::testing::AssertionResult Remount();
  // Unmounts and leaves the file system offline (e.g. for fsck); Mount() brings it back.
  ::testing::AssertionResult UnmountOnly();
  ::testing::AssertionResult MountOnly();

  std::unique_ptr<CairnMount> mount_;
};

// One entry of a tree as a user sees it: type, permissions, owner, size, times, links, target,
// xattrs and content (a hash and the size for regular files).
struct Entry {
  struct stat st {};
  std::string target;
  std::map<std::string, std::string> xattrs;
  std::string content;
};
// Every entry under root, by path relative to it ("/a/b").
std::map<std::string, Entry> Walk(const std::string& root);
// Same content and metadata; hard links: names that share an inode on one side share one on the
// other (inode numbers themselves may differ between a snapshot view and a restored tree).
void ExpectSameTreeImpl(const std::map<std::string, Entry>& a,
                        const std::map<std::string, Entry>& b);
#define ExpectSameTree(a, b)    \
  do {                          \
    SCOPED_TRACE(#a " vs " #b); \
    ExpectSameTreeImpl(a, b);   \
  } while (0)

}  // namespace cairn::integration
