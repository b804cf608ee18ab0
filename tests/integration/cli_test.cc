// The `cairn` command line on bad input, and detection of corrupted segment data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

constexpr size_t kKiB = 1024;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool ContainsAny(const std::string& text, const std::vector<std::string>& needles) {
  const std::string lower = Lower(text);
  return std::any_of(needles.begin(), needles.end(), [&](const std::string& needle) {
    return lower.find(Lower(needle)) != std::string::npos;
  });
}

bool FuseUsable() { return access("/dev/fuse", R_OK | W_OK) == 0; }

// A failed command must say why on stderr.
::testing::AssertionResult FailsWithMessage(const CommandResult& result) {
  if (result.timed_out) return ::testing::AssertionFailure() << result.Describe();
  if (result.exit_code == 0) {
    return ::testing::AssertionFailure() << "expected a failure; " << result.Describe();
  }
  if (result.exit_code >= 128) {
    return ::testing::AssertionFailure() << "killed by a signal; " << result.Describe();
  }
  if (result.err.find_first_not_of(" \n\t") == std::string::npos) {
    return ::testing::AssertionFailure() << "no message on stderr; " << result.Describe();
  }
  return ::testing::AssertionSuccess();
}

// ... and for a missing path, name it (or at least say that it does not exist).
::testing::AssertionResult FailsNamingMissingPath(const CommandResult& result,
                                                  const std::string& path) {
  if (auto failed = FailsWithMessage(result); !failed) return failed;
  if (!ContainsAny(result.err, {path, "no such", "not exist", "does not exist", "not found"})) {
    return ::testing::AssertionFailure()
           << "stderr names neither " << path << " nor its absence; " << result.Describe();
  }
  return ::testing::AssertionSuccess();
}

// Unmounts an extra mount point on scope exit if a test mounted it by mistake.
class ExtraMountGuard {
 public:
  explicit ExtraMountGuard(std::string mountpoint) : mountpoint_(std::move(mountpoint)) {}
  ~ExtraMountGuard() {
    if (!IsMounted(mountpoint_)) return;
    RunCairn({"unmount", mountpoint_});
    if (IsMounted(mountpoint_)) RunCommand({"fusermount3", "-uz", mountpoint_});
  }
  ExtraMountGuard(const ExtraMountGuard&) = delete;
  ExtraMountGuard& operator=(const ExtraMountGuard&) = delete;

 private:
  std::string mountpoint_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_ = std::make_unique<CairnMount>();
    ASSERT_TRUE(mount_->ok()) << "could not create a temporary directory under /var/tmp";
  }
  void TearDown() override { mount_.reset(); }

  std::unique_ptr<CairnMount> mount_;
};

TEST_F(CliTest, FormatCreatesMissingDirectory) {
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  struct stat st;
  ASSERT_EQ(stat(mount_->data_dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << "a fresh file system must be clean; " << fsck.Describe();
}

TEST_F(CliTest, FormatAcceptsEmptyDirectory) {
  ASSERT_EQ(mkdir(mount_->data_dir().c_str(), 0755), 0);
  CommandResult format = mount_->Format();
  EXPECT_TRUE(format.ok()) << format.Describe();
}

TEST_F(CliTest, FormatRefusesNonEmptyDirectory) {
  ASSERT_EQ(mkdir(mount_->data_dir().c_str(), 0755), 0);
  const std::string precious = mount_->data_dir() + "/precious";
  ASSERT_EQ(ErrnoName(WriteFile(precious, "keep me")), "OK");
  EXPECT_TRUE(FailsWithMessage(mount_->Format()));
  EXPECT_TRUE(FileHasContent(precious, "keep me"));
  EXPECT_EQ(ListDir(mount_->data_dir()).value_or(std::vector<std::string>{}),
            std::vector<std::string>{"precious"})
      << "a refused format must not leave anything behind";
}

TEST_F(CliTest, FormatRejectsBadTierSettingsAndLeavesNothing) {
  const std::vector<std::vector<std::string>> bad = {
      {"--object-store", "http://example/bucket"},
      {"--object-store", "file://relative/path"},
      {"--object-store", "s3://"},
      {"--nvme-capacity", "1MiB"},
      {"--nvme-capacity", "lots"},
      {"--high-watermark", "50%", "--low-watermark", "70%"},
      {"--high-watermark", "150%"},
      {"--tiering-delay", "5x"},
      {"--seal-timeout", "-1s"},
      {"--retention", "forever"},
  };
  for (const auto& args : bad) {
    EXPECT_TRUE(FailsWithMessage(mount_->Format(args))) << args[0] << " " << args[1];
    EXPECT_NE(access(mount_->data_dir().c_str(), F_OK), 0) << "format left " << args[0];
  }
  // An S3 store that cannot be reached is refused at format, with the reason.
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
  setenv("AWS_ACCESS_KEY_ID", "cairn-test", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-me", 1);
  CommandResult unreachable = mount_->Format({"--object-store", "s3://bucket/prefix"});
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_TRUE(FailsWithMessage(unreachable));
  EXPECT_EQ(unreachable.err.find("do-not-print-me"), std::string::npos) << unreachable.err;
}

TEST_F(CliTest, FormatRefusesRegularFile) {
  ASSERT_EQ(ErrnoName(WriteFile(mount_->data_dir(), "a file")), "OK");
  EXPECT_TRUE(FailsWithMessage(mount_->Format()));
  EXPECT_TRUE(FileHasContent(mount_->data_dir(), "a file"));
}

TEST_F(CliTest, FormatTwiceFailsAndKeepsTheFileSystem) {
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  if (FuseUsable()) {
    CommandResult mount = mount_->Mount();
    ASSERT_TRUE(mount.ok()) << mount.Describe();
    ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("survivor"), "still here")), "OK");
    CommandResult unmount = mount_->Unmount();
    ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  }
  EXPECT_TRUE(FailsWithMessage(mount_->Format()));
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  if (FuseUsable()) {
    CommandResult mount = mount_->Mount();
    ASSERT_TRUE(mount.ok()) << mount.Describe();
    EXPECT_TRUE(FileHasContent(mount_->Path("survivor"), "still here"));
  }
}

