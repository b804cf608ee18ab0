// Cluster mode end to end: PostgreSQL, a Ceph cluster (1 monitor, 3 file-backed OSDs) and three
// Cairn nodes, each with its own data directory and FUSE mount, all started by
// scripts/cluster.sh on loopback and stopped by the test. Every check goes through the mounts
// with POSIX calls, and through `cairn fsck`.
//
// Waiting for another node to see a change polls with a generous deadline (the lease is 1 s): a
// correctness bound, not a timing assertion.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

using namespace std::chrono_literals;

constexpr int kNodes = 3;
const std::string kScript = std::string(CAIRN_SOURCE_DIR) + "/scripts/cluster.sh";

// Polls f every 50 ms until it holds or `limit` passed.
bool Eventually(const std::function<bool()>& f, std::chrono::milliseconds limit = 15s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (f()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(50ms);
  }
}

CommandResult Script(const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = 240s) {
  std::vector<std::string> argv = {"env", std::string("CAIRN=") + CAIRN_BIN, "bash", kScript};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

// Reads KEY='value' lines of the cluster's env file.
std::map<std::string, std::string> ReadEnv(const std::string& path) {
  std::map<std::string, std::string> out;
  auto text = ReadFile(path);
  if (!text) return out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(pos, nl - pos);
    pos = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
    out[line.substr(0, eq)] = v;
  }
  return out;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
      skip_ = "needs root and /dev/fuse";
      return;
    }
    if (::access("/usr/bin/ceph-mon", X_OK) != 0 ||
        ::access("/usr/lib/postgresql/15/bin/initdb", X_OK) != 0) {
      skip_ = "needs ceph-mon and postgresql-15 (scripts/install-deps.sh)";
      return;
    }
    dir_ = new TempDir();
    // Each node in a network namespace of its own, so that one can be cut off, where the kernel
    // lets us make them (a container may not).
    const std::string probe = "cairn-probe-" + std::to_string(::getpid());
    netns_ = RunCommand({"ip", "netns", "add", probe}, 10s).ok();
    if (netns_) RunCommand({"ip", "netns", "del", probe}, 10s);
    std::vector<std::string> args = {"start", dir_->path(), "--nodes", std::to_string(kNodes)};
    if (netns_) args.push_back("--netns");
    CommandResult r = Script(args);
    if (!r.ok()) {
      start_error_ = r.Describe();
      return;
    }
    env_ = ReadEnv(dir_->path() + "/env");
  }
  static void TearDownTestSuite() {
    if (!dir_) return;
    CommandResult r = Script({"stop", dir_->path()});
    if (!r.ok()) ADD_FAILURE() << r.Describe();
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    for (int k = 1; k <= kNodes; ++k) ASSERT_TRUE(IsMounted(Mnt(k))) << "node " << k;
  }

  static std::string Mnt(int k) { return dir_->path() + "/mnt/" + std::to_string(k); }
  static std::string DataDir(int k) { return dir_->path() + "/node" + std::to_string(k); }
  static std::string P(int k, std::string_view rel) { return Mnt(k) + "/" + std::string(rel); }

  // Unmounts every node, runs fsck on node 1 (the whole shared namespace and every node's
  // segments), mounts them again.
  static ::testing::AssertionResult FsckAll() {
    for (int k = 1; k <= kNodes; ++k) {
      CommandResult u = RunCairn({"unmount", Mnt(k)}, 120s);
      if (!u.ok()) return ::testing::AssertionFailure() << u.Describe();
    }
    CommandResult f = RunCairn({"fsck", DataDir(1)}, 300s);
    ::testing::AssertionResult result = ::testing::AssertionSuccess();
    if (!f.ok() || f.out.find("clean") == std::string::npos) {
      result = ::testing::AssertionFailure() << f.Describe() << "\n" << f.out;
    }
    for (int k = 1; k <= kNodes; ++k) {
      CommandResult m = Script({"mount-node", dir_->path(), std::to_string(k)});
      if (!m.ok()) return ::testing::AssertionFailure() << m.Describe();
    }
    return result;
  }

  // `cairn cluster members --json` as node 1 sees it.
  static nlohmann::json Members() {
    CommandResult r = RunCairn({"cluster", "members", DataDir(1), "--json"}, 60s);
    if (!r.ok()) return nlohmann::json::array();
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  static std::string MemberState(uint32_t node) {
    for (const auto& m : Members()) {
      if (m.value("node", 0u) == node) return m.value("state", "");
    }
    return "absent";
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string skip_, start_error_;
  static inline bool netns_ = false;
  static inline std::map<std::string, std::string> env_;
};

TEST_F(ClusterTest, WritesOnOneNodeReadBackExactlyOnEveryOther) {
  const std::vector<size_t> sizes = {0, 1, 100, kInlineLimit, kInlineLimit + 1, 200 << 10, 3 << 20};
  for (int writer = 1; writer <= kNodes; ++writer) {
    ASSERT_EQ(Outcome(::mkdir(P(writer, fmt::format("w{}", writer)).c_str(), 0755)), "OK");
    for (size_t size : sizes) {
      const std::string rel = fmt::format("w{}/f{}", writer, size);
      ASSERT_EQ(WriteFile(P(writer, rel), PatternBytes(HashString(rel), size)), 0) << rel;
    }
  }
  for (int writer = 1; writer <= kNodes; ++writer) {
    for (int reader = 1; reader <= kNodes; ++reader) {
      for (size_t size : sizes) {
        const std::string rel = fmt::format("w{}/f{}", writer, size);
        EXPECT_TRUE(FileHasContent(P(reader, rel), PatternBytes(HashString(rel), size)))
            << rel << " written on node " << writer << ", read on node " << reader;
      }
    }
  }
  // An overwrite in the middle, closed on node 2, is what the next open on nodes 1 and 3 reads.
  const std::string rel = fmt::format("w1/f{}", 3 << 20);
  std::string expected = PatternBytes(HashString(rel), 3 << 20);
  const std::string patch = PatternBytes(7, 300000);
  {
    UniqueFd fd(::open(P(2, rel).c_str(), O_WRONLY));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(WriteAllAt(fd.get(), patch, 1000000), 0);
    ASSERT_EQ(fd.Reset(), 0);
  }
  expected.replace(1000000, patch.size(), patch);
  EXPECT_TRUE(FileHasContent(P(1, rel), expected));
  EXPECT_TRUE(FileHasContent(P(3, rel), expected));
  // Appends grow the file on the other nodes too (close-to-open covers the size).
  const std::string tail = PatternBytes(8, 5000);
  {
    UniqueFd fd(::open(P(3, rel).c_str(), O_WRONLY | O_APPEND));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::write(fd.get(), tail.data(), tail.size()), static_cast<ssize_t>(tail.size()));
  }
  expected += tail;
  EXPECT_TRUE(FileHasContent(P(1, rel), expected));
  EXPECT_TRUE(FileHasContent(P(2, rel), expected));
}

TEST_F(ClusterTest, NamespaceChangesShowOnOtherNodesWithinTheLease) {
  ASSERT_EQ(Outcome(::mkdir(P(1, "ns").c_str(), 0755)), "OK");
  ASSERT_EQ(WriteFile(P(1, "ns/a"), "alpha"), 0);
  ASSERT_TRUE(Eventually([&] { return FileHasContent(P(2, "ns/a"), "alpha"); }));
  ASSERT_EQ(Outcome(::rename(P(1, "ns/a").c_str(), P(1, "ns/b").c_str())), "OK");
  EXPECT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(2, "ns/a").c_str(), &st) != 0 && errno == ENOENT &&
           ::stat(P(2, "ns/b").c_str(), &st) == 0;
  })) << "rename on node 1 not seen on node 2";
  ASSERT_EQ(Outcome(::chmod(P(2, "ns/b").c_str(), 0600)), "OK");
  EXPECT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(3, "ns/b").c_str(), &st) == 0 && (st.st_mode & 07777) == 0600;
  })) << "chmod on node 2 not seen on node 3";
  ASSERT_EQ(Outcome(::unlink(P(3, "ns/b").c_str())), "OK");
  EXPECT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(1, "ns/b").c_str(), &st) != 0 && errno == ENOENT;
  })) << "unlink on node 3 not seen on node 1";
  EXPECT_TRUE(Eventually([&] {
    auto names = ListDir(P(2, "ns"));
    return names && names->empty();
  }));
}

