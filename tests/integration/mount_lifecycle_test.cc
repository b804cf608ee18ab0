// Mounting and unmounting as users and their tools do it: `umount`, `fusermount3 -u`, `umount -l`
// and `cairn unmount`, with snapshots present; recovery from a daemon killed with -9 by a lazy
// unmount or by mounting again; refusal to mount over anything else; snapshot views that refuse
// writes before a byte reaches the page cache.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

using std::chrono::milliseconds;

bool FuseUsable() { return access("/dev/fuse", R_OK | W_OK) == 0; }

// Polls until nothing is mounted at path and the daemon has exited.
::testing::AssertionResult GoneWithin(const CairnMount& mount, std::optional<pid_t> daemon,
                                      milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!IsMounted(mount.mountpoint()) && (!daemon || !ProcessAlive(*daemon))) {
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return ::testing::AssertionFailure()
         << MountCount(mount.mountpoint()) << " mount(s) still at " << mount.mountpoint()
         << (daemon && ProcessAlive(*daemon) ? ", daemon still running" : "");
}

class MountLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
    mount_ = std::make_unique<CairnMount>();
    ASSERT_TRUE(mount_->ok());
    CommandResult format = mount_->Format();
    ASSERT_TRUE(format.ok()) << format.Describe();
    CommandResult mounted = mount_->Mount();
    if (!mounted.ok() && geteuid() != 0) GTEST_SKIP() << "mount failed as non-root";
    ASSERT_TRUE(mounted.ok()) << mounted.Describe();
  }
  void TearDown() override { mount_.reset(); }

  std::string P(const std::string& rel) const { return mount_->Path(rel); }

  std::unique_ptr<CairnMount> mount_;
};

