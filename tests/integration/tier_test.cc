// The object tier end to end: a real mount over a real S3-protocol server (s3rver on loopback),
// with awscli as the independent client that checks what lands in the bucket.
//  - data written through the mount appears as objects, and with an NVMe capacity far below the
//    data set everything reads back byte-exact, also after a remount;
//  - the server stopped during uploads and during reads of evicted data: nothing is lost, reads
//    fail with EIO after the configured timeout and work again once the server is back;
//  - object-store faults injected at 20 %: nothing is lost;
//  - import of a prefix uploaded with awscli (nested keys, zero-byte objects, spaces and UTF-8,
//    unsafe keys), refresh, changed ETags and writes to imported files;
//  - tier status / location / fetch / release and /metrics.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"
#include "s3_server.h"

namespace cairn::integration {
namespace {

using cairn::testing::RunAwsCli;
using cairn::testing::S3Server;
using json = nlohmann::json;

constexpr size_t kMiB = 1 << 20;

class TierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    std::string why;
    server_ = S3Server::Start("cairn-test", &why);
    if (!server_) GTEST_SKIP() << "no S3 server: " << why;
    server_->ExportAwsEnvironment();  // for the mount and the CLI, children of the test
    unsetenv("CAIRN_TEST_FAULTS");
    mount_ = std::make_unique<CairnMount>();
    ASSERT_TRUE(mount_->ok());
  }
  void TearDown() override {
    mount_.reset();
    server_.reset();
    unsetenv("CAIRN_TEST_FAULTS");
  }

  // A tiered file system: 1 MiB segments, 8 MiB of NVMe, uploads right after sealing.
  void FormatAndMount(const std::vector<std::string>& mount_args = {}) {
    CommandResult f = mount_->Format({"--object-store", "s3://cairn-test/fs", "--segment-size",
                                      "1MiB", "--nvme-capacity", "8MiB", "--tiering-delay", "0s",
                                      "--seal-timeout", "1s"});
    ASSERT_TRUE(f.ok()) << f.Describe();
    CommandResult m = mount_->Mount(mount_args);
    ASSERT_TRUE(m.ok()) << m.Describe();
  }

  json Cairn(const std::vector<std::string>& args) {
    CommandResult r = RunCairn(args, std::chrono::milliseconds(180000));
    EXPECT_TRUE(r.ok()) << r.Describe();
    auto j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }

