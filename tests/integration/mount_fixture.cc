#include "mount_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#ifndef CAIRN_BIN
#error "CAIRN_BIN must be defined to the path of the cairn program"
#endif

namespace cairn::integration {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Reads a memory file from its start.
std::string ReadWholeFd(int fd) {
  std::string text;
  char buffer[16384];
  off_t offset = 0;
  while (true) {
    ssize_t n = pread(fd, buffer, sizeof(buffer), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

std::string ShellQuote(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t\n'\"\\$`*?") == std::string::npos) return word;
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Undoes the octal escapes (\040 for space, ...) of /proc/self/mountinfo.
std::string UnescapeMountField(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string digits = field.substr(i + 1, 3);
      if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>(std::stoi(digits, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += field[i];
  }
  return out;
}

// The state letter of /proc/PID/stat ('R', 'S', 'D', 'Z', ...), or 0 if there is no such process.
char ProcessState(pid_t pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return 0;
  // The command name is in parentheses and may contain spaces; the state follows the last ')'.
  size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return 0;
  return line[close_paren + 2];
}

void SleepFor(milliseconds duration) { std::this_thread::sleep_for(duration); }

}  // namespace

std::string CommandResult::Describe() const {
  std::ostringstream text;
  text << "`" << command << "` ";
  if (timed_out) {
    text << "timed out";
  } else {
    text << "exited " << exit_code;
  }
  text << "\n--- stdout ---\n" << out << "\n--- stderr ---\n" << err;
  return text.str();
}

std::string ErrnoName(int error) {
  if (error == 0) return "OK";
  const char* name = strerrorname_np(error);
  return name != nullptr ? name : "errno " + std::to_string(error);
}

CommandResult RunCommand(const std::vector<std::string>& argv, milliseconds timeout) {
  CommandResult result;
  for (const std::string& word : argv) {
    if (!result.command.empty()) result.command += ' ';
    result.command += ShellQuote(word);
  }
  if (argv.empty()) return result;

  UniqueFd out_fd(memfd_create("cairn-it-stdout", MFD_CLOEXEC));
  UniqueFd err_fd(memfd_create("cairn-it-stderr", MFD_CLOEXEC));
  if (!out_fd.valid() || !err_fd.valid()) {
    result.err = std::string("memfd_create: ") + std::strerror(errno);
    return result;
  }
  // Everything the child needs is prepared before fork(): it may only make system calls after.
  std::vector<char*> args;
  for (const std::string& word : argv) args.push_back(const_cast<char*>(word.c_str()));
  args.push_back(nullptr);
  const bool search_path = argv[0].find('/') == std::string::npos;

  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) {
    result.err = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd.get(), STDOUT_FILENO) < 0 ||
        dup2(err_fd.get(), STDERR_FILENO) < 0) {
      _exit(126);
    }
    // Descriptors the test holds open (some inside the mount) must not leak into a daemon.
    close_range(3, ~0U, 0);
    if (search_path) {
      execvp(args[0], args.data());
    } else {
      execv(args[0], args.data());
    }
    const char* message = "exec failed: ";
    ssize_t ignored = write(STDERR_FILENO, message, std::strlen(message));
    ignored = write(STDERR_FILENO, args[0], std::strlen(args[0]));
    (void)ignored;
    _exit(127);
  }

  const auto deadline = steady_clock::now() + timeout;
  int status = 0;
  milliseconds pause{1};
  while (true) {
    pid_t reaped = waitpid(pid, &status, WNOHANG);
    if (reaped == pid) break;
    if (reaped < 0 && errno != EINTR) {
      result.err = std::string("waitpid: ") + std::strerror(errno);
      return result;
    }
    if (steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.timed_out = true;
      break;
    }
    SleepFor(pause);
    pause = std::min(pause * 2, milliseconds(20));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.out = ReadWholeFd(out_fd.get());
  result.err = ReadWholeFd(err_fd.get());
  return result;
}

CommandResult RunCairn(const std::vector<std::string>& args, milliseconds timeout) {
  std::vector<std::string> argv{CAIRN_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

std::expected<int, std::string> RunAsUser(const std::function<int()>& fn, uid_t uid, gid_t gid) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return std::unexpected(std::string("pipe2: ") + std::strerror(errno));
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    read_end.Reset();
    // Order matters: groups and gid can only be changed while still root.
    if (setgroups(0, nullptr) != 0) _exit(101);
    if (setgid(gid) != 0) _exit(102);
    if (setuid(uid) != 0) _exit(103);
    if (getuid() != uid || geteuid() != uid) _exit(104);
    int value = fn();
    if (write(write_end.get(), &value, sizeof(value)) != sizeof(value)) _exit(105);
    _exit(0);
  }
  write_end.Reset();
  int value = 0;
  ssize_t n;
  do {
    n = read(read_end.get(), &value, sizeof(value));
  } while (n < 0 && errno == EINTR);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof(value))) return value;
  if (WIFEXITED(status)) {
    const char* why = "unknown";
    switch (WEXITSTATUS(status)) {
      case 101:
        why = "setgroups failed";
        break;
      case 102:
        why = "setgid failed";
        break;
      case 103:
        why = "setuid failed";
        break;
      case 104:
        why = "uid did not change";
        break;
      case 105:
        why = "could not report the result";
        break;
    }
    return std::unexpected("child as uid " + std::to_string(uid) + ": " + why);
  }
  if (WIFSIGNALED(status)) {
    return std::unexpected("child as uid " + std::to_string(uid) + " killed by signal " +
                           std::to_string(WTERMSIG(status)));
  }
  return std::unexpected(std::string("child gave no result"));
}

int MountCount(const std::string& path) {
  // Lexical only: stat() on a mount whose daemon hangs would hang too.
  const std::filesystem::path wanted = std::filesystem::path(path).lexically_normal();
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  int count = 0;
  while (std::getline(mountinfo, line)) {
    // Fields: mount id, parent id, major:minor, root, mount point, ...
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    if (!(fields >> id >> parent >> device >> root >> mount_point)) continue;
    if (UnescapeMountField(mount_point) == wanted.string()) ++count;
  }
  return count;
}

bool IsMounted(const std::string& path) { return MountCount(path) > 0; }

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  char state = ProcessState(pid);
  return state != 0 && state != 'Z' && state != 'X';
}