// With a lease of ten minutes on nodes 2 and 3, only the notices (PostgreSQL NOTIFY) can show
// them node 1's changes before the end of the test.
TEST_F(ClusterTest, OtherNodesChangesShowAtOnceThroughNotices) {
  for (int k : {2, 3}) {
    ASSERT_TRUE(RunCairn({"unmount", Mnt(k)}, 120s).ok());
    CommandResult m = Script({"mount-node", dir_->path(), std::to_string(k), "--lease", "600s"});
    ASSERT_TRUE(m.ok()) << m.Describe();
  }
  struct stat st;
  ASSERT_EQ(Outcome(::mkdir(P(1, "heard").c_str(), 0755)), "OK");
  ASSERT_EQ(WriteFile(P(1, "heard/a"), "alpha"), 0);
  // Nodes 2 and 3 cache the name, the attributes and the absence of "b".
  for (int k : {2, 3}) {
    ASSERT_TRUE(Eventually([&] { return FileHasContent(P(k, "heard/a"), "alpha"); })) << k;
    ASSERT_NE(::stat(P(k, "heard/b").c_str(), &st), 0);
  }
  ASSERT_EQ(Outcome(::chmod(P(1, "heard/a").c_str(), 0600)), "OK");
  EXPECT_TRUE(Eventually([&] {
    return ::stat(P(2, "heard/a").c_str(), &st) == 0 && (st.st_mode & 07777) == 0600;
  })) << "chmod on node 1 not heard on node 2";
  {
    UniqueFd fd(::open(P(1, "heard/a").c_str(), O_WRONLY | O_APPEND));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::write(fd.get(), "beta", 4), 4);
  }
  EXPECT_TRUE(Eventually([&] {
    return ::stat(P(3, "heard/a").c_str(), &st) == 0 && st.st_size == 9;
  })) << "append on node 1 not heard on node 3";
  ASSERT_EQ(Outcome(::rename(P(1, "heard/a").c_str(), P(1, "heard/b").c_str())), "OK");
  for (int k : {2, 3}) {
    EXPECT_TRUE(Eventually([&] {
      return ::stat(P(k, "heard/a").c_str(), &st) != 0 && errno == ENOENT &&
             ::stat(P(k, "heard/b").c_str(), &st) == 0;
    })) << "rename on node 1 not heard on node "
        << k;
  }
  EXPECT_TRUE(FileHasContent(P(2, "heard/b"), "alphabeta"));
  ASSERT_EQ(Outcome(::unlink(P(1, "heard/b").c_str())), "OK");
  EXPECT_TRUE(Eventually([&] {
    return ::stat(P(3, "heard/b").c_str(), &st) != 0 && errno == ENOENT;
  })) << "unlink on node 1 not heard on node 3";
  ASSERT_EQ(Outcome(::rmdir(P(2, "heard").c_str())), "OK");
  EXPECT_TRUE(Eventually([&] {
    return ::stat(P(1, "heard").c_str(), &st) != 0 && errno == ENOENT;
  })) << "rmdir on node 2 not heard on node 1";
  for (int k : {2, 3}) {
    ASSERT_TRUE(RunCairn({"unmount", Mnt(k)}, 120s).ok());
    CommandResult m = Script({"mount-node", dir_->path(), std::to_string(k)});
    ASSERT_TRUE(m.ok()) << m.Describe();
  }
}

TEST_F(ClusterTest, MembersShowStateAndThroughput) {
  for (int k = 1; k <= kNodes; ++k) EXPECT_EQ(MemberState(k), "up") << k;
  // Node 3 writes for a while: its heartbeat carries its write rate to every member.
  ASSERT_EQ(Outcome(::mkdir(P(3, "tput").c_str(), 0755)), "OK");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      (void)WriteFile(P(3, fmt::format("tput/f{}", i % 4)), PatternBytes(i, 1 << 20));
    }
  });
  double rate = 0;
  const bool seen = Eventually(
      [&] {
        for (const auto& m : Members()) {
          if (m.value("node", 0u) == 3u) rate = m.value("write_bytes_per_s", 0.0);
        }
        return rate > 0;
      },
      30s);
  stop = true;
  writer.join();
  EXPECT_TRUE(seen) << "node 3's writes never showed in its heartbeat";
  CommandResult status = RunCairn({"status", Mnt(2)});
  ASSERT_TRUE(status.ok()) << status.Describe();
  EXPECT_NE(status.out.find("LAST SEEN"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find(DataDir(3)), std::string::npos) << status.out;
}

// A directory removed on node 2 while both nodes had it open: node 1 sees it gone, and only node 2
// (whose orphan record it is) reclaims it, once; the totals stay exact.
TEST_F(ClusterTest, OnlyTheUnlinkingNodeReclaimsAnInode) {
  ASSERT_EQ(Outcome(::mkdir(P(1, "once").c_str(), 0755)), "OK");
  UniqueFd on1(::open(P(1, "once").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(on1.valid());
  ASSERT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(2, "once").c_str(), &st) == 0;
  }));
  // Node 2's open handle keeps its kernel from forgetting the inode, so node 2 cannot reclaim it
  // before node 1 has seen it removed.
  UniqueFd on2(::open(P(2, "once").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(on2.valid());
  ASSERT_EQ(Outcome(::rmdir(P(2, "once").c_str())), "OK");
  // Node 1 reads the record again (nlink 0) through its open handle, then lets go of it.
  EXPECT_TRUE(Eventually([&] {
    struct stat st;
    return ::fstat(on1.get(), &st) == 0 && st.st_nlink == 0;
  }));
  ASSERT_EQ(on1.Reset(), 0);
  // The kernel forgets the inode on node 1, then on node 2: each decides whether to reclaim it.
  (void)WriteFile("/proc/sys/vm/drop_caches", "2");
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(on2.Reset(), 0);
  (void)WriteFile("/proc/sys/vm/drop_caches", "2");
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(FsckAll());
}

TEST_F(ClusterTest, ConcurrentChangesFromAllNodesEndInTheirSum) {
  ASSERT_EQ(Outcome(::mkdir(P(1, "race").c_str(), 0755)), "OK");
  ASSERT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(kNodes, "race").c_str(), &st) == 0;
  }));
  constexpr int kThreads = 3, kFiles = 60;
  std::mutex mu;
  std::set<std::string> expected;  // names in race/ at the end
  std::atomic<int> errors{0};
  std::string first_error;
  std::vector<std::thread> threads;
  for (int k = 1; k <= kNodes; ++k) {
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, k, t] {
        auto fail = [&](std::string what) {
          std::lock_guard lock(mu);
          if (errors++ == 0) first_error = what;
        };
        std::set<std::string> mine;
        const std::string dir = P(k, "race/");
        for (int i = 0; i < kFiles; ++i) {
          std::string name = fmt::format("n{}-t{}-{}", k, t, i);
          if (WriteFile(dir + name, name) != 0) fail("create " + name + " " + ErrnoName(errno));
          mine.insert(name);
          if (i % 3 == 0) {
            std::string to = name + ".moved";
            if (::rename((dir + name).c_str(), (dir + to).c_str()) != 0) {
              fail("rename " + name + " " + ErrnoName(errno));
            }
            mine.erase(name);
            mine.insert(to);
          } else if (i % 5 == 0) {
            if (::unlink((dir + name).c_str()) != 0)
              fail("unlink " + name + " " + ErrnoName(errno));
            mine.erase(name);
          }
          if (i % 20 == 0) {
            std::string d = fmt::format("d{}-{}-{}", k, t, i);
            if (::mkdir((dir + d).c_str(), 0755) != 0) fail("mkdir " + d + " " + ErrnoName(errno));
            mine.insert(d);
          }
          // Every node also races for the same names: exactly one O_EXCL create wins each.
          std::string shared = fmt::format("shared-{}", i);
          int fd = ::open((dir + shared).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
          if (fd >= 0) {
            ::close(fd);
            std::lock_guard lock(mu);
            if (!expected.insert(shared).second) fail("two nodes created " + shared);
          } else if (errno != EEXIST) {
            fail("create " + shared + " " + ErrnoName(errno));
          }
        }
        std::lock_guard lock(mu);
        expected.insert(mine.begin(), mine.end());
      });
    }
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0) << first_error;
  EXPECT_EQ(expected.count("shared-0"), 1u);
  for (int k = 1; k <= kNodes; ++k) {
    std::set<std::string> seen;
    ASSERT_TRUE(Eventually([&] {
      auto names = ListDir(P(k, "race"));
      if (!names) return false;
      seen = std::set<std::string>(names->begin(), names->end());
      return seen == expected;
    })) << "node "
        << k << " lists " << seen.size() << " names, expected " << expected.size();
  }
  for (const std::string& name : expected) {
    if (name.starts_with("n")) {
      std::string content = name.ends_with(".moved") ? name.substr(0, name.size() - 6) : name;
      EXPECT_TRUE(FileHasContent(P(2, "race/" + name), content)) << name;
    }
  }
  EXPECT_TRUE(FsckAll());
}