  // Keys and sizes in the bucket under prefix, as awscli sees them.
  std::map<std::string, uint64_t> BucketObjects(const std::string& prefix) {
    std::map<std::string, uint64_t> out;
    auto r = RunAwsCli(server_->endpoint(), {"s3api", "list-objects-v2", "--bucket", "cairn-test",
                                             "--prefix", prefix, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = json::parse(r.out.empty() ? "{}" : r.out, nullptr, false);
    if (j.is_object() && j.contains("Contents")) {
      for (const auto& o : j["Contents"]) out[o["Key"]] = o["Size"].get<uint64_t>();
    }
    return out;
  }

  // Writes n files of varied sizes (some inline, most in segments) and returns their contents.
  std::map<std::string, std::string> WriteDataSet(int n, const std::string& dir) {
    std::map<std::string, std::string> files;
    EXPECT_EQ(mkdir(mount_->Path(dir).c_str(), 0755), 0);
    for (int i = 0; i < n; ++i) {
      std::string name = dir + "/f" + std::to_string(i);
      size_t size = i % 7 == 0 ? 1000 : (i % 5 == 0 ? 700 * 1024 : 64 * 1024 + i * 97);
      files[name] = PatternBytes(HashString(name), size);
      EXPECT_EQ(WriteFile(mount_->Path(name), files[name]), 0) << name;
    }
    return files;
  }

  void ExpectAll(const std::map<std::string, std::string>& files) {
    for (const auto& [name, data] : files) {
      EXPECT_TRUE(FileHasContent(mount_->Path(name), data)) << name;
    }
  }

  std::unique_ptr<S3Server> server_;
  std::unique_ptr<CairnMount> mount_;
};

TEST_F(TierTest, SegmentsLandInTheBucketAndEverythingReadsBackFromASmallNvme) {
  FormatAndMount();
  // About 24 MiB of data through 8 MiB of NVMe: writes wait for uploads, never fail.
  auto files = WriteDataSet(120, "data");
  json flush = Cairn({"tier", "flush", mount_->mountpoint()});
  json status = Cairn({"tier", "status", mount_->mountpoint(), "--json"});
  EXPECT_EQ(status["segments"]["sealed"]["segments"], 0);
  EXPECT_GT(status["segments"]["evicted"]["segments"].get<uint64_t>(), 0u) << status.dump();
  EXPECT_LE(status["nvme_used"].get<uint64_t>(), 8 * kMiB);

  // Every byte written is in the bucket, as segment objects of this file system.
  uint64_t in_bucket = 0;
  auto objects = BucketObjects("fs/");
  for (const auto& [key, size] : objects) {
    EXPECT_NE(key.find("/segments/"), std::string::npos) << key;
    in_bucket += size;
  }
  uint64_t written = 0;
  for (const auto& [name, data] : files) written += data.size() > 4096 ? data.size() : 0;
  EXPECT_GE(in_bucket, written);

  DropCaches();
  ExpectAll(files);
  json loc = Cairn({"tier", "location", mount_->Path("data"), "--json"});
  EXPECT_EQ(loc["local_bytes"].get<uint64_t>() + loc["remote_bytes"].get<uint64_t>(), [&] {
    uint64_t t = 0;
    for (const auto& [n, d] : files) t += d.size();
    return t;
  }());

  CommandResult u = mount_->Unmount();
  ASSERT_TRUE(u.ok()) << u.Describe();
  CommandResult fsck = mount_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  ASSERT_TRUE(mount_->Mount().ok());
  ExpectAll(files);
}

TEST_F(TierTest, FetchWarmsAndReleaseEvicts) {
  CommandResult f = mount_->Format({"--object-store", "s3://cairn-test/fs", "--segment-size",
                                    "1MiB", "--tiering-delay", "0s", "--seal-timeout", "1s"});
  ASSERT_TRUE(f.ok()) << f.Describe();
  ASSERT_TRUE(mount_->Mount().ok());
  auto files = WriteDataSet(30, "warm");
  Cairn({"tier", "flush", mount_->mountpoint()});
  json released = Cairn({"tier", "release", mount_->mountpoint()});
  json loc = Cairn({"tier", "location", mount_->Path("warm"), "--json"});
  EXPECT_GT(loc["remote_bytes"].get<uint64_t>(), 0u) << loc.dump();
  CommandResult fetch = RunCairn({"tier", "fetch", mount_->Path("warm")});
  EXPECT_TRUE(fetch.ok()) << fetch.Describe();
  loc = Cairn({"tier", "location", mount_->Path("warm"), "--json"});
  EXPECT_EQ(loc["remote_bytes"].get<uint64_t>(), 0u) << loc.dump();
  DropCaches();
  ExpectAll(files);

  // The tier's counters are on the mount's Prometheus endpoint.
  json st = Cairn({"status", mount_->mountpoint(), "--json"});
  std::string url = st.value("metrics_url", "");
  ASSERT_FALSE(url.empty());
  CommandResult metrics = RunCommand({"curl", "-sf", url});
  ASSERT_TRUE(metrics.ok()) << metrics.Describe();
  EXPECT_NE(metrics.out.find("cairn_object_store_requests_total{op=\"put\"}"), std::string::npos);
  EXPECT_NE(metrics.out.find("cairn_segment_bytes{state=\"uploaded\"}"), std::string::npos);
}

TEST_F(TierTest, ServerDownDuringUploadsLosesNothing) {
  FormatAndMount();
  server_->Stop();
  // Below capacity, so the writes do not wait for the uploads that fail meanwhile.
  auto files = WriteDataSet(12, "down");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  json status = Cairn({"tier", "status", mount_->mountpoint(), "--json"});
  EXPECT_EQ(status["segments"]["uploaded"]["segments"], 0) << status.dump();
  ASSERT_TRUE(server_->Restart());
  Cairn({"tier", "flush", mount_->mountpoint()});
  Cairn({"tier", "release", mount_->mountpoint()});
  DropCaches();
  ExpectAll(files);
}

TEST_F(TierTest, ReadOfEvictedDataWithServerDownFailsInBoundedTimeThenRecovers) {
  FormatAndMount({"--remote-timeout", "3s"});
  auto files = WriteDataSet(10, "evicted");
  Cairn({"tier", "flush", mount_->mountpoint()});
  Cairn({"tier", "release", mount_->mountpoint()});
  DropCaches();
  server_->Stop();
  const std::string name = files.begin()->first;
  const std::string big = "evicted/f1";  // in a segment, not inline
  auto start = std::chrono::steady_clock::now();
  auto r = ReadFile(mount_->Path(big));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ErrnoName(r.error()), "EIO");
  EXPECT_LT(took, std::chrono::seconds(30));
  ASSERT_TRUE(server_->Restart());
  DropCaches();
  ExpectAll(files);
}

TEST_F(TierTest, InjectedFaultsAtTwentyPercentLoseNothing) {
  setenv("CAIRN_TEST_FAULTS", "error_rate=0.2,truncate_rate=0.05,delay_ms=0", 1);
  FormatAndMount();
  auto files = WriteDataSet(60, "faults");
  Cairn({"tier", "flush", mount_->mountpoint()});
  Cairn({"tier", "release", mount_->mountpoint()});
  DropCaches();
  ExpectAll(files);
  CommandResult u = mount_->Unmount();
  ASSERT_TRUE(u.ok()) << u.Describe();
  unsetenv("CAIRN_TEST_FAULTS");
  ASSERT_TRUE(mount_->Mount().ok());
  DropCaches();
  ExpectAll(files);
}

TEST_F(TierTest, KillDuringUploadsAndEvictionsLosesNothingFsynced) {
  FormatAndMount();
  std::map<std::string, std::string> files;
  ASSERT_EQ(mkdir(mount_->Path("crash").c_str(), 0755), 0);
  for (int round = 0; round < 3; ++round) {
    // Each file is fsync'd (WriteFile), so each must survive the kill that follows.
    for (int i = 0; i < 25; ++i) {
      std::string name = "crash/r" + std::to_string(round) + "_" + std::to_string(i);
      files[name] = PatternBytes(HashString(name), 300 * 1024 + i * 1000);
      ASSERT_EQ(WriteFile(mount_->Path(name), files[name]), 0) << name;
    }
    // Uploads and evictions are running (about 7.5 MiB per round through 8 MiB of NVMe).
    ASSERT_TRUE(mount_->KillDaemon());
    ASSERT_TRUE(mount_->ForceUnmount());
    CommandResult fsck = mount_->Fsck();
    EXPECT_TRUE(fsck.ok()) << fsck.Describe();
    CommandResult m = mount_->Mount();
    ASSERT_TRUE(m.ok()) << m.Describe();
    DropCaches();
    ExpectAll(files);
  }
}

class ImportTest : public TierTest {
 protected:
  void Upload(const std::string& key, const std::string& data) {
    TempDir tmp;
    std::string path = tmp.path() + "/body";
    ASSERT_EQ(WriteFile(path, data), 0);
    auto r = RunAwsCli(server_->endpoint(), {"s3api", "put-object", "--bucket", "cairn-test",
                                             "--key", key, "--body", path});
    ASSERT_EQ(r.exit_code, 0) << key << ": " << r.err;
  }
};

TEST_F(ImportTest, ImportMirrorsAPrefixWithoutCopying) {
  ASSERT_TRUE(mount_->Format().ok());
  ASSERT_TRUE(mount_->Mount().ok());
  std::map<std::string, std::string> good = {
      {"a/b/c.jpg", PatternBytes(1, 5000)},
      {"a/b/d.bin", PatternBytes(2, 10 * kMiB + 123)},  // large: ranged reads, then cached
      {"a/empty", ""},
      {"with space/n\xC3\xA4me \xE2\x9C\x93.txt", "utf-8\n"},
      {"top.txt", "top\n"},
  };
  for (const auto& [key, data] : good) Upload("ds/" + key, data);
  // Unsafe keys that the S3 server can hold (it normalizes "a/../b" and cannot store "a//b" or
  // names over 255 bytes; tests/tier/import_test.cc covers those against an in-memory store).
  const std::vector<std::string> unsafe = {"ds/x/..", "ds/x/.", "ds/p/q"};
  for (const auto& key : unsafe) Upload(key, "bad");
  Upload("ds/marker/", "");  // a directory marker, as consoles create them
  Upload("ds/p/q/r", "nested under a key that is also an object");
  good["p/q/r"] = "nested under a key that is also an object";

  json report = Cairn({"import", "s3://cairn-test/ds", mount_->Path("imp"), "--json"});
  EXPECT_EQ(report["files_created"].get<uint64_t>(), good.size()) << report.dump();
  std::vector<std::string> skipped;
  for (const auto& s : report["skipped"]) skipped.push_back(s["key"]);
  EXPECT_EQ(skipped.size(), unsafe.size()) << report.dump();
  // Nothing was created outside the destination.
  auto top = ListDir(mount_->mountpoint());
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(*top, std::vector<std::string>{"imp"});
  struct stat marker;
  ASSERT_EQ(stat(mount_->Path("imp/marker").c_str(), &marker), 0);
  EXPECT_TRUE(S_ISDIR(marker.st_mode));

  json loc = Cairn({"tier", "location", mount_->Path("imp"), "--json"});
  EXPECT_EQ(loc["local_bytes"].get<uint64_t>(), 0u);
  for (const auto& [key, data] : good) {
    EXPECT_TRUE(FileHasContent(mount_->Path("imp/" + key), data)) << key;
  }
  struct stat st;
  ASSERT_EQ(stat(mount_->Path("imp/a/b/d.bin").c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), good["a/b/d.bin"].size());

  // An object changed behind Cairn's back is an error, never mixed data ...
  Upload("ds/top.txt", "changed\n");
  Cairn({"tier", "release", mount_->Path("imp")});
  DropCaches();
  auto changed = ReadFile(mount_->Path("imp/top.txt"));
  ASSERT_FALSE(changed.has_value());
  EXPECT_EQ(ErrnoName(changed.error()), "EIO");
  // ... until a refresh picks up the new version, new keys and deleted ones.
  Upload("ds/new.txt", "new\n");
  auto del = RunAwsCli(server_->endpoint(), {"s3", "rm", "s3://cairn-test/ds/a/empty"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  json refreshed =
      Cairn({"import", "--refresh", "s3://cairn-test/ds", mount_->Path("imp"), "--json"});
  EXPECT_EQ(refreshed["files_created"], 1) << refreshed.dump();
  EXPECT_EQ(refreshed["files_updated"], 1) << refreshed.dump();
  EXPECT_EQ(refreshed["files_deleted"], 1) << refreshed.dump();
  EXPECT_TRUE(FileHasContent(mount_->Path("imp/top.txt"), "changed\n"));
  EXPECT_TRUE(FileHasContent(mount_->Path("imp/new.txt"), "new\n"));
  EXPECT_EQ(Outcome(access(mount_->Path("imp/a/empty").c_str(), F_OK)), "ENOENT");

  // Writing to an imported file copies it into Cairn first; the bucket's object stays as it was.
  {
    UniqueFd fd(open(mount_->Path("imp/a/b/c.jpg").c_str(), O_WRONLY));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(WriteAllAt(fd.get(), "XYZ", 10), 0);
  }
  std::string expect = good["a/b/c.jpg"];
  expect.replace(10, 3, "XYZ");
  EXPECT_TRUE(FileHasContent(mount_->Path("imp/a/b/c.jpg"), expect));
  TempDir tmp;
  auto get = RunAwsCli(server_->endpoint(),
                       {"s3", "cp", "s3://cairn-test/ds/a/b/c.jpg", tmp.path() + "/c.jpg"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  auto original = ReadFile(tmp.path() + "/c.jpg");
  ASSERT_TRUE(original.has_value());
  EXPECT_TRUE(SameBytes(*original, good["a/b/c.jpg"]));

  // Everything survives a remount.
  ASSERT_TRUE(mount_->Unmount().ok());
  ASSERT_TRUE(mount_->Mount().ok());
  EXPECT_TRUE(FileHasContent(mount_->Path("imp/a/b/c.jpg"), expect));
  EXPECT_TRUE(FileHasContent(mount_->Path("imp/a/b/d.bin"), good["a/b/d.bin"]));
}

TEST_F(ImportTest, ImportRejectsBadUrls) {
  ASSERT_TRUE(mount_->Format().ok());
  ASSERT_TRUE(mount_->Mount().ok());
  for (const std::string url : {"http://example/x", "s3://", "file://relative", "nonsense"}) {
    CommandResult r = RunCairn({"import", url, mount_->Path("x")});
    EXPECT_NE(r.exit_code, 0) << url;
    EXPECT_FALSE(r.err.empty()) << url;
  }
}

}  // namespace
}  // namespace cairn::integration
