// Crash test: SIGKILL the daemon while a writer process creates files, again and again, and check
// after each crash that fsck is clean, that every file the writer saw fsynced is intact, and that
// no other file holds a byte that was never written. Recovery is what users do: a lazy unmount
// (`umount -l` or `fusermount3 -u -z`) and a mount, or a mount straight over the dead one; some
// cycles take a snapshot and run a push while the writer runs. After each cycle exactly one
// mount is at the mount point and every snapshot taken so far is listed.
//
// Environment: CAIRN_CRASH_CYCLES (default 20), CAIRN_CRASH_SEED (default random; printed, and
// recorded as the "seed" test property, so a failing run can be repeated).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr size_t kKiB = 1024;
constexpr size_t kMaxFileSize = 300 * kKiB;
// Bytes one writer creates at most, which bounds the verification work of later cycles.
constexpr size_t kCycleByteBudget = 32 << 20;
// The writer writes in pieces this large, so a crash can catch a file half written.
constexpr size_t kWritePiece = 64 * kKiB;

// A third of the files inline, a third small in a segment, a third up to kMaxFileSize.
size_t ExpectedSize(const std::string& name) {
  const uint64_t hash = HashString(name);
  const uint64_t r = hash >> 8;
  switch (hash % 3) {
    case 0:
      return 1 + r % kInlineLimit;
    case 1:
      return kInlineLimit + 1 + r % (64 * kKiB - kInlineLimit);
    default:
      return 64 * kKiB + r % (kMaxFileSize - 64 * kKiB + 1);
  }
}

std::string ExpectedContent(const std::string& name) {
  return PatternBytes(HashString(name) ^ 0x5eedULL, ExpectedSize(name));
}

std::string CycleDir(int cycle) { return fmt::format("c{:03}", cycle); }

std::string FileName(int cycle, int index) { return fmt::format("c{:03}/f{:05}", cycle, index); }

bool WriteAllFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The writer process. Creates CycleDir(cycle)/f00000, f00001, ...: each written in pieces,
// fsynced, its directory fsynced, and only then its name appended to the record file and that
// fsynced. Exits 0 when the byte budget is used up, 1 at the first error (expected once the
// daemon is dead). Never returns.
[[noreturn]] void WriterMain(const std::string& mountpoint, int cycle,
                             const std::string& record_path) {
  const std::string dir = mountpoint + "/" + CycleDir(cycle);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) _exit(1);
  // The directory entry itself must be durable before any file in it counts as recorded.
  int root_fd = open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0 || fsync(root_fd) != 0) _exit(1);
  int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) _exit(1);
  int record_fd = open(record_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (record_fd < 0) _exit(1);

  size_t written = 0;
  for (int index = 0; written < kCycleByteBudget; ++index) {
    const std::string name = FileName(cycle, index);
    const std::string content = ExpectedContent(name);
    int fd = open((mountpoint + "/" + name).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) _exit(1);
    for (size_t offset = 0; offset < content.size(); offset += kWritePiece) {
      if (!WriteAllFd(fd, std::string_view(content).substr(offset, kWritePiece))) _exit(1);
    }
    if (fsync(fd) != 0 || close(fd) != 0 || fsync(dir_fd) != 0) _exit(1);
    if (!WriteAllFd(record_fd, name + "\n") || fsync(record_fd) != 0) _exit(1);
    written += content.size();
  }
  _exit(0);
}