TEST_F(ClusterTest, TwoNodesWritingOneFileLeaveOneConsistentFile) {
  constexpr size_t kBlock = 64 << 10, kBlocks = 32;
  ASSERT_EQ(WriteFile(P(1, "shared.bin"), std::string(kBlock * kBlocks, 'x')), 0);
  ASSERT_TRUE(Eventually([&] {
    struct stat st;
    return ::stat(P(2, "shared.bin").c_str(), &st) == 0 && st.st_size == kBlock * kBlocks;
  }));
  const std::string a(kBlock, 'A'), b(kBlock, 'B');
  auto writer = [&](int node, const std::string& block, int* result) {
    UniqueFd fd(::open(P(node, "shared.bin").c_str(), O_WRONLY));
    if (!fd.valid()) {
      *result = errno;
      return;
    }
    for (int round = 0; round < 4; ++round) {
      for (size_t i = 0; i < kBlocks; ++i) {
        if (int e = WriteAllAt(fd.get(), block, static_cast<off_t>(i * kBlock)); e != 0) {
          *result = e;
          return;
        }
      }
    }
    *result = ::fsync(fd.get()) == 0 ? fd.Reset() : errno;
  };
  int ra = -1, rb = -1;
  std::thread ta(writer, 1, a, &ra), tb(writer, 2, b, &rb);
  ta.join();
  tb.join();
  ASSERT_EQ(ra, 0) << ErrnoName(ra);
  ASSERT_EQ(rb, 0) << ErrnoName(rb);
  // After both closed, every node reads the same bytes, and every block is one writer's whole.
  auto one = ReadFile(P(1, "shared.bin"));
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), kBlock * kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    std::string_view blk(one->data() + i * kBlock, kBlock);
    EXPECT_TRUE(blk == a || blk == b) << "block " << i << " is torn";
  }
  EXPECT_TRUE(FileHasContent(P(2, "shared.bin"), *one));
  EXPECT_TRUE(FileHasContent(P(3, "shared.bin"), *one));
}

// Writers on nodes 1 and 3 fsync file after file; the caller's fault lands in the middle.
class FsyncWriters {
 public:
  explicit FsyncWriters(std::string tag) : tag_(std::move(tag)) {
    for (int k : {1, 3}) ::mkdir(Dir(k).c_str(), 0755);
    for (int k : {1, 3}) threads_.emplace_back([this, k] { Run(k); });
  }
  ~FsyncWriters() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // What each writer saw fsync'd (name -> node).
  std::map<std::string, int> done() {
    std::lock_guard lock(mu_);
    return done_;
  }
  int failures() const { return failures_; }
  static std::string Content(const std::string& name) {
    return PatternBytes(HashString(name), 20000 + HashString(name) % 100000);
  }
  std::string Dir(int k) const { return ClusterMnt(k) + "/" + tag_ + "-n" + std::to_string(k); }
  static std::string ClusterMnt(int k);

 private:
  void Run(int k) {
    for (int i = 0; !stop_; ++i) {
      const std::string name = fmt::format("{}-n{}/f{}", tag_, k, i);
      if (WriteFile(ClusterMnt(k) + "/" + name, Content(name)) == 0) {
        std::lock_guard lock(mu_);
        done_[name] = k;
      } else {
        ++failures_;  // an outage: the writer goes on; only what fsync'd counts
        std::this_thread::sleep_for(100ms);
      }
    }
  }
  std::string tag_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::map<std::string, int> done_;
  std::vector<std::thread> threads_;
};

std::string g_dir;
std::string FsyncWriters::ClusterMnt(int k) { return g_dir + "/mnt/" + std::to_string(k); }

TEST_F(ClusterTest, KillingANodeLosesNothingFsynced) {
  g_dir = dir_->path();
  // Node 2 writes too, and dies with its segment open.
  ASSERT_EQ(Outcome(::mkdir(P(2, "victim").c_str(), 0755)), "OK");
  std::vector<std::string> victim_files;
  for (int i = 0; i < 20; ++i) {
    std::string rel = fmt::format("victim/f{}", i);
    ASSERT_EQ(WriteFile(P(2, rel), FsyncWriters::Content(rel)), 0);
    victim_files.push_back(rel);
  }
  FsyncWriters writers("killnode");
  std::this_thread::sleep_for(1500ms);
  CommandResult kill = Script({"kill-node", dir_->path(), "2"});
  ASSERT_TRUE(kill.ok()) << kill.Describe();
  std::this_thread::sleep_for(1500ms);
  writers.Stop();
  EXPECT_EQ(writers.failures(), 0) << "writers on the surviving nodes failed";
  auto done = writers.done();
  EXPECT_GT(done.size(), 0u);
  for (const auto& rel : victim_files) {
    EXPECT_TRUE(FileHasContent(P(1, rel), FsyncWriters::Content(rel))) << rel;
    EXPECT_TRUE(FileHasContent(P(3, rel), FsyncWriters::Content(rel))) << rel;
  }
  for (const auto& [rel, node] : done) {
    EXPECT_TRUE(FileHasContent(P(node == 1 ? 3 : 1, rel), FsyncWriters::Content(rel))) << rel;
  }
  // Its heartbeats stop: the others see it down (after three missed 5 s beats).
  EXPECT_TRUE(Eventually([&] { return MemberState(2) == "down"; }, 60s)) << MemberState(2);
  CommandResult mount = Script({"mount-node", dir_->path(), "2"});
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  EXPECT_EQ(MemberState(2), "up");
  for (const auto& rel : victim_files) {
    EXPECT_TRUE(FileHasContent(P(2, rel), FsyncWriters::Content(rel))) << rel;
  }
  EXPECT_TRUE(FsckAll());
}