bool WaitForProcessExit(pid_t pid, milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (true) {
    // Reap it if it is our child; harmless (ECHILD) otherwise.
    int status;
    waitpid(pid, &status, WNOHANG);
    if (!ProcessAlive(pid)) return true;
    if (steady_clock::now() > deadline) return false;
    SleepFor(milliseconds(10));
  }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

int UniqueFd::Reset() {
  if (fd_ < 0) return 0;
  int rc = close(std::exchange(fd_, -1));
  return rc == 0 ? 0 : errno;
}

std::string PatternBytes(uint64_t seed, size_t size) {
  std::string bytes(size, '\0');
  uint64_t state = seed;
  size_t i = 0;
  while (i < size) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < size; ++b, ++i) {
      bytes[i] = static_cast<char>(z >> (8 * b));
    }
  }
  return bytes;
}

uint64_t HashString(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

int WriteAllAt(int fd, std::string_view data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

std::expected<std::string, int> ReadAt(int fd, size_t size, off_t offset) {
  std::string data(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, data.data() + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

int WriteFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return errno;
  if (int rc = WriteAllAt(fd.get(), data, 0); rc != 0) return rc;
  if (fsync(fd.get()) != 0) return errno;
  return fd.Reset();
}

std::expected<std::string, int> ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::unexpected(errno);
  std::string data;
  std::string buffer(1 << 20, '\0');
  while (true) {
    ssize_t n = read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errno);
    }
    if (n == 0) break;
    data.append(buffer.data(), static_cast<size_t>(n));
  }
  return data;
}

std::expected<std::vector<std::string>, int> ListDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return std::unexpected(errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  int error = errno;
  closedir(dir);
  if (error != 0) return std::unexpected(error);
  std::sort(names.begin(), names.end());
  return names;
}

void DropCaches() {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd >= 0) {
    (void)!write(fd, "3", 1);
    close(fd);
  }
}