TEST_F(MountLifecycleTest, EveryWayToUnmountWorksWithSnapshots) {
  if (geteuid() != 0) GTEST_SKIP() << "plain umount needs root";
  const std::vector<std::vector<std::string>> ways = {
      {"umount", mount_->mountpoint()},
      {"fusermount3", "-u", mount_->mountpoint()},
      {"umount", "-l", mount_->mountpoint()},
      {CAIRN_BIN, "unmount", mount_->mountpoint()},
  };
  int round = 0;
  for (const auto& way : ways) {
    const std::string name = "f" + std::to_string(round);
    ASSERT_EQ(WriteFile(P(name), "round " + std::to_string(round)), 0);
    CommandResult snap = RunCairn({"snap", "create", mount_->mountpoint(), "s" + name});
    ASSERT_TRUE(snap.ok()) << snap.Describe();
    // The view is in use before the unmount, as a user would have it.
    EXPECT_TRUE(
        FileHasContent(P(".snapshots/s" + name + "/" + name), "round " + std::to_string(round)));
    const auto daemon = mount_->ReadPidFile();
    CommandResult unmount = RunCommand(way);
    ASSERT_TRUE(unmount.ok()) << unmount.Describe();
    EXPECT_TRUE(GoneWithin(*mount_, daemon, milliseconds(30'000))) << unmount.command;
    EXPECT_EQ(MountCount(mount_->mountpoint()), 0) << unmount.command;
    CommandResult fsck = mount_->Fsck();
    EXPECT_TRUE(fsck.ok()) << fsck.Describe();
    CommandResult again = mount_->Mount();
    ASSERT_TRUE(again.ok()) << unmount.command << " then mount: " << again.Describe();
    EXPECT_EQ(MountCount(mount_->mountpoint()), 1);
    ++round;
  }
  for (int i = 0; i < round; ++i) {
    const std::string name = "f" + std::to_string(i);
    EXPECT_TRUE(FileHasContent(P(name), "round " + std::to_string(i)));
    EXPECT_TRUE(
        FileHasContent(P(".snapshots/s" + name + "/" + name), "round " + std::to_string(i)));
  }
}

TEST_F(MountLifecycleTest, PlainUmountThenMountAtOnceWaitsForTheFlush) {
  if (geteuid() != 0) GTEST_SKIP() << "plain umount needs root";
  const std::string big = PatternBytes(7, 3 << 20);
  ASSERT_EQ(WriteFile(P("big"), big), 0);
  for (int i = 0; i < 200; ++i) {
    int fd = open(P("n" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(WriteAllAt(fd, PatternBytes(i, 9000), 0), 0);
    close(fd);
  }
  CommandResult unmount = RunCommand({"umount", mount_->mountpoint()});
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  CommandResult again = mount_->Mount();
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_TRUE(FileHasContent(P("big"), big));
  for (int i = 0; i < 200; ++i)
    EXPECT_TRUE(FileHasContent(P("n" + std::to_string(i)), PatternBytes(i, 9000)));
}

TEST_F(MountLifecycleTest, SnapshotViewsRefuseWritesBeforeThePageCache) {
  ASSERT_EQ(WriteFile(P("a"), "original"), 0);
  CommandResult snap = RunCairn({"snap", "create", mount_->mountpoint(), "s"});
  ASSERT_TRUE(snap.ok()) << snap.Describe();
  const std::string view = P(".snapshots/s/a");
  for (int flags : {O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC, O_RDWR | O_APPEND}) {
    EXPECT_EQ(Outcome(open(view.c_str(), flags)), "EROFS") << "flags " << flags;
  }
  EXPECT_EQ(Outcome(truncate(view.c_str(), 1)), "EROFS");
  UniqueFd fd(open(view.c_str(), O_RDONLY));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(Outcome(write(fd.get(), "x", 1)), "EBADF");
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  EXPECT_EQ(map, MAP_FAILED);
  if (map != MAP_FAILED) munmap(map, 4096);
  // Nothing was written anywhere: not in the view, not in the live file, not after a remount.
  EXPECT_TRUE(FileHasContent(view, "original"));
  EXPECT_TRUE(FileHasContent(P("a"), "original"));
  DropCaches();
  EXPECT_TRUE(FileHasContent(view, "original"));
}

TEST_F(MountLifecycleTest, MountAfterKillCleansUpTheDeadMount) {
  for (int cycle = 0; cycle < 3; ++cycle) {
    const std::string name = "k" + std::to_string(cycle);
    ASSERT_EQ(WriteFile(P(name), PatternBytes(cycle, 70000)), 0);
    ASSERT_TRUE(mount_->KillDaemon());
    ASSERT_EQ(MountCount(mount_->mountpoint()), 1);
    // Straight to `cairn mount`, no unmount first: it detaches the dead mount of the same data.
    CommandResult again = mount_->Mount();
    ASSERT_TRUE(again.ok()) << again.Describe();
    EXPECT_EQ(MountCount(mount_->mountpoint()), 1);
    for (int i = 0; i <= cycle; ++i) {
      EXPECT_TRUE(FileHasContent(P("k" + std::to_string(i)), PatternBytes(i, 70000)));
    }
    ASSERT_EQ(mkdir(P("d" + std::to_string(cycle)).c_str(), 0755), 0);
  }
}

TEST_F(MountLifecycleTest, UnmountOfADeadMountDetachesIt) {
  ASSERT_EQ(WriteFile(P("x"), "kept"), 0);
  ASSERT_TRUE(mount_->KillDaemon());
  CommandResult unmount = mount_->Unmount();
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  EXPECT_EQ(MountCount(mount_->mountpoint()), 0);
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  CommandResult again = mount_->Mount();
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_TRUE(FileHasContent(P("x"), "kept"));
}

TEST_F(MountLifecycleTest, MountRefusesWhatElseIsMountedThere) {
  ASSERT_EQ(WriteFile(P("mine"), "first"), 0);
  CairnMount other;
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other.Format().ok());

  // A live Cairn mount of another file system.
  CommandResult over = RunCairn({"mount", other.data_dir(), mount_->mountpoint()});
  EXPECT_NE(over.exit_code, 0) << over.Describe();
  EXPECT_NE(over.err.find("already a mount point"), std::string::npos) << over.Describe();
  EXPECT_EQ(MountCount(mount_->mountpoint()), 1);
  EXPECT_TRUE(FileHasContent(P("mine"), "first"));

  // A dead one: refused too, and the message says how to detach it.
  ASSERT_TRUE(mount_->KillDaemon());
  over = RunCairn({"mount", other.data_dir(), mount_->mountpoint()});
  EXPECT_NE(over.exit_code, 0) << over.Describe();
  EXPECT_NE(over.err.find("cairn unmount"), std::string::npos) << over.Describe();
  EXPECT_EQ(MountCount(mount_->mountpoint()), 1);
  CommandResult again = mount_->Mount();
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_TRUE(FileHasContent(P("mine"), "first"));

  // Something that is not Cairn at all.
  if (geteuid() == 0) {
    ASSERT_TRUE(mount_->Unmount().ok());
    ASSERT_EQ(mount("tmpfs", mount_->mountpoint().c_str(), "tmpfs", 0, "size=1m"), 0);
    CommandResult onto = RunCairn({"mount", mount_->data_dir(), mount_->mountpoint()});
    EXPECT_NE(onto.exit_code, 0) << onto.Describe();
    EXPECT_NE(onto.err.find("tmpfs"), std::string::npos) << onto.Describe();
    EXPECT_EQ(MountCount(mount_->mountpoint()), 1);
    ASSERT_EQ(umount(mount_->mountpoint().c_str()), 0);
    again = mount_->Mount();
    ASSERT_TRUE(again.ok()) << again.Describe();
    EXPECT_TRUE(FileHasContent(P("mine"), "first"));
  }
}

}  // namespace
}  // namespace cairn::integration