TEST_F(ClusterTest, KillingAnOsdKeepsReadsAndWritesGoing) {
  g_dir = dir_->path();
  FsyncWriters writers("killosd");
  std::this_thread::sleep_for(1000ms);
  CommandResult kill =
      RunCommand({"bash", std::string(CAIRN_SOURCE_DIR) + "/scripts/ceph-cluster.sh", "kill-osd",
                  dir_->path() + "/ceph", "1"});
  ASSERT_TRUE(kill.ok()) << kill.Describe();
  std::this_thread::sleep_for(3000ms);
  const size_t before_restart = writers.done().size();
  CommandResult start =
      RunCommand({"bash", std::string(CAIRN_SOURCE_DIR) + "/scripts/ceph-cluster.sh", "start-osd",
                  dir_->path() + "/ceph", "1"},
                 120s);
  ASSERT_TRUE(start.ok()) << start.Describe();
  std::this_thread::sleep_for(1000ms);
  writers.Stop();
  EXPECT_EQ(writers.failures(), 0);
  auto done = writers.done();
  EXPECT_GT(before_restart, 0u);
  for (const auto& [rel, node] : done) {
    EXPECT_TRUE(FileHasContent(P(2, rel), FsyncWriters::Content(rel))) << rel;
  }
}

TEST_F(ClusterTest, PostgresRestartLosesNothingFsynced) {
  g_dir = dir_->path();
  FsyncWriters writers("pgrestart");
  std::this_thread::sleep_for(1000ms);
  CommandResult restart = Script({"restart-pg", dir_->path()});
  ASSERT_TRUE(restart.ok()) << restart.Describe();
  std::this_thread::sleep_for(2000ms);
  writers.Stop();
  auto done = writers.done();
  EXPECT_GT(done.size(), 0u);
  // Files whose fsync failed during the outage may be partly there; each one that was
  // acknowledged reads back exactly, from another node.
  for (const auto& [rel, node] : done) {
    EXPECT_TRUE(FileHasContent(P(2, rel), FsyncWriters::Content(rel))) << rel;
  }
  // Writes work again on every node.
  for (int k = 1; k <= kNodes; ++k) {
    EXPECT_EQ(WriteFile(P(k, fmt::format("after-pg-{}", k)), "ok"), 0) << "node " << k;
  }
  EXPECT_TRUE(FsckAll());
}

TEST_F(ClusterTest, CuttingANodeOffStopsOnlyThatNode) {
  if (!netns_) GTEST_SKIP() << "this kernel does not let the test make network namespaces";
  g_dir = dir_->path();
  ASSERT_EQ(Outcome(::mkdir(P(2, "cut").c_str(), 0755)), "OK");
  ASSERT_EQ(WriteFile(P(2, "cut/before"), FsyncWriters::Content("cut/before")), 0);
  FsyncWriters writers("netcut");
  std::this_thread::sleep_for(1000ms);
  CommandResult cut = Script({"cut-node", dir_->path(), "2"});
  ASSERT_TRUE(cut.ok()) << cut.Describe();
  // Node 2 writes while it reaches nothing: the call fails (or waits) instead of corrupting.
  int during = -1;
  std::thread cut_off([&] { during = WriteFile(P(2, "cut/during"), "during the cut"); });
  std::this_thread::sleep_for(4000ms);
  const size_t while_cut = writers.done().size();
  CommandResult heal = Script({"heal-node", dir_->path(), "2"});
  ASSERT_TRUE(heal.ok()) << heal.Describe();
  cut_off.join();
  std::this_thread::sleep_for(1000ms);
  writers.Stop();
  EXPECT_EQ(writers.failures(), 0) << "nodes 1 and 3 must not notice node 2's cut";
  EXPECT_GT(writers.done().size(), while_cut);
  // Node 2 works again once its link is back.
  EXPECT_TRUE(Eventually([&] { return WriteFile(P(2, "cut/after"), "after") == 0; }, 60s));
  EXPECT_TRUE(FileHasContent(P(1, "cut/before"), FsyncWriters::Content("cut/before")));
  EXPECT_TRUE(Eventually([&] { return FileHasContent(P(3, "cut/after"), "after"); }));
  if (during == 0) {
    EXPECT_TRUE(FileHasContent(P(1, "cut/during"), "during the cut"));
  }
  for (const auto& [rel, node] : writers.done()) {
    EXPECT_TRUE(FileHasContent(P(2, rel), FsyncWriters::Content(rel))) << rel;
  }
  EXPECT_TRUE(FsckAll());
}

// A cluster file system formatted with a shared object store: sealed segments upload from the
// pool and leave it once this node's share of the pool is above the watermark, and every node
// reads them back from the object store, also after it read them from the pool.
// A file system of its own for one test: a fresh database, formatted on `pool` with `format_args`
// by node A, joined by node B, both mounted; unmounted again when it goes.
class OwnFileSystem {
 public:
  OwnFileSystem(const std::string& tag, const std::string& pool,
                const std::vector<std::string>& format_args,
                const std::map<std::string, std::string>& env)
      : conf_(env.at("CEPH_CONF")) {
    const std::string db = fmt::format("cairn_{}_{}", tag, ::getpid());
    CommandResult created = RunCommand({"/usr/lib/postgresql/15/bin/createdb", "-h", "127.0.0.1",
                                        "-p", env.at("PG_PORT"), "-U", "postgres", db});
    if (!created.ok()) {
      error_ = created.Describe();
      return;
    }
    const std::string meta = env.at("META") + " dbname=" + db;
    for (const std::string& d : {ma(), mb()}) ::mkdir(d.c_str(), 0755);
    std::vector<std::string> format = {"format",      a(),   "--meta", meta,
                                       "--ceph-conf", conf_, "--pool", pool};
    format.insert(format.end(), format_args.begin(), format_args.end());
    for (const auto& cmd :
         {format,
          std::vector<std::string>{"cluster", "join", b(), "--meta", meta, "--ceph-conf", conf_,
                                   "--pool", pool},
          std::vector<std::string>{"mount", a(), ma(), "--metrics-address", "", "--lease", "1s"},
          std::vector<std::string>{"mount", b(), mb(), "--metrics-address", "", "--lease", "1s"}}) {
      CommandResult r = RunCairn(cmd, 120s);
      if (!r.ok()) {
        error_ = r.Describe();
        return;
      }
    }
  }
  ~OwnFileSystem() { (void)Unmount(); }
  OwnFileSystem(const OwnFileSystem&) = delete;
  OwnFileSystem& operator=(const OwnFileSystem&) = delete;

  // Empty when both nodes are mounted; else what failed.
  const std::string& error() const { return error_; }
  std::string a() const { return scratch_.path() + "/a"; }  // data directories
  std::string b() const { return scratch_.path() + "/b"; }
  std::string ma() const { return scratch_.path() + "/ma"; }  // mount points
  std::string mb() const { return scratch_.path() + "/mb"; }
  std::string scratch() const { return scratch_.path(); }
  const std::string& conf() const { return conf_; }

  // Unmounts both nodes, then runs fsck on A.
  ::testing::AssertionResult UnmountAndFsck() {
    if (auto u = Unmount(); !u) return u;
    CommandResult fsck = RunCairn({"fsck", a()}, 300s);
    if (!fsck.ok() || fsck.out.find("clean") == std::string::npos) {
      return ::testing::AssertionFailure() << fsck.Describe() << "\n" << fsck.out;
    }
    return ::testing::AssertionSuccess();
  }

 private:
  ::testing::AssertionResult Unmount() {
    for (const auto& m : {ma(), mb()}) {
      if (!IsMounted(m)) continue;
      CommandResult u = RunCairn({"unmount", m}, 120s);
      if (!u.ok()) return ::testing::AssertionFailure() << u.Describe();
    }
    return ::testing::AssertionSuccess();
  }

  TempDir scratch_;
  const std::string conf_;
  std::string error_;
};

CommandResult CephScript(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"bash",
                                   std::string(CAIRN_SOURCE_DIR) + "/scripts/ceph-cluster.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 180s);
}