TEST_F(CliTest, MountRefusesUnformattedDirectory) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  ASSERT_EQ(mkdir(mount_->data_dir().c_str(), 0755), 0);
  EXPECT_TRUE(FailsWithMessage(mount_->Mount()));
  EXPECT_FALSE(IsMounted(mount_->mountpoint()));

  // A directory holding something else entirely: refused, and left as it was.
  ASSERT_EQ(ErrnoName(WriteFile(mount_->data_dir() + "/notes.txt", "not cairn")), "OK");
  ASSERT_EQ(mkdir((mount_->data_dir() + "/segments").c_str(), 0755), 0);
  EXPECT_TRUE(FailsWithMessage(mount_->Mount()));
  EXPECT_FALSE(IsMounted(mount_->mountpoint()));
  EXPECT_TRUE(FileHasContent(mount_->data_dir() + "/notes.txt", "not cairn"));
  EXPECT_EQ(ListDir(mount_->data_dir()).value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"notes.txt", "segments"}));
}

TEST_F(CliTest, MountRefusesMissingDataDirectory) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  EXPECT_TRUE(FailsNamingMissingPath(mount_->Mount(), mount_->data_dir()));
  EXPECT_FALSE(IsMounted(mount_->mountpoint()));
  EXPECT_NE(access(mount_->data_dir().c_str(), F_OK), 0) << "mount must not create DATA_DIR";
}

TEST_F(CliTest, MountRefusesMissingMountpoint) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  const std::string nowhere = mount_->root() + "/nowhere";
  ExtraMountGuard guard(nowhere);
  EXPECT_TRUE(FailsNamingMissingPath(RunCairn({"mount", mount_->data_dir(), nowhere}), nowhere));
  EXPECT_FALSE(IsMounted(nowhere));
  // The data directory is not left locked or marked as mounted.
  CommandResult mount = mount_->Mount();
  EXPECT_TRUE(mount.ok()) << mount.Describe();
}

TEST_F(CliTest, MountRefusesAlreadyMountedDataDirectory) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mount = mount_->Mount();
  ASSERT_TRUE(mount.ok()) << mount.Describe();

  const std::string second = mount_->root() + "/mnt2";
  ASSERT_EQ(mkdir(second.c_str(), 0755), 0);
  ExtraMountGuard guard(second);
  EXPECT_TRUE(FailsWithMessage(RunCairn({"mount", mount_->data_dir(), second})));
  EXPECT_FALSE(IsMounted(second));
  EXPECT_TRUE(FailsWithMessage(RunCairn({"mount", mount_->data_dir(), mount_->mountpoint()})));

  // The first mount is unharmed.
  ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("after"), "fine")), "OK");
  EXPECT_TRUE(FileHasContent(mount_->Path("after"), "fine"));
  CommandResult unmount = mount_->Unmount();
  EXPECT_TRUE(unmount.ok()) << unmount.Describe();
}