void DropCache(int fd) {
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

::testing::AssertionResult SameBytes(std::string_view actual, std::string_view expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t common = std::min(actual.size(), expected.size());
  size_t first = 0;
  while (first < common && actual[first] == expected[first]) ++first;
  auto result = ::testing::AssertionFailure();
  result << "got " << actual.size() << " bytes, expected " << expected.size() << "; ";
  if (first < common) {
    result << "first difference at offset " << first << " (got 0x" << std::hex
           << static_cast<int>(static_cast<unsigned char>(actual[first])) << ", expected 0x"
           << static_cast<int>(static_cast<unsigned char>(expected[first])) << std::dec << ")";
  } else {
    result << "one is a prefix of the other";
  }
  return result;
}

::testing::AssertionResult FileHasContent(const std::string& path, std::string_view expected) {
  auto data = ReadFile(path);
  if (!data) {
    return ::testing::AssertionFailure()
           << "reading " << path << ": " << std::strerror(data.error());
  }
  auto same = SameBytes(*data, expected);
  if (!same) return ::testing::AssertionFailure() << path << ": " << same.message();
  return ::testing::AssertionSuccess();
}

TempDir::TempDir() {
  std::string pattern = "/var/tmp/cairn-it-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "mkdtemp " << pattern << ": " << std::strerror(errno) << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(pattern, ec);
  path_ = ec ? pattern : canonical.string();
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  // Never descend into a file system that is still mounted: the unmount failed, and deleting
  // through it would either hang or destroy what is needed to debug.
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    if (!(fields >> id >> parent >> device >> root >> mount_point)) continue;
    if (UnescapeMountField(mount_point).starts_with(path_ + "/")) {
      std::cerr << "not removing " << path_ << ": " << UnescapeMountField(mount_point)
                << " is still mounted\n";
      return;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "removing " << path_ << ": " << ec.message() << "\n";
}

CairnMount::CairnMount() {
  if (!dir_.ok()) return;
  data_dir_ = dir_.path() + "/data";
  mountpoint_ = dir_.path() + "/mnt";
  if (mkdir(mountpoint_.c_str(), 0755) != 0) {
    std::cerr << "mkdir " << mountpoint_ << ": " << std::strerror(errno) << "\n";
  }
}

CairnMount::~CairnMount() {
  if (!dir_.ok()) return;
  if (IsMounted(mountpoint_)) {
    CommandResult unmount = RunCairn({"unmount", mountpoint_}, milliseconds(30'000));
    if (!unmount.ok()) std::cerr << "teardown: " << unmount.Describe() << "\n";
    if (IsMounted(mountpoint_) && !ForceUnmount()) {
      std::cerr << "teardown: " << mountpoint_ << " is still mounted\n";
    }
  }
  // `cairn unmount` returns after the daemon exited; if it did not, give it a moment, then kill it.
  std::vector<pid_t> pids;
  if (daemon_pid_) pids.push_back(*daemon_pid_);
  if (auto from_file = ReadPidFile(); from_file && from_file != daemon_pid_) {
    pids.push_back(*from_file);
  }
  for (pid_t pid : pids) {
    if (!IsOurDaemon(pid)) continue;
    if (!WaitForProcessExit(pid, milliseconds(5'000))) {
      std::cerr << "teardown: killing daemon " << pid << " that outlived its mount\n";
      kill(pid, SIGKILL);
      WaitForProcessExit(pid, milliseconds(5'000));
    }
  }
  if (IsMounted(mountpoint_)) ForceUnmount();
}

std::string CairnMount::Path(std::string_view relative) const {
  std::string path = mountpoint_;
  if (!relative.empty()) {
    path += '/';
    path += relative;
  }
  return path;
}

// KEY='value' lines of scripts/cluster.sh's env file.
std::string EnvValue(const std::string& text, const std::string& key) {
  size_t at = text.find(key + "=");
  while (at != std::string::npos && at != 0 && text[at - 1] != '\n') {
    at = text.find(key + "=", at + 1);
  }
  if (at == std::string::npos) return "";
  size_t begin = at + key.size() + 1, end = text.find('\n', begin);
  std::string v = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
  return v;
}

std::string ClusterEnv(const std::string& key) {
  const char* env = ::getenv("CAIRN_TEST_CLUSTER_ENV");
  if (!env || !*env) return "";
  auto text = ReadFile(env);
  return text ? EnvValue(*text, key) : "";
}

CommandResult CairnMount::Format(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"format", data_dir_};
  // The suites run on a cluster file system when CAIRN_TEST_CLUSTER_ENV names the env file of
  // engines started by `scripts/cluster.sh start DIR --nodes 0`: a database of its own per file
  // system, in the shared Ceph pool.
  if (const char* env = ::getenv("CAIRN_TEST_CLUSTER_ENV"); env && *env) {
    auto text = ReadFile(env);
    if (!text) {
      CommandResult r;
      r.err = std::string("[test] cannot read ") + env;
      return r;
    }
    static std::atomic<int> counter{0};
    const std::string db = "cairn_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    CommandResult created = RunCommand({"/usr/lib/postgresql/15/bin/createdb", "-h", "127.0.0.1",
                                        "-p", EnvValue(*text, "PG_PORT"), "-U", "postgres", db});
    if (!created.ok()) return created;
    args.insert(args.end(), {"--meta", EnvValue(*text, "META") + " dbname=" + db, "--ceph-conf",
                             EnvValue(*text, "CEPH_CONF"), "--pool", "cairn"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return RunCairn(args);
}

CommandResult CairnMount::Mount(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"mount", data_dir_, mountpoint_};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult result = RunCairn(args);
  if (!result.ok()) return result;
  if (!IsMounted(mountpoint_)) {
    result.exit_code = -1;
    result.err += "\n[test] `cairn mount` succeeded but " + mountpoint_ + " is not mounted";
    return result;
  }
  daemon_pid_ = ReadPidFile();
  if (!daemon_pid_) std::cerr << "warning: no daemon pid in " << data_dir_ << "/cairn.pid\n";
  return result;
}

CommandResult CairnMount::Unmount() {
  CommandResult result = RunCairn({"unmount", mountpoint_});
  if (result.ok() && IsMounted(mountpoint_)) {
    result.exit_code = -1;
    result.err += "\n[test] `cairn unmount` succeeded but " + mountpoint_ + " is still mounted";
  }
  return result;
}

bool CairnMount::ForceUnmount() {
  CommandResult result = RunCommand({"fusermount3", "-uz", mountpoint_}, milliseconds(30'000));
  if (IsMounted(mountpoint_)) {
    // fusermount3 refuses in some setups (no setuid bit, odd mtab); umount2 is the last resort.
    RunCommand({"umount", "-l", mountpoint_}, milliseconds(30'000));
  }
  if (IsMounted(mountpoint_)) {
    std::cerr << result.Describe() << "\n";
    return false;
  }
  return true;
}

CommandResult CairnMount::Fsck() { return RunCairn({"fsck", data_dir_}); }

CommandResult CairnMount::StatusJson() { return RunCairn({"status", mountpoint_, "--json"}); }

std::optional<pid_t> CairnMount::ReadPidFile() const {
  std::ifstream file(data_dir_ + "/cairn.pid");
  long pid = 0;
  if (!(file >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool CairnMount::IsOurDaemon(pid_t pid) const {
  if (!ProcessAlive(pid)) return false;
  // The pid may have been recycled: only accept the cairn program itself, or a process whose
  // command line names our data directory.
  struct stat exe_stat, bin_stat;
  const std::string proc = "/proc/" + std::to_string(pid);
  if (stat((proc + "/exe").c_str(), &exe_stat) == 0 && stat(CAIRN_BIN, &bin_stat) == 0 &&
      exe_stat.st_dev == bin_stat.st_dev && exe_stat.st_ino == bin_stat.st_ino) {
    return true;
  }
  std::ifstream cmdline(proc + "/cmdline");
  std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  return args.find(data_dir_) != std::string::npos;
}

bool CairnMount::KillDaemon() {
  std::optional<pid_t> pid = ReadPidFile();
  if (!pid || !IsOurDaemon(*pid)) pid = daemon_pid_;
  if (!pid || !IsOurDaemon(*pid)) return false;
  if (kill(*pid, SIGKILL) != 0) return false;
  return WaitForProcessExit(*pid, milliseconds(10'000));
}

void MountedTest::SetUp() {
  if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not usable here";
  mount_ = std::make_unique<CairnMount>();
  ASSERT_TRUE(mount_->ok()) << "could not create a temporary directory under /var/tmp";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mount = mount_->Mount();
  if (!mount.ok() && geteuid() != 0) {
    GTEST_SKIP() << "mount failed as non-root (allow_other needs user_allow_other in "
                    "/etc/fuse.conf):\n"
                 << mount.Describe();
  }
  ASSERT_TRUE(mount.ok()) << mount.Describe();
}

void MountedTest::TearDown() { mount_.reset(); }

::testing::AssertionResult MountedTest::UnmountOnly() {
  CommandResult unmount = mount_->Unmount();
  if (!unmount.ok()) return ::testing::AssertionFailure() << unmount.Describe();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult MountedTest::MountOnly() {
  CommandResult mount = mount_->Mount();
  if (!mount.ok()) return ::testing::AssertionFailure() << mount.Describe();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult MountedTest::Remount() {
  if (auto unmounted = UnmountOnly(); !unmounted) return unmounted;
  return MountOnly();
}

std::map<std::string, Entry> Walk(const std::string& root) {
  std::map<std::string, Entry> out;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    auto names = ListDir(root + rel);
    EXPECT_TRUE(names.has_value()) << root + rel;
    if (!names) continue;
    for (const auto& n : *names) {
      std::string r = rel + "/" + n;
      std::string p = root + r;
      Entry e;
      EXPECT_EQ(lstat(p.c_str(), &e.st), 0) << p;
      if (S_ISDIR(e.st.st_mode)) todo.push_back(r);
      if (S_ISLNK(e.st.st_mode)) {
        char buf[4096];
        ssize_t len = readlink(p.c_str(), buf, sizeof(buf));
        if (len > 0) e.target.assign(buf, static_cast<size_t>(len));
      } else {
        char list[4096];
        ssize_t len = llistxattr(p.c_str(), list, sizeof(list));
        for (ssize_t i = 0; i < len;) {
          std::string name(list + i);
          char value[4096];
          ssize_t vl = lgetxattr(p.c_str(), name.c_str(), value, sizeof(value));
          if (vl >= 0) e.xattrs[name] = std::string(value, static_cast<size_t>(vl));
          i += static_cast<ssize_t>(name.size()) + 1;
        }
      }
      if (S_ISREG(e.st.st_mode)) {
        auto data = ReadFile(p);
        EXPECT_TRUE(data.has_value()) << p << ": " << (data ? 0 : data.error());
        if (data)
          e.content = std::to_string(HashString(*data)) + ":" + std::to_string(data->size());
      }
      out[r] = std::move(e);
    }
  }
  return out;
}

void ExpectSameTreeImpl(const std::map<std::string, Entry>& a,
                        const std::map<std::string, Entry>& b) {
  ASSERT_EQ(a.size(), b.size());
  std::map<ino_t, std::string> first_a;
  std::map<ino_t, std::string> first_b;
  for (const auto& [name, x] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    const Entry& y = it->second;
    EXPECT_EQ(x.st.st_mode, y.st.st_mode) << name;
    EXPECT_EQ(x.st.st_uid, y.st.st_uid) << name;
    EXPECT_EQ(x.st.st_gid, y.st.st_gid) << name;
    EXPECT_EQ(x.st.st_nlink, y.st.st_nlink) << name;
    EXPECT_EQ(x.st.st_rdev, y.st.st_rdev) << name;
    if (!S_ISDIR(x.st.st_mode)) {
      EXPECT_EQ(x.st.st_size, y.st.st_size) << name;
      EXPECT_EQ(x.st.st_mtim.tv_sec, y.st.st_mtim.tv_sec) << name;
      EXPECT_EQ(x.st.st_mtim.tv_nsec, y.st.st_mtim.tv_nsec) << name;
    }
    EXPECT_EQ(x.target, y.target) << name;
    EXPECT_EQ(x.xattrs, y.xattrs) << name;
    EXPECT_EQ(x.content, y.content) << name;
    auto [ia, new_a] = first_a.emplace(x.st.st_ino, name);
    auto [ib, new_b] = first_b.emplace(y.st.st_ino, name);
    EXPECT_EQ(new_a, new_b) << name;
    if (!new_a && !new_b) {
      EXPECT_EQ(ia->second, ib->second) << name;
    }
  }
}

}  // namespace cairn::integration