TEST_F(ClusterTest, SealedSegmentsTierOutOfThePoolAndReadBackEverywhere) {
  TempDir objects_dir;
  const std::string objects = objects_dir.path() + "/objects";
  OwnFileSystem own("tier", "cairn",
                    {"--object-store", "file://" + objects, "--segment-size", "1MiB",
                     "--nvme-capacity", "4MiB", "--tiering-delay", "0s", "--seal-timeout", "1s"},
                    env_);
  ASSERT_TRUE(own.error().empty()) << own.error();
  const std::string a = own.a(), b = own.b(), ma = own.ma(), mb = own.mb(), conf = own.conf();
  auto tier_status = [&](const std::string& mnt) {
    CommandResult r = RunCairn({"tier", "status", mnt, "--json"});
    return nlohmann::json::parse(r.ok() ? r.out : "{}", nullptr, false);
  };
  auto evicted = [&](const std::string& mnt) -> uint64_t {
    auto s = tier_status(mnt);
    if (!s.is_object() || !s.contains("segments")) return 0;
    return s["segments"]["evicted"]["segments"].get<uint64_t>();
  };
  auto name = [](int i) { return fmt::format("f{:02}", i); };
  auto content = [&](int i) { return PatternBytes(HashString(name(i)), 700 << 10); };
  auto all_read_back = [&](int count, const std::string& mnt) {
    bool ok = true;
    for (int i = 0; i < count; ++i) {
      bool same = FileHasContent(mnt + "/" + name(i), content(i));
      EXPECT_TRUE(same) << name(i) << " read on " << mnt;
      ok = ok && same;
    }
    return ok;
  };
  // Node A writes twice its share of the pool; B reads each file while it may still be there.
  constexpr int kFirst = 12, kAll = 24;
  for (int i = 0; i < kFirst; ++i) ASSERT_EQ(WriteFile(ma + "/" + name(i), content(i)), 0);
  ASSERT_TRUE(all_read_back(kFirst, mb));
  ASSERT_TRUE(Eventually([&] { return evicted(ma) > 0; }, 60s)) << tier_status(ma).dump();
  // More writes push the segments B opened in the pool out of it; B reads them again.
  for (int i = kFirst; i < kAll; ++i) ASSERT_EQ(WriteFile(ma + "/" + name(i), content(i)), 0);
  // About 17 segments; at most 4 fit the share, so the ones B read in the pool are gone.
  ASSERT_TRUE(Eventually([&] { return evicted(ma) >= 12; }, 60s)) << tier_status(ma).dump();
  EXPECT_TRUE(all_read_back(kAll, mb));
  // B had those segments open in the pool; its reads found them gone and went to the store.
  EXPECT_NE(ReadFile(b + "/cairn.log").value_or("").find("left the pool under a read"),
            std::string::npos);
  EXPECT_TRUE(all_read_back(kAll, ma));
  auto st = tier_status(ma);
  EXPECT_LE(st["nvme_used"].get<uint64_t>(), st["nvme_capacity"].get<uint64_t>()) << st.dump();
  EXPECT_EQ(st["nvme_capacity"].get<uint64_t>(), 4u << 20) << st.dump();

  // What the engines hold: the evicted segments' objects left the pool for the object store.
  auto sb = nlohmann::json::parse(ReadFile(a + "/cairn.json").value_or("{}"), nullptr, false);
  const std::string uuid = sb.value("uuid", "");
  ASSERT_FALSE(uuid.empty());
  CommandResult ls = RunCommand({"rados", "-c", conf, "-p", "cairn", "ls"}, 60s);
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  size_t in_pool = 0;
  for (size_t pos = ls.out.find(uuid); pos != std::string::npos; pos = ls.out.find(uuid, pos + 1))
    ++in_pool;
  size_t in_store = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(objects)) {
    if (e.is_regular_file() && e.path().extension() == ".seg") ++in_store;
  }
  const uint64_t evicted_a = evicted(ma);
  EXPECT_GE(in_store, evicted_a);
  // 24 files of 700 KiB in segments of 1 MiB: about 17 segments of A; those evicted are gone.
  EXPECT_LT(in_pool, 24u) << ls.out;
  EXPECT_GE(in_pool + evicted_a, 16u) << ls.out;

  EXPECT_TRUE(own.UnmountAndFsck());
}

// A file system on an erasure-coded pool (2+1 over the 3 OSDs): the same writes and reads, also
// with one OSD down (the pool's min_size is 2).
TEST_F(ClusterTest, AnErasureCodedPoolHoldsTheSegments) {
  const std::string ceph_dir = dir_->path() + "/ceph";
  CommandResult pool = CephScript({"create-pool", ceph_dir, "cairn-ec", "--ec", "2+1"});
  ASSERT_TRUE(pool.ok()) << pool.Describe();
  OwnFileSystem own("ec", "cairn-ec", {"--segment-size", "4MiB"}, env_);
  ASSERT_TRUE(own.error().empty()) << own.error();
  const std::string ma = own.ma(), mb = own.mb();
  const std::vector<size_t> sizes = {1, kInlineLimit + 1, 200 << 10, 3 << 20, 9 << 20};
  auto name = [](const std::string& phase, size_t size) {
    return fmt::format("{}{}", phase, size);
  };
  for (size_t size : sizes) {
    ASSERT_EQ(WriteFile(ma + "/" + name("a", size), PatternBytes(size, size)), 0);
  }
  for (size_t size : sizes) {
    EXPECT_TRUE(FileHasContent(mb + "/" + name("a", size), PatternBytes(size, size))) << size;
  }
  CommandResult kill = CephScript({"kill-osd", ceph_dir, "2"});
  ASSERT_TRUE(kill.ok()) << kill.Describe();
  for (size_t size : sizes) {
    EXPECT_EQ(WriteFile(mb + "/" + name("b", size), PatternBytes(size + 1, size)), 0) << size;
  }
  for (size_t size : sizes) {
    EXPECT_TRUE(FileHasContent(ma + "/" + name("b", size), PatternBytes(size + 1, size))) << size;
    EXPECT_TRUE(FileHasContent(ma + "/" + name("a", size), PatternBytes(size, size))) << size;
  }
  CommandResult start = CephScript({"start-osd", ceph_dir, "2"});
  ASSERT_TRUE(start.ok()) << start.Describe();
  // Every segment is an object of the EC pool.
  CommandResult ls = RunCommand({"rados", "-c", own.conf(), "-p", "cairn-ec", "ls"}, 60s);
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_NE(ls.out.find(".seg"), std::string::npos) << ls.out;
  EXPECT_TRUE(own.UnmountAndFsck());
}

// A pool that fills up (here: its quota) refuses writes with ENOSPC, not EIO, and hangs nothing;
// what was written reads back; deleting files frees their segments in the pool (compaction
// removes the segments nothing maps), and writes go on once there is room.
TEST_F(ClusterTest, AFullPoolGivesNoSpaceAndDeletesFreeIt) {
  const std::string ceph_dir = dir_->path() + "/ceph";
  ASSERT_TRUE(CephScript({"create-pool", ceph_dir, "cairn-full"}).ok());
  OwnFileSystem own("full", "cairn-full", {"--segment-size", "4MiB"}, env_);
  ASSERT_TRUE(own.error().empty()) << own.error();
  const std::string conf = own.conf();
  auto ceph = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ceph", "-c", conf};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 60s);
  };
  auto objects = [&] {
    CommandResult ls = RunCommand({"rados", "-c", conf, "-p", "cairn-full", "ls"}, 60s);
    return ls.ok() ? std::count(ls.out.begin(), ls.out.end(), '\n') : -1;
  };
  ASSERT_TRUE(ceph({"osd", "pool", "set-quota", "cairn-full", "max_bytes", "8388608"}).ok());
  const std::string mb = own.mb();
  auto content = [](int i) { return PatternBytes(i, 1 << 20); };
  // Ceph marks the pool full a few seconds after the quota is passed: write until it does.
  int written = 0, error = 0;
  const auto until = std::chrono::steady_clock::now() + 120s;
  while (error == 0 && std::chrono::steady_clock::now() < until) {
    error = WriteFile(fmt::format("{}/f{}", mb, written), content(written));
    if (error == 0) ++written;
  }
  ASSERT_EQ(error, ENOSPC) << "after " << written << " files: " << std::strerror(error);
  EXPECT_GE(written, 8);
  for (int i = 0; i < written; ++i) {
    EXPECT_TRUE(FileHasContent(fmt::format("{}/f{}", own.ma(), i), content(i))) << i;
  }
  const auto before = objects();
  for (int i = 0; i <= written; ++i) (void)::unlink(fmt::format("{}/f{}", own.ma(), i).c_str());
  // Node B created the segments: its compaction removes them (deletes pass a full pool).
  CommandResult compact = RunCairn({"compact", mb}, 120s);
  ASSERT_TRUE(compact.ok()) << compact.Describe();
  EXPECT_LT(objects(), before);
  ASSERT_TRUE(ceph({"osd", "pool", "set-quota", "cairn-full", "max_bytes", "0"}).ok());
  EXPECT_TRUE(Eventually([&] { return WriteFile(mb + "/after", content(99)) == 0; }, 120s));
  EXPECT_TRUE(FileHasContent(own.ma() + "/after", content(99)));
  EXPECT_TRUE(own.UnmountAndFsck());
}