TEST_F(CliTest, MountTakesFuseThreads) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mount = mount_->Mount({"--fuse-threads", "1"});
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  // One thread serves everything, including a request that waits on another (create + write).
  ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("one"), "thread")), "OK");
  EXPECT_TRUE(FileHasContent(mount_->Path("one"), "thread"));
  CommandResult unmount = mount_->Unmount();
  EXPECT_TRUE(unmount.ok()) << unmount.Describe();
}

TEST_F(CliTest, MountSetsTheReadAheadWindow) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  for (const char* bad : {"bogus", "2TiB", "-1"}) {
    CommandResult refused = mount_->Mount({"--read-ahead", bad});
    EXPECT_FALSE(refused.ok()) << refused.Describe();
    EXPECT_TRUE(ContainsAny(refused.err, {"read-ahead", "size"})) << refused.Describe();
    EXPECT_FALSE(IsMounted(mount_->mountpoint())) << bad;
  }
  CommandResult mount = mount_->Mount({"--read-ahead", "4MiB"});
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  struct stat root;
  ASSERT_EQ(::stat(mount_->mountpoint().c_str(), &root), 0);
  if (::geteuid() == 0) {
    // The kernel names the mount's bdi after its device number.
    std::ifstream window("/sys/class/bdi/" + std::to_string(major(root.st_dev)) + ":" +
                         std::to_string(minor(root.st_dev)) + "/read_ahead_kb");
    std::string kb;
    window >> kb;
    EXPECT_EQ(kb, "4096");
  }
  ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("one"), "ahead")), "OK");
  EXPECT_TRUE(FileHasContent(mount_->Path("one"), "ahead"));
  CommandResult unmount = mount_->Unmount();
  EXPECT_TRUE(unmount.ok()) << unmount.Describe();
}

TEST_F(CliTest, JunkArgumentsPrintUsage) {
  const std::string missing = mount_->root() + "/missing";
  const std::vector<std::vector<std::string>> junk = {
      {},
      {"frobnicate"},
      {"--no-such-option"},
      {"format"},
      {"format", missing, "extra"},
      {"mount"},
      {"mount", missing},
      {"mount", missing, missing, "extra"},
      {"mount", missing, missing, "--no-such-flag"},
      {"mount", "--fuse-threads", "0", missing, missing},
      {"mount", "--fuse-threads", "lots", missing, missing},
      {"mount", "--fuse-threads", "1000", missing, missing},
      {"unmount"},
      {"status"},
      {"status", missing, "--yaml"},
      {"fsck"},
  };
  for (const std::vector<std::string>& args : junk) {
    CommandResult result = RunCairn(args);
    EXPECT_FALSE(result.ok()) << result.Describe();
    EXPECT_LT(result.exit_code, 128) << "crashed; " << result.Describe();
    EXPECT_TRUE(ContainsAny(result.out + result.err, {"usage", "--help"}))
        << "no usage hint; " << result.Describe();
  }
  EXPECT_NE(access(missing.c_str(), F_OK), 0) << "junk arguments must not create anything";

  CommandResult help = RunCairn({"--help"});
  EXPECT_TRUE(help.ok()) << help.Describe();
  for (const char* command : {"format", "mount", "unmount", "status", "fsck"}) {
    EXPECT_NE(help.out.find(command), std::string::npos) << "--help does not mention " << command;
  }
}

TEST_F(CliTest, MissingOrWrongDirectoriesGiveClearErrors) {
  const std::string missing = mount_->root() + "/missing";
  EXPECT_TRUE(FailsNamingMissingPath(RunCairn({"fsck", missing}), missing));
  EXPECT_TRUE(FailsNamingMissingPath(RunCairn({"status", missing}), missing));
  EXPECT_TRUE(FailsNamingMissingPath(RunCairn({"unmount", missing}), missing));
  // Existing directories that are not what the command needs.
  EXPECT_TRUE(FailsWithMessage(RunCairn({"status", mount_->mountpoint()})));
  EXPECT_TRUE(FailsWithMessage(RunCairn({"status", mount_->mountpoint(), "--json"})));
  EXPECT_TRUE(FailsWithMessage(RunCairn({"unmount", mount_->mountpoint()})));
  ASSERT_EQ(mkdir(mount_->data_dir().c_str(), 0755), 0);
  EXPECT_TRUE(FailsWithMessage(mount_->Fsck())) << "fsck of an unformatted directory";
}

// Finds `needle` in the segment files; returns the file and offset of its first occurrence.
std::optional<std::pair<std::string, off_t>> FindInSegments(const std::string& data_dir,
                                                            const std::string& needle) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/segments", ec)) {
    if (entry.path().extension() != ".seg") continue;
    auto bytes = ReadFile(entry.path().string());
    if (!bytes) continue;
    size_t at = bytes->find(needle);
    if (at != std::string::npos)
      return std::make_pair(entry.path().string(), static_cast<off_t>(at));
  }
  return std::nullopt;
}