// A forked child that is SIGKILLed and reaped on scope exit.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ~ChildProcess() { KillAndWait(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool valid() const { return pid_ > 0; }
  // Returns the wait status, or -1 if the child did not die within 10 s. A child blocked in a
  // FUSE request cannot die before the daemon answers or dies; it is then left behind.
  int KillAndWait() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGKILL);
    const auto deadline = steady_clock::now() + milliseconds(10'000);
    int status = -1;
    while (true) {
      pid_t reaped = waitpid(pid_, &status, WNOHANG);
      if (reaped == pid_ || (reaped < 0 && errno == ECHILD)) break;
      if (steady_clock::now() > deadline) {
        std::cerr << "writer " << pid_ << " did not die\n";
        status = -1;
        break;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// Names in the record file; a last line without its newline was cut by the kill and is ignored.
std::set<std::string> ReadRecord(const std::string& path) {
  std::set<std::string> names;
  auto text = ReadFile(path);
  if (!text) return names;
  size_t start = 0;
  size_t end;
  while ((end = text->find('\n', start)) != std::string::npos) {
    names.insert(text->substr(start, end - start));
    start = end + 1;
  }
  return names;
}

struct CycleCheck {
  std::vector<std::string> problems;
  size_t recorded_files = 0;
  size_t partial_files = 0;  // present, not recorded (a prefix, possibly empty)
  size_t partial_bytes = 0;  // bytes in those
  size_t bytes_verified = 0;
};

// Checks the whole tree after a crash of cycle `last_cycle`.
CycleCheck VerifyTree(const CairnMount& mount, int last_cycle,
                      const std::set<std::string>& recorded) {
  CycleCheck check;
  auto problem = [&](std::string text) {
    if (check.problems.size() < 50) check.problems.push_back(std::move(text));
  };
  std::set<std::string> known_dirs;
  for (int cycle = 0; cycle <= last_cycle; ++cycle) known_dirs.insert(CycleDir(cycle));
  auto root = ListDir(mount.mountpoint());
  if (!root) {
    problem("readdir of the root: " + ErrnoName(root.error()));
    return check;
  }
  for (const std::string& name : *root) {
    if (!known_dirs.contains(name)) problem("unexpected entry in the root: " + name);
  }

  std::set<std::string> seen;
  for (const std::string& dir : *root) {
    if (!known_dirs.contains(dir)) continue;
    auto entries = ListDir(mount.Path(dir));
    if (!entries) {
      problem("readdir of " + dir + ": " + ErrnoName(entries.error()));
      continue;
    }
    for (const std::string& entry : *entries) {
      const std::string name = dir + "/" + entry;
      if (entry.size() != 6 || entry[0] != 'f' ||
          entry.find_first_not_of("0123456789", 1) != std::string::npos) {
        problem("unexpected entry " + name);
        continue;
      }
      seen.insert(name);
      const std::string expected = ExpectedContent(name);
      auto content = ReadFile(mount.Path(name));
      if (!content) {
        problem(name + ": read failed with " + ErrnoName(content.error()));
        continue;
      }
      check.bytes_verified += content->size();
      if (recorded.contains(name)) {
        ++check.recorded_files;
        if (auto same = SameBytes(*content, expected); !same) {
          problem(name + " (fsynced and recorded): " + same.message());
        }
      } else {
        ++check.partial_files;
        check.partial_bytes += content->size();
        if (content->size() > expected.size() ||
            std::string_view(expected).substr(0, content->size()) != *content) {
          problem(
              name + " (not recorded) is not a prefix of what was written: " +
              SameBytes(*content, std::string_view(expected).substr(0, content->size())).message());
        }
      }
    }
  }
  for (const std::string& name : recorded) {
    if (!seen.contains(name)) problem(name + " was fsynced and recorded but is missing");
  }
  return check;
}

uint64_t SeedFromEnvironment() {
  if (const char* text = std::getenv("CAIRN_CRASH_SEED")) return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

int CyclesFromEnvironment() {
  if (const char* text = std::getenv("CAIRN_CRASH_CYCLES")) return std::max(1, std::atoi(text));
  return 20;
}

TEST(CrashTest, KillDaemonDuringWritesThenFsckAndVerify) {
  if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not usable here";
  const uint64_t seed = SeedFromEnvironment();
  const int cycles = CyclesFromEnvironment();
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::cout << fmt::format("crash test: {} cycles, CAIRN_CRASH_SEED={}\n", cycles, seed);
  std::mt19937_64 random(seed);

  CairnMount mount;
  ASSERT_TRUE(mount.ok());
  CommandResult format = mount.Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mounted = mount.Mount();
  if (!mounted.ok() && geteuid() != 0) GTEST_SKIP() << "mount failed as non-root";
  ASSERT_TRUE(mounted.ok()) << mounted.Describe();
  const std::string record_path = mount.root() + "/record.txt";
  std::set<std::string> snapshots;  // created (and so whole) before a kill

  const auto start = steady_clock::now();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const std::string where = fmt::format("cycle {} (CAIRN_CRASH_SEED={})", cycle, seed);
    const milliseconds delay(std::uniform_int_distribution<int>(100, 800)(random));

    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid == 0) WriterMain(mount.mountpoint(), cycle, record_path);
    ASSERT_GT(pid, 0) << "fork: " << ErrnoName(errno);
    ChildProcess writer(pid);
    std::this_thread::sleep_for(delay / 2);
    // Every third cycle a snapshot, every fourth a push of the newest one, while writes go on.
    std::unique_ptr<ChildProcess> push;
    if (cycle % 3 == 1) {
      const std::string name = fmt::format("s{:03}", cycle);
      CommandResult snap = RunCairn({"snap", "create", mount.mountpoint(), name});
      ASSERT_TRUE(snap.ok()) << where << ": " << snap.Describe();
      snapshots.insert(name);
    }
    if (cycle % 4 == 2 && !snapshots.empty()) {
      const pid_t push_pid = fork();
      if (push_pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        execl(CAIRN_BIN, CAIRN_BIN, "snap", "push", mount.mountpoint().c_str(),
              snapshots.rbegin()->c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      ASSERT_GT(push_pid, 0);
      push = std::make_unique<ChildProcess>(push_pid);
    }
    std::this_thread::sleep_for(delay - delay / 2);

    ASSERT_TRUE(mount.KillDaemon()) << where << ": no live daemon to kill";
    writer.KillAndWait();
    push.reset();
    ASSERT_EQ(MountCount(mount.mountpoint()), 1) << where << ": the dead mount is not there";

    const int way = cycle % 3;  // umount -l, fusermount3 -u -z, or mount over the dead one
    if (way == 0 && geteuid() == 0) {
      CommandResult lazy = RunCommand({"umount", "-l", mount.mountpoint()});
      ASSERT_TRUE(lazy.ok()) << where << ": " << lazy.Describe();
    } else if (way <= 1) {
      CommandResult lazy = RunCommand({"fusermount3", "-u", "-z", mount.mountpoint()});
      ASSERT_TRUE(lazy.ok()) << where << ": " << lazy.Describe();
    }
    if (way <= 1) {
      ASSERT_FALSE(IsMounted(mount.mountpoint())) << where;
    }

    CommandResult fsck = mount.Fsck();
    ASSERT_TRUE(fsck.ok()) << where << ": fsck after the crash\n" << fsck.Describe();
    CommandResult remount = mount.Mount();
    ASSERT_TRUE(remount.ok()) << where << ": mount after the crash\n" << remount.Describe();
    ASSERT_EQ(MountCount(mount.mountpoint()), 1) << where << ": mounts stacked at the point";
    auto listed = ListDir(mount.Path(".snapshots"));
    ASSERT_TRUE(listed.has_value()) << where << ": " << ErrnoName(listed.error());
    EXPECT_EQ(std::set<std::string>(listed->begin(), listed->end()), snapshots) << where;

    const std::set<std::string> recorded = ReadRecord(record_path);
    CycleCheck check = VerifyTree(mount, cycle, recorded);
    std::string listing;
    for (const std::string& problem : check.problems) listing += "\n  " + problem;
    ASSERT_TRUE(check.problems.empty()) << where << ": " << listing;
    std::cout << fmt::format(
        "cycle {:2} ({}): killed after {:3} ms; {} recorded files intact, {} unrecorded prefixes "
        "({} bytes), {:.1f} MiB verified, {:.1f} s elapsed\n",
        cycle,
        way == 0   ? "umount -l"
        : way == 1 ? "fusermount3 -u -z"
                   : "mount over it",
        delay.count(), check.recorded_files, check.partial_files, check.partial_bytes,
        static_cast<double>(check.bytes_verified) / (1 << 20),
        std::chrono::duration<double>(steady_clock::now() - start).count());
  }

  CommandResult unmount = mount.Unmount();
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  CommandResult fsck = mount.Fsck();
  EXPECT_TRUE(fsck.ok()) << "fsck after a clean unmount\n" << fsck.Describe();
}

// A checkpoint-like file: one writer appends 1 MiB pieces to a single large file and fsyncs after
// each, recording the fsync'd length; the daemon is killed mid-stream. On 1 MiB segments every
// piece fills a segment, so each fsync races the background seal of the segment before it.
// After each kill: fsync'd bytes are all there, exactly; fsck is clean.
TEST(CrashTest, LargeFileFsyncedInPiecesSurvivesKill) {
  if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not usable here";
  constexpr size_t kPiece = 1 << 20;
  constexpr size_t kMaxBytes = 48 << 20;
  const uint64_t seed = SeedFromEnvironment();
  std::mt19937_64 random(seed);
  CairnMount mount;
  ASSERT_TRUE(mount.ok());
  CommandResult format = mount.Format({"--segment-size", "1MiB"});
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mounted = mount.Mount();
  if (!mounted.ok() && geteuid() != 0) GTEST_SKIP() << "mount failed as non-root";
  ASSERT_TRUE(mounted.ok()) << mounted.Describe();
  const std::string record_path = mount.root() + "/large-record.txt";
  const std::string content = PatternBytes(seed ^ 0xc4ecULL, kMaxBytes);

  for (int cycle = 0; cycle < 4; ++cycle) {
    const std::string where = fmt::format("cycle {} (CAIRN_CRASH_SEED={})", cycle, seed);
    const std::string name = fmt::format("checkpoint-{}.bin", cycle);
    const milliseconds delay(std::uniform_int_distribution<int>(40, 400)(random));
    const pid_t pid = fork();
    if (pid == 0) {
      const std::string path = mount.mountpoint() + "/" + name;
      int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      int dir_fd = open(mount.mountpoint().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int record_fd = open(record_path.c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0 || dir_fd < 0 || record_fd < 0 || fsync(dir_fd) != 0) _exit(1);
      for (size_t offset = 0; offset < kMaxBytes; offset += kPiece) {
        if (!WriteAllFd(fd, std::string_view(content).substr(offset, kPiece))) _exit(1);
        if (fsync(fd) != 0) _exit(1);
        const std::string line = std::to_string(offset + kPiece) + "\n";
        if (!WriteAllFd(record_fd, line) || fsync(record_fd) != 0) _exit(1);
      }
      _exit(0);
    }
    ASSERT_GT(pid, 0) << "fork: " << ErrnoName(errno);
    ChildProcess writer(pid);
    std::this_thread::sleep_for(delay);
    ASSERT_TRUE(mount.KillDaemon()) << where << ": no live daemon to kill";
    writer.KillAndWait();
    CommandResult lazy = RunCommand({"fusermount3", "-u", "-z", mount.mountpoint()});
    ASSERT_TRUE(lazy.ok()) << where << ": " << lazy.Describe();

    CommandResult fsck = mount.Fsck();
    ASSERT_TRUE(fsck.ok()) << where << ": fsck after the crash\n" << fsck.Describe();
    CommandResult remount = mount.Mount();
    ASSERT_TRUE(remount.ok()) << where << ": mount after the crash\n" << remount.Describe();

    // The last complete line of the record is the length fsync'd before the kill.
    size_t durable = 0;
    if (auto text = ReadFile(record_path)) {
      std::istringstream lines(text->substr(0, text->rfind('\n') + 1));  // whole lines only
      for (std::string line; std::getline(lines, line);) durable = std::stoull(line);
    }
    auto read = ReadFile(mount.Path(name));
    if (!read.has_value() && read.error() == ENOENT && durable == 0) continue;  // killed first
    ASSERT_TRUE(read.has_value()) << where << ": " << ErrnoName(read.error());
    const std::string& got = *read;
    ASSERT_GE(got.size(), durable) << where << ": fsync'd bytes lost";
    ASSERT_LE(got.size(), kMaxBytes) << where;
    EXPECT_TRUE(std::string_view(got).substr(0, durable) ==
                std::string_view(content).substr(0, durable))
        << where << ": the fsync'd " << durable << " bytes differ";
    std::cout << fmt::format(
        "large file, cycle {}: killed after {} ms, {} MiB fsync'd, {} MiB read back\n", cycle,
        delay.count(), durable >> 20, got.size() >> 20);
  }
  CommandResult unmount = mount.Unmount();
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  CommandResult fsck = mount.Fsck();
  EXPECT_TRUE(fsck.ok()) << "fsck after a clean unmount\n" << fsck.Describe();
}

}  // namespace
}  // namespace cairn::integration