// A snapshot is one point in time for all nodes: taken on A, it shows on B at once, holds what
// both nodes had written, keeps (pins) every node's segments against compaction until it is
// deleted, pushes from any node to another object store, and restores from there as a single
// node file system that fsck accepts.
TEST_F(ClusterTest, SnapshotsAreOnePointInTimeForEveryNode) {
  OwnFileSystem own("snap", "cairn", {"--segment-size", "1MiB", "--seal-timeout", "1s"}, env_);
  ASSERT_TRUE(own.error().empty()) << own.error();
  const std::string ma = own.ma(), mb = own.mb(), conf = own.conf();
  auto content = [](const std::string& name, int version) {
    return PatternBytes(HashString(name) + version, 700 << 10);
  };
  auto sb = nlohmann::json::parse(ReadFile(own.a() + "/cairn.json").value_or("{}"), nullptr, false);
  const std::string uuid = sb.value("uuid", "");
  ASSERT_FALSE(uuid.empty());
  auto objects = [&] {
    CommandResult ls = RunCommand({"rados", "-c", conf, "-p", "cairn", "ls"}, 60s);
    size_t n = 0;
    for (size_t pos = ls.out.find(uuid); pos != std::string::npos;
         pos = ls.out.find(uuid, pos + 1)) {
      ++n;
    }
    return n;
  };
  const std::vector<std::string> on_a = {"f0", "f1", "f2", "f3", "f4", "f5"};
  const std::vector<std::string> on_b = {"g0", "g1", "g2"};
  for (const auto& n : on_a) ASSERT_EQ(WriteFile(ma + "/" + n, content(n, 1)), 0);
  for (const auto& n : on_b) ASSERT_EQ(WriteFile(mb + "/" + n, content(n, 1)), 0);
  ASSERT_EQ(::mkdir((mb + "/d").c_str(), 0755), 0);
  ASSERT_EQ(WriteFile(mb + "/d/small", "inline bytes"), 0);

  CommandResult snap = RunCairn({"snap", "create", ma, "s1"}, 120s);
  ASSERT_TRUE(snap.ok()) << snap.Describe();
  // The same name from the other node: refused.
  CommandResult again = RunCairn({"snap", "create", mb, "s1"}, 120s);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.Describe();

  // After it: deletes of A's files on B, an overwrite of B's file on A, a new file.
  for (const auto& n : on_a) ASSERT_EQ(::unlink((mb + "/" + n).c_str()), 0);
  ASSERT_EQ(WriteFile(ma + "/g0", content("g0", 2)), 0);
  ASSERT_EQ(WriteFile(ma + "/h0", content("h0", 1)), 0);
  ASSERT_EQ(::unlink((ma + "/d/small").c_str()), 0);

  // Both nodes show the snapshot as it was, whichever node wrote what.
  for (const std::string& m : {ma, mb}) {
    const std::string s1 = m + "/.snapshots/s1";
    auto names = ListDir(m + "/.snapshots");
    ASSERT_TRUE(names.has_value()) << m;
    EXPECT_NE(std::find(names->begin(), names->end(), "s1"), names->end()) << m;
    for (const auto& n : on_a) EXPECT_TRUE(FileHasContent(s1 + "/" + n, content(n, 1))) << m;
    for (const auto& n : on_b) EXPECT_TRUE(FileHasContent(s1 + "/" + n, content(n, 1))) << m;
    EXPECT_TRUE(FileHasContent(s1 + "/d/small", "inline bytes")) << m;
    struct stat st;
    EXPECT_NE(::stat((s1 + "/h0").c_str(), &st), 0) << m;
    EXPECT_TRUE(FileHasContent(m + "/g0", content("g0", 2))) << m;
    EXPECT_EQ(WriteFile(s1 + "/new", "x"), EROFS) << m;
  }
  CommandResult list = RunCairn({"snap", "list", mb}, 60s);
  EXPECT_NE(list.out.find("s1"), std::string::npos) << list.Describe();

  // The deleted files' segments are A's, dead in the live tree, pinned by the snapshot.
  const size_t before = objects();
  for (const std::string& m : {ma, mb}) {
    CommandResult c = RunCairn({"compact", m}, 120s);
    ASSERT_TRUE(c.ok()) << c.Describe();
  }
  EXPECT_GE(objects(), before);
  for (const auto& n : on_a) EXPECT_TRUE(FileHasContent(ma + "/.snapshots/s1/" + n, content(n, 1)));

  // Pushed from B to another store, restored from there as a single node.
  TempDir remote;
  const std::string url = "file://" + remote.path() + "/bucket";
  CommandResult own_store = RunCairn({"snap", "push", mb, "s1"}, 120s);
  EXPECT_NE(own_store.exit_code, 0);
  EXPECT_NE(own_store.err.find("another object store"), std::string::npos) << own_store.Describe();
  CommandResult push = RunCairn({"snap", "push", mb, "s1", "--to", url}, 300s);
  ASSERT_TRUE(push.ok()) << push.Describe();
  CommandResult repush = RunCairn({"snap", "push", ma, "s1", "--to", url}, 300s);
  ASSERT_TRUE(repush.ok()) << repush.Describe();
  const std::string restored = own.scratch() + "/restored", rm = own.scratch() + "/rm";
  ASSERT_EQ(::mkdir(rm.c_str(), 0755), 0);
  CommandResult restore = RunCairn({"snap", "restore", url, "s1", restored}, 300s);
  ASSERT_TRUE(restore.ok()) << restore.Describe();
  CommandResult mount = RunCairn({"mount", restored, rm, "--metrics-address", ""}, 120s);
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  for (const auto& n : on_a) EXPECT_TRUE(FileHasContent(rm + "/" + n, content(n, 1))) << n;
  for (const auto& n : on_b) EXPECT_TRUE(FileHasContent(rm + "/" + n, content(n, 1))) << n;
  EXPECT_TRUE(FileHasContent(rm + "/d/small", "inline bytes"));
  struct stat st;
  EXPECT_NE(::stat((rm + "/h0").c_str(), &st), 0);
  ASSERT_TRUE(RunCairn({"unmount", rm}, 120s).ok());
  CommandResult fsck = RunCairn({"fsck", restored}, 300s);
  EXPECT_TRUE(fsck.ok() && fsck.out.find("clean") != std::string::npos)
      << fsck.Describe() << fsck.out;

  // Restored into another cluster (a new database; the same pool under a new uuid): node 1 is
  // the restore's data directory, node 2 joins; both read the snapshot's segments from the store.
  const std::string db = fmt::format("cairn_restore_{}", ::getpid());
  ASSERT_TRUE(RunCommand({"/usr/lib/postgresql/15/bin/createdb", "-h", "127.0.0.1", "-p",
                          env_.at("PG_PORT"), "-U", "postgres", db})
                  .ok());
  const std::string meta = env_.at("META") + " dbname=" + db;
  const std::string r1 = own.scratch() + "/r1", r2 = own.scratch() + "/r2";
  const std::string m1 = own.scratch() + "/m1", m2 = own.scratch() + "/m2";
  for (const auto& d : {m1, m2}) ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  CommandResult half = RunCairn({"snap", "restore", url, "s1", r1, "--meta", meta}, 60s);
  EXPECT_NE(half.exit_code, 0);
  EXPECT_NE(half.err.find("--ceph-conf"), std::string::npos) << half.Describe();
  CommandResult into = RunCairn(
      {"snap", "restore", url, "s1", r1, "--meta", meta, "--ceph-conf", conf, "--pool", "cairn"},
      300s);
  ASSERT_TRUE(into.ok()) << into.Describe();
  // The same database again: it holds a file system now; nothing is left behind.
  CommandResult twice = RunCairn({"snap", "restore", url, "s1", own.scratch() + "/r3", "--meta",
                                  meta, "--ceph-conf", conf, "--pool", "cairn"},
                                 300s);
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_NE(twice.err.find("already holds file system"), std::string::npos) << twice.Describe();
  EXPECT_NE(::stat((own.scratch() + "/r3").c_str(), &st), 0);
  ASSERT_TRUE(
      RunCairn({"cluster", "join", r2, "--meta", meta, "--ceph-conf", conf, "--pool", "cairn"},
               120s)
          .ok());
  ASSERT_TRUE(RunCairn({"mount", r1, m1, "--metrics-address", ""}, 120s).ok());
  ASSERT_TRUE(RunCairn({"mount", r2, m2, "--metrics-address", ""}, 120s).ok());
  for (const std::string& m : {m1, m2}) {
    for (const auto& n : on_a) EXPECT_TRUE(FileHasContent(m + "/" + n, content(n, 1))) << m;
    for (const auto& n : on_b) EXPECT_TRUE(FileHasContent(m + "/" + n, content(n, 1))) << m;
    EXPECT_TRUE(FileHasContent(m + "/d/small", "inline bytes")) << m;
  }
  ASSERT_EQ(WriteFile(m2 + "/after-restore", content("after", 1)), 0);
  EXPECT_TRUE(FileHasContent(m1 + "/after-restore", content("after", 1)));
  for (const auto& m : {m1, m2}) ASSERT_TRUE(RunCairn({"unmount", m}, 120s).ok());
  CommandResult rfsck = RunCairn({"fsck", r1}, 300s);
  EXPECT_TRUE(rfsck.ok() && rfsck.out.find("clean") != std::string::npos)
      << rfsck.Describe() << rfsck.out;

  // Deleted on B: gone from A too, and compaction frees the segments it pinned.
  CommandResult del = RunCairn({"snap", "delete", mb, "s1"}, 120s);
  ASSERT_TRUE(del.ok()) << del.Describe();
  EXPECT_TRUE(Eventually([&] {
    auto names = ListDir(ma + "/.snapshots");
    return names && std::find(names->begin(), names->end(), "s1") == names->end();
  }));
  for (const std::string& m : {ma, mb}) {
    CommandResult c = RunCairn({"compact", m}, 120s);
    ASSERT_TRUE(c.ok()) << c.Describe();
  }
  EXPECT_LT(objects(), before);
  for (const auto& n : on_b) {
    EXPECT_TRUE(FileHasContent(ma + "/" + n, content(n, n == "g0" ? 2 : 1))) << n;
  }
  EXPECT_TRUE(own.UnmountAndFsck());
}