// The middle of the largest segment file, for when the data cannot be found verbatim.
std::optional<std::pair<std::string, off_t>> MiddleOfLargestSegment(const std::string& data_dir) {
  std::error_code ec;
  std::optional<std::pair<std::string, off_t>> best;
  uintmax_t best_size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/segments", ec)) {
    if (entry.path().extension() != ".seg") continue;
    uintmax_t size = entry.file_size(ec);
    if (!ec && size > best_size) {
      best_size = size;
      best = std::make_pair(entry.path().string(), static_cast<off_t>(size / 2));
    }
  }
  return best;
}

TEST_F(CliTest, CorruptedSegmentByteGivesEioAndFsckReportsIt) {
  if (!FuseUsable()) GTEST_SKIP() << "/dev/fuse is not usable here";
  CommandResult format = mount_->Format();
  ASSERT_TRUE(format.ok()) << format.Describe();
  CommandResult mount = mount_->Mount();
  ASSERT_TRUE(mount.ok()) << mount.Describe();
  const std::string victim = PatternBytes(77, 256 * kKiB);
  const std::string bystander = "a small file, stored inline";
  ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("victim"), victim)), "OK");
  ASSERT_EQ(ErrnoName(WriteFile(mount_->Path("bystander"), bystander)), "OK");
  CommandResult unmount = mount_->Unmount();
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();

  // Flip one byte in the middle of the victim's data as stored in its segment.
  auto where = FindInSegments(mount_->data_dir(), victim.substr(128 * kKiB, 64));
  if (where) {
    where->second += 32;
  } else {
    std::cout << "victim data not found verbatim in a segment; corrupting the middle of the "
                 "largest segment file instead\n";
    where = MiddleOfLargestSegment(mount_->data_dir());
  }
  ASSERT_TRUE(where) << "no " << mount_->data_dir() << "/segments/*.seg file";
  {
    UniqueFd fd(open(where->first.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << where->first << ": " << ErrnoName(errno);
    char byte = 0;
    ASSERT_EQ(pread(fd.get(), &byte, 1, where->second), 1);
    byte = static_cast<char>(byte ^ 0x5a);
    ASSERT_EQ(pwrite(fd.get(), &byte, 1, where->second), 1);
    ASSERT_EQ(fsync(fd.get()), 0);
  }

  mount = mount_->Mount();
  ASSERT_TRUE(mount.ok()) << "corrupt data must not prevent mounting; " << mount.Describe();
  {
    UniqueFd fd(open(mount_->Path("victim").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_EQ(static_cast<size_t>(st.st_size), victim.size());
    // Every read either fails with EIO or returns the right bytes; at least one must fail.
    int eio_reads = 0;
    constexpr size_t kChunk = 16 * kKiB;
    for (size_t offset = 0; offset < victim.size(); offset += kChunk) {
      auto got = ReadAt(fd.get(), kChunk, static_cast<off_t>(offset));
      if (!got) {
        EXPECT_EQ(ErrnoName(got.error()), "EIO") << "at " << offset;
        ++eio_reads;
        continue;
      }
      EXPECT_TRUE(SameBytes(*got, std::string_view(victim).substr(offset, kChunk)))
          << "wrong data returned at offset " << offset;
    }
    EXPECT_GT(eio_reads, 0) << "the corrupted byte was read back without an error";
  }
  auto whole = ReadFile(mount_->Path("victim"));
  EXPECT_FALSE(whole.has_value()) << "reading the whole file must fail";
  if (!whole) {
    EXPECT_EQ(ErrnoName(whole.error()), "EIO");
  }
  EXPECT_TRUE(FileHasContent(mount_->Path("bystander"), bystander));

  unmount = mount_->Unmount();
  ASSERT_TRUE(unmount.ok()) << unmount.Describe();
  CommandResult fsck = mount_->Fsck();
  EXPECT_FALSE(fsck.ok()) << "fsck missed the corruption; " << fsck.Describe();
  EXPECT_LT(fsck.exit_code, 128) << fsck.Describe();
  EXPECT_TRUE(ContainsAny(fsck.out + fsck.err, {"corrupt", "checksum", "crc", "mismatch", "segment",
                                                "error", "problem", "bad", "invalid"}))
      << "fsck does not name the problem; " << fsck.Describe();
}

}  // namespace
}  // namespace cairn::integration