// A snapshot taken while all three nodes write is one point in time: the test writes a chain
// a<i> on node 1, then b<i> on node 2, then c<i> on node 3 (each write returns once committed),
// so a snapshot that holds c<i> must hold b<i> and a<i>, and every link before them whole. Only
// the last link it holds may be caught between its create and its write (empty or short).
TEST_F(ClusterTest, ASnapshotTakenWhileThreeNodesWriteIsOnePointInTime) {
  for (int k = 1; k <= kNodes; ++k)
    ASSERT_EQ(::mkdir(P(k, fmt::format("chain{}", k)).c_str(), 0755), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> written{0}, failures{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      for (int k = 1; k <= kNodes; ++k) {
        const std::string path = P(k, fmt::format("chain{}/{}{:05}", k, char('a' + k - 1), i));
        if (WriteFile(path, PatternBytes(i * 10 + k, 3000 + i % 7 * 1000)) != 0) ++failures;
      }
      written = i + 1;
    }
  });
  // Snapshots from each node in turn while the chain grows.
  std::vector<std::string> names;
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(Eventually([&] { return written.load() > (s + 1) * 20; }, 120s));
    const std::string name = fmt::format("chain-{}", s);
    CommandResult snap = RunCairn({"snap", "create", Mnt(s % kNodes + 1), name}, 120s);
    ASSERT_TRUE(snap.ok()) << snap.Describe();
    names.push_back(name);
  }
  stop = true;
  writer.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& name : names) {
    // Seen from node 3, whichever node took it.
    int links[kNodes] = {0, 0, 0};
    for (int k = 1; k <= kNodes; ++k) {
      auto entries = ListDir(P(3, fmt::format(".snapshots/{}/chain{}", name, k)));
      ASSERT_TRUE(entries.has_value()) << name;
      links[k - 1] = static_cast<int>(entries->size());
    }
    // The links in chain order: file i of node k is link 3 i + k - 1; the last one held may be
    // short, every other one is whole.
    const int held = links[0] + links[1] + links[2];
    for (int n = 0; n < held; ++n) {
      const int i = n / kNodes, k = n % kNodes + 1;
      const std::string path =
          P(3, fmt::format(".snapshots/{}/chain{}/{}{:05}", name, k, char('a' + k - 1), i));
      const std::string want = PatternBytes(i * 10 + k, 3000 + i % 7 * 1000);
      if (n + 1 < held) {
        EXPECT_TRUE(FileHasContent(path, want)) << path;
      } else {
        auto got = ReadFile(path);
        ASSERT_TRUE(got.has_value()) << path;
        EXPECT_EQ(*got, want.substr(0, got->size())) << path;
      }
    }
    // a >= b >= c, and no link lost: a chain cut at one point.
    EXPECT_GE(links[0], links[1]) << name;
    EXPECT_GE(links[1], links[2]) << name;
    EXPECT_LE(links[0] - links[2], 1) << name;
    EXPECT_GT(links[2], 0) << name;
  }
  for (const auto& name : names) ASSERT_TRUE(RunCairn({"snap", "delete", Mnt(1), name}, 120s).ok());
  for (int k = 1; k <= kNodes; ++k) {
    CommandResult rm = RunCommand({"rm", "-rf", P(k, fmt::format("chain{}", k))}, 120s);
    ASSERT_TRUE(rm.ok()) << rm.Describe();
  }
}

// A snapshot of a namespace that then changes a lot, on every node, reads exactly what was there:
// names, types, modes, sizes, times, links, xattrs and bytes. Deleting it frees the history the
// changes made the database keep.
TEST_F(ClusterTest, ASnapshotOfAManyTimesChangedNamespaceReadsExactlyWhatWasThere) {
  const std::string root = P(1, "busy");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  for (int d = 0; d < 4; ++d) {
    const std::string dir = fmt::format("{}/d{}", root, d);
    ASSERT_EQ(::mkdir(dir.c_str(), 0750 + d), 0);
    for (int i = 0; i < 60; ++i) {
      const std::string f = fmt::format("{}/f{:03}", dir, i);
      // Inline (up to 4 KiB) and segment files.
      ASSERT_EQ(WriteFile(f, PatternBytes(d * 1000 + i, i % 3 == 0 ? 90000 : 500 + i)), 0);
    }
    ASSERT_EQ(::symlink("f000", (dir + "/link").c_str()), 0);
    ASSERT_EQ(::link((dir + "/f001").c_str(), (dir + "/hard").c_str()), 0);
    ASSERT_EQ(::setxattr((dir + "/f002").c_str(), "user.tag", "v1", 2, 0), 0);
  }
  const auto before = Walk(root);
  ASSERT_TRUE(RunCairn({"snap", "create", Mnt(2), "busy"}, 120s).ok());
  auto history = [&] {
    CommandResult r =
        RunCommand({"psql", "-h", "127.0.0.1", "-p", env_.at("PG_PORT"), "-U", "postgres", "-d",
                    "cairn", "-tAc", "SELECT count(*) FROM cairn_kv_hist"},
                   60s);
    return r.ok() ? std::stoll(r.out) : -1;
  };
  // Taking it copied nothing (a background write, a heartbeat, may have kept a row since).
  EXPECT_LT(history(), 10);
  // Every kind of change, from every node.
  for (int d = 0; d < 4; ++d) {
    const int k = d % kNodes + 1;
    const std::string dir = P(k, fmt::format("busy/d{}", d));
    for (int i = 0; i < 60; ++i) {
      const std::string f = fmt::format("{}/f{:03}", dir, i);
      switch (i % 5) {
        case 0:
          ASSERT_EQ(WriteFile(f, PatternBytes(7 + i, 2000)), 0);
          break;  // rewritten
        case 1:
          ASSERT_EQ(::unlink(f.c_str()), 0);
          break;
        case 2:
          ASSERT_EQ(::rename(f.c_str(), (f + ".moved").c_str()), 0);
          break;
        case 3:
          ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
          break;
        default:
          ASSERT_EQ(::truncate(f.c_str(), 10), 0);
          break;
      }
    }
    ASSERT_EQ(::setxattr((dir + "/f002.moved").c_str(), "user.tag", "v2", 2, 0), 0);
    ASSERT_EQ(WriteFile(dir + "/new", "new"), 0);
  }
  ASSERT_EQ(::rename(P(3, "busy/d3").c_str(), P(3, "busy/d3-renamed").c_str()), 0);
  EXPECT_GT(history(), 100);
  for (int k = 1; k <= kNodes; ++k) {
    ExpectSameTree(before, Walk(P(k, ".snapshots/busy/busy")));
  }
  ASSERT_TRUE(RunCairn({"snap", "delete", Mnt(3), "busy"}, 120s).ok());
  EXPECT_EQ(history(), 0);
  CommandResult rm = RunCommand({"rm", "-rf", root}, 120s);
  ASSERT_TRUE(rm.ok()) << rm.Describe();
}

// Many fsyncs at once share their commits; every file fsync'd before a kill -9 of the node is
// whole on the other nodes.
TEST_F(ClusterTest, FsyncsSharingCommitsSurviveKillingTheNode) {
  ASSERT_EQ(::mkdir(P(2, "fsynced").c_str(), 0755), 0);
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<int> done;  // files whose fsync returned
  std::atomic<bool> stop{false};
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop && i < 1000; ++i) {
        const int id = t * 1000 + i;
        const std::string path = P(2, fmt::format("fsynced/f{:05}", id));
        const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0) return;  // the node is gone
        const std::string data = PatternBytes(id, 1000 + id % 5000);
        const bool ok =
            ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
        ::close(fd);
        if (!ok) return;
        std::lock_guard lock(mu);
        done.push_back(id);
      }
    });
  }
  ASSERT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(mu);
        return done.size() >= 200;
      },
      120s));
  ASSERT_TRUE(Script({"kill-node", dir_->path(), "2"}).ok());
  stop = true;
  for (auto& w : writers) w.join();
  std::vector<int> synced;
  {
    std::lock_guard lock(mu);
    synced = done;
  }
  for (int id : synced) {
    EXPECT_TRUE(
        FileHasContent(P(1, fmt::format("fsynced/f{:05}", id)), PatternBytes(id, 1000 + id % 5000)))
        << id;
  }
  CommandResult mount = Script({"mount-node", dir_->path(), "2"});
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  CommandResult rm = RunCommand({"rm", "-rf", P(1, "fsynced")}, 120s);
  ASSERT_TRUE(rm.ok()) << rm.Describe();
}

TEST_F(ClusterTest, BadEndpointsAndForeignNodesGetClearErrorsAndChangeNothing) {
  const std::string meta = env_["META"], conf = env_["CEPH_CONF"];
  TempDir scratch;
  const std::string dd = scratch.path() + "/new";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"format", dd, "--meta", "host=127.0.0.1 port=1 dbname=cairn connect_timeout=3",
        "--ceph-conf", conf},
       "cluster metadata"},
      {{"format", dd, "--meta", meta + " user=nosuchrole", "--ceph-conf", conf}, "nosuchrole"},
      {{"format", dd, "--meta", meta, "--ceph-conf", scratch.path() + "/missing.conf"},
       "missing.conf"},
      {{"format", dd, "--meta", meta, "--ceph-conf", conf, "--pool", "nosuchpool"}, "nosuchpool"},
      {{"format", dd, "--meta", meta, "--ceph-conf", conf}, "already holds file system"},
      {{"format", dd, "--meta", meta}, "--ceph-conf"},
      {{"cluster", "join", dd, "--meta", meta, "--ceph-conf", conf, "--pool", "nosuchpool"},
       "nosuchpool"},
      {{"cluster", "join", DataDir(1), "--meta", meta, "--ceph-conf", conf},
       "already holds file system"},
  };
  for (const auto& c : cases) {
    CommandResult r = RunCairn(c.args, 120s);
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.Describe();
    struct stat st;
    EXPECT_NE(::stat(dd.c_str(), &st), 0) << "left " << dd << " behind: " << r.Describe();
  }
  // A node of another file system (a single-node one here) is refused by the cluster's
  // metadata at mount: its uuid is not the database's.
  CairnMount other;
  ASSERT_TRUE(other.Format().ok());
  auto sb = ReadFile(DataDir(2) + "/cairn.json");
  ASSERT_TRUE(sb);
  auto own = ReadFile(other.data_dir() + "/cairn.json");
  ASSERT_TRUE(own);
  // Graft node 2's cluster section onto the other file system's superblock.
  std::string grafted = *own;
  size_t cut = grafted.rfind('}');
  size_t from = sb->find("\"cluster\"");
  size_t to = sb->find('}', from);
  ASSERT_NE(from, std::string::npos);
  grafted = grafted.substr(0, cut) + ",\n  " + sb->substr(from, to - from + 1) + "\n}\n";
  ASSERT_EQ(WriteFile(other.data_dir() + "/cairn.json", grafted), 0);
  CommandResult m = other.Mount();
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE((m.err + m.out).find("belongs to file system"), std::string::npos) << m.Describe();
  // Status shows this node and the membership.
  CommandResult status = RunCairn({"status", Mnt(2), "--json"});
  ASSERT_TRUE(status.ok()) << status.Describe();
  EXPECT_NE(status.out.find("\"members\": 3"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"node\": 2"), std::string::npos) << status.out;
  // Members are what joined.
  CommandResult members = RunCairn({"cluster", "members", DataDir(1)});
  ASSERT_TRUE(members.ok()) << members.Describe();
  for (int k = 1; k <= kNodes; ++k) {
    EXPECT_NE(members.out.find(DataDir(k)), std::string::npos) << members.out;
  }
  EXPECT_EQ(members.out.find(dd), std::string::npos) << members.out;
}

}  // namespace
}  // namespace cairn::integration
