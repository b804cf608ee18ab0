// Snapshots and Snap-to-Object end to end: real mounts over a real S3-protocol server (s3rver on
// loopback), awscli as the independent client that checks and damages what is in the bucket.
//  - snapshot views stay frozen while the live tree changes (also through compaction and a
//    remount), are read-only, and are not listed by readdir;
//  - push, restore into a second data directory, mount both and compare every entry's content
//    and metadata; writes on each side stay on that side; objects of the source are never changed
//    by the restored file system;
//  - an incremental push after changing 1 % of the files uploads a small fraction of the first;
//  - a push with the mount killed (kill -9) midway completes on rerun and restores identical;
//  - kill -9 while snapshots are being created leaves only whole snapshots;
//  - corrupted and truncated objects are detected, never served;
//  - a remote delete removes only what nothing else references.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
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
using std::chrono::milliseconds;

constexpr const char* kBucket = "cairn-test";
constexpr const char* kUrl = "s3://cairn-test/fs";

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    std::string why;
    server_ = S3Server::Start(kBucket, &why);
    if (!server_) GTEST_SKIP() << "no S3 server: " << why;
    server_->ExportAwsEnvironment();  // for the mount and the CLI, children of the test
    unsetenv("CAIRN_TEST_FAULTS");
    src_ = std::make_unique<CairnMount>();
    dst_ = std::make_unique<CairnMount>();
    ASSERT_TRUE(src_->ok() && dst_->ok());
  }
  void TearDown() override {
    dst_.reset();
    src_.reset();
    server_.reset();
    unsetenv("CAIRN_TEST_FAULTS");
  }

  void FormatAndMount(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--object-store", kUrl, "--segment-size", "1MiB"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult f = src_->Format(args);
    ASSERT_TRUE(f.ok()) << f.Describe();
    CommandResult m = src_->Mount();
    ASSERT_TRUE(m.ok()) << m.Describe();
  }

  json Cairn(const std::vector<std::string>& args) {
    CommandResult r = RunCairn(args, milliseconds(300000));
    EXPECT_TRUE(r.ok()) << r.Describe();
    auto j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }

  std::string Uuid(const CairnMount& m) {
    auto text = ReadFile(m.data_dir() + "/cairn.json");
    if (!text) return "";
    return json::parse(*text)["uuid"].get<std::string>();
  }

  // Keys under prefix with their sizes and ETags, as awscli sees them.
  std::map<std::string, std::pair<uint64_t, std::string>> Bucket(const std::string& prefix) {
    std::map<std::string, std::pair<uint64_t, std::string>> out;
    auto r = RunAwsCli(server_->endpoint(), {"s3api", "list-objects-v2", "--bucket", kBucket,
                                             "--prefix", prefix, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = json::parse(r.out.empty() ? "{}" : r.out, nullptr, false);
    if (j.is_object() && j.contains("Contents")) {
      for (const auto& o : j["Contents"]) {
        out[o["Key"]] = {o["Size"].get<uint64_t>(), o["ETag"].get<std::string>()};
      }
    }
    return out;
  }

  void PutObject(const std::string& key, const std::string& data) {
    TempDir tmp;
    std::string path = tmp.path() + "/body";
    ASSERT_EQ(WriteFile(path, data), 0);
    auto r = RunAwsCli(server_->endpoint(),
                       {"s3api", "put-object", "--bucket", kBucket, "--key", key, "--body", path});
    ASSERT_EQ(r.exit_code, 0) << key << ": " << r.err;
  }
  std::string GetObject(const std::string& key) {
    TempDir tmp;
    std::string path = tmp.path() + "/body";
    auto r = RunAwsCli(server_->endpoint(),
                       {"s3api", "get-object", "--bucket", kBucket, "--key", key, path});
    EXPECT_EQ(r.exit_code, 0) << key << ": " << r.err;
    auto data = ReadFile(path);
    return data ? *data : "";
  }

  // A tree with every kind of metadata: modes, owners, times, hard links, symlinks, xattrs,
  // sparse files, inline and segment files.
  void WriteTree(const std::string& dir, int files) {
    auto P = [&](const std::string& rel) { return src_->Path(dir + rel); };
    ASSERT_EQ(mkdir(P("").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(P("/sub").c_str(), 0750), 0);
    ASSERT_EQ(mkdir(P("/sub/deeper").c_str(), 0700), 0);
    for (int i = 0; i < files; ++i) {
      std::string name = (i % 3 ? "/sub/f" : "/f") + std::to_string(i);
      size_t size = i % 4 == 0 ? 300 : 40 * 1024 + static_cast<size_t>(i) * 997;
      ASSERT_EQ(WriteFile(P(name), PatternBytes(HashString(dir + name), size), 0640), 0);
    }
    ASSERT_EQ(WriteFile(P("/sub/deeper/big"), PatternBytes(7, 3 << 20)), 0);
    ASSERT_EQ(link(P("/f0").c_str(), P("/sub/deeper/hardlink").c_str()), 0);
    ASSERT_EQ(symlink("../f0", P("/sub/link").c_str()), 0);
    ASSERT_EQ(setxattr(P("/f0").c_str(), "user.origin", "camera-7", 8, 0), 0);
    ASSERT_EQ(setxattr(P("/sub").c_str(), "user.label", "train", 5, 0), 0);
    ASSERT_EQ(chown(P("/f3").c_str(), 1234, 5678), 0);
    ASSERT_EQ(chmod(P("/f3").c_str(), 04711), 0);
    ASSERT_EQ(mkfifo(P("/fifo").c_str(), 0600), 0);
    {
      int fd = open(P("/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(WriteAllAt(fd, "tail", 5 << 20), 0);
      ASSERT_EQ(WriteAllAt(fd, "head", 0), 0);
      ASSERT_EQ(fsync(fd), 0);
      close(fd);
    }
    struct timeval times[2] = {{1500000000, 0}, {1600000000, 123456}};
    ASSERT_EQ(utimes(P("/f9").c_str(), times), 0);
  }

  std::unique_ptr<S3Server> server_;
  std::unique_ptr<CairnMount> src_, dst_;
};

TEST_F(SnapshotTest, ViewsStayFrozenAreReadOnlyAndHidden) {
  FormatAndMount();
  WriteTree("/data", 40);
  const std::string view = src_->Path("/.snapshots/s1");
  json created = Cairn({"snap", "create", src_->mountpoint(), "s1", "--json"});
  EXPECT_EQ(created["name"], "s1");
  auto before = Walk(src_->Path("/data"));
  ExpectSameTree(before, Walk(view + "/data"));

  // Hidden from readdir (find, du, rsync do not walk into it), reachable by name.
  auto root = ListDir(src_->mountpoint());
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(std::count(root->begin(), root->end(), ".snapshots"), 0);
  EXPECT_EQ(*ListDir(src_->Path("/.snapshots")), std::vector<std::string>{"s1"});

  // Read-only: the kernel and the file system refuse every change.
  errno = 0;
  EXPECT_LT(open((view + "/data/f3").c_str(), O_WRONLY), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_LT(open((view + "/data/new").c_str(), O_CREAT | O_WRONLY, 0644), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(unlink((view + "/data/f3").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(mkdir((view + "/x").c_str(), 0755), 0);
  EXPECT_NE(setxattr((view + "/data/f0").c_str(), "user.y", "1", 1, 0), 0);
  EXPECT_NE(mkdir(src_->Path("/.snapshots/s2").c_str(), 0755), 0);
  EXPECT_NE(rename(src_->Path("/data").c_str(), src_->Path("/.snapshots").c_str()), 0);

  // The live tree changes in every way; the view does not.
  ASSERT_EQ(WriteFile(src_->Path("/data/sub/f1"), "overwritten"), 0);
  ASSERT_EQ(unlink(src_->Path("/data/sub/f2").c_str()), 0);
  ASSERT_EQ(rename(src_->Path("/data/sub/f5").c_str(), src_->Path("/data/moved").c_str()), 0);
  ASSERT_EQ(truncate(src_->Path("/data/sub/deeper/big").c_str(), 100), 0);
  ASSERT_EQ(setxattr(src_->Path("/data/f0").c_str(), "user.origin", "other", 5, 0), 0);
  for (int i = 6; i < 40; i += 3)
    ASSERT_EQ(unlink(src_->Path("/data/f" + std::to_string(i)).c_str()), 0);
  // Compaction runs over what the deletes left sparse: pinned segments stay as they are.
  json compact = Cairn({"compact", src_->mountpoint(), "--threshold", "1.0"});
  DropCaches();
  ExpectSameTree(before, Walk(view + "/data"));

  // Snapshots survive a remount.
  ASSERT_TRUE(src_->Unmount().ok());
  CommandResult fsck = src_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
  ASSERT_TRUE(src_->Mount().ok());
  ExpectSameTree(before, Walk(view + "/data"));
  json list = Cairn({"snap", "list", src_->mountpoint(), "--json"});
  ASSERT_EQ(list["snapshots"].size(), 1u);

  // Deleting it lets compaction reclaim what only it held.
  json st1 = Cairn({"status", src_->mountpoint(), "--json"});
  Cairn({"snap", "delete", src_->mountpoint(), "s1"});
  EXPECT_NE(access(view.c_str(), F_OK), 0);
  Cairn({"compact", src_->mountpoint(), "--threshold", "1.0"});
  json st2 = Cairn({"status", src_->mountpoint(), "--json"});
  EXPECT_LT(st2["space_used"].get<uint64_t>(), st1["space_used"].get<uint64_t>())
      << st1.dump() << st2.dump();
  CommandResult bad = RunCairn({"snap", "create", src_->mountpoint(), ".hidden"});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.err.find("cannot start with '.'"), std::string::npos) << bad.err;
  ASSERT_TRUE(src_->Unmount().ok());
}

TEST_F(SnapshotTest, PushRestoreCompareAndKeepSidesApart) {
  FormatAndMount();
  WriteTree("/data", 200);
  Cairn({"snap", "create", src_->mountpoint(), "s1"});
  json push1 = Cairn({"snap", "push", src_->mountpoint(), "s1", "--json"});
  const std::string src_uuid = Uuid(*src_);
  ASSERT_FALSE(src_uuid.empty());
  EXPECT_GT(push1["bytes_uploaded"].get<uint64_t>() + push1["bytes_present"].get<uint64_t>(),
            5u << 20);
  // What awscli sees: the manifest (last), segments and metadata named in it, all present.
  const std::string manifest_key = "fs/snapshots/s1/" + src_uuid + ".json";
  auto manifest = json::parse(GetObject(manifest_key), nullptr, false);
  ASSERT_TRUE(manifest.is_object()) << manifest_key;
  EXPECT_EQ(manifest["manifest"]["version"], 1);
  auto all = Bucket("fs/");
  for (const auto& part : manifest["manifest"]["segments"]) {
    auto it = all.find("fs/" + part["key"].get<std::string>());
    ASSERT_NE(it, all.end()) << part.dump();
    EXPECT_EQ(it->second.first, part["size"].get<uint64_t>());
  }
  for (const auto& part : manifest["manifest"]["metadata"]) {
    EXPECT_TRUE(all.count("fs/" + part["key"].get<std::string>())) << part.dump();
  }
  // Far fewer objects than files.
  EXPECT_LT(manifest["manifest"]["segments"].size() + manifest["manifest"]["metadata"].size(),
            100u);

  // Restore into a second data directory and mount it: everything is there, lazily.
  json restored = Cairn({"snap", "restore", kUrl, "s1", dst_->data_dir(), "--json"});
  ASSERT_TRUE(dst_->Mount().ok());
  const std::string dst_uuid = restored["uuid"];
  ASSERT_NE(dst_uuid, src_uuid);
  json loc = Cairn({"tier", "location", dst_->Path("/data"), "--json"});
  EXPECT_GT(loc["remote_bytes"].get<uint64_t>(), 5u << 20);
  ExpectSameTree(Walk(src_->Path("/.snapshots/s1/data")), Walk(dst_->Path("/data")));
  ExpectSameTree(Walk(src_->Path("/data")), Walk(dst_->Path("/data")));
  json fetched = Cairn({"tier", "fetch", dst_->Path("/data")});

  // Both sides keep writing; each side's writes stay on that side.
  auto source_objects = Bucket("fs/" + src_uuid + "/");
  ASSERT_EQ(WriteFile(dst_->Path("/data/only-restored"), PatternBytes(1, 2 << 20)), 0);
  ASSERT_EQ(WriteFile(dst_->Path("/data/sub/f1"), "changed on the restored side"), 0);
  ASSERT_EQ(WriteFile(src_->Path("/data/only-source"), PatternBytes(2, 2 << 20)), 0);
  Cairn({"tier", "flush", dst_->mountpoint()});
  Cairn({"tier", "flush", src_->mountpoint()});
  EXPECT_NE(access(src_->Path("/data/only-restored").c_str(), F_OK), 0);
  EXPECT_NE(access(dst_->Path("/data/only-source").c_str(), F_OK), 0);
  EXPECT_FALSE(FileHasContent(src_->Path("/data/sub/f1"), "changed on the restored side"));
  EXPECT_FALSE(Bucket("fs/" + dst_uuid + "/segments/").empty());
  // The restored file system changed nothing of the source's (the source only added).
  auto after = Bucket("fs/" + src_uuid + "/");
  for (const auto& [key, v] : source_objects) {
    auto it = after.find(key);
    ASSERT_NE(it, after.end()) << key;
    EXPECT_EQ(it->second, v) << key;
  }
  EXPECT_TRUE(Bucket("fs/refs/").count("fs/refs/" + dst_uuid + ".json"));

  // Incremental: 1 % of the files change, the next push uploads a small fraction.
  ASSERT_EQ(WriteFile(src_->Path("/data/sub/f10"), PatternBytes(10, 64 * 1024)), 0);
  ASSERT_EQ(WriteFile(src_->Path("/data/sub/f11"), PatternBytes(11, 64 * 1024)), 0);
  Cairn({"snap", "create", src_->mountpoint(), "s2"});
  json push2 = Cairn({"snap", "push", src_->mountpoint(), "s2", "--json"});
  EXPECT_LT(push2["bytes_uploaded"].get<uint64_t>() * 5, push1["bytes_uploaded"].get<uint64_t>())
      << push1.dump() << push2.dump();
  EXPECT_GT(push2["bytes_present"].get<uint64_t>(), 5u << 20);
  json listed = Cairn({"snap", "list", kUrl, "--json"});
  EXPECT_EQ(listed["snapshots"].size(), 2u) << listed.dump();

  // Removing s1 from the bucket keeps what s2 and the restored file system still read.
  DropCaches();  // both walks below see what the daemon holds, not the kernel's attribute cache
  auto restored_tree = Walk(dst_->Path("/data"));
  CommandResult del = RunCairn({"snap", "delete", src_->mountpoint(), "s1", "--remote"});
  EXPECT_TRUE(del.ok()) << del.Describe();
  EXPECT_NE(del.out.find("kept because"), std::string::npos) << del.out;
  EXPECT_FALSE(Bucket(manifest_key).count(manifest_key));
  Cairn({"tier", "release", dst_->mountpoint()});
  DropCaches();
  ExpectSameTree(restored_tree, Walk(dst_->Path("/data")));

  // A second restore of s2 reads everything it needs after all that.
  CairnMount third;
  ASSERT_TRUE(third.ok());
  Cairn({"snap", "restore", kUrl, "s2", third.data_dir()});
  ASSERT_TRUE(third.Mount().ok());
  ExpectSameTree(Walk(src_->Path("/.snapshots/s2/data")), Walk(third.Path("/data")));
  ASSERT_TRUE(third.Unmount().ok());
  ASSERT_TRUE(dst_->Unmount().ok());
  ASSERT_TRUE(src_->Unmount().ok());
  CommandResult fsck = dst_->Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.Describe();
}

TEST_F(SnapshotTest, PushKilledMidwayCompletesOnRerun) {
  // Nothing uploads until the push asks; every object-store call takes a second, so the push is
  // still running when the mount is killed.
  FormatAndMount({"--tiering-delay", "1h"});
  WriteTree("/data", 120);
  ASSERT_TRUE(src_->Unmount().ok());
  setenv("CAIRN_TEST_FAULTS", "error_rate=0,truncate_rate=0,delay_ms=1000", 1);
  ASSERT_TRUE(src_->Mount().ok());
  unsetenv("CAIRN_TEST_FAULTS");
  Cairn({"snap", "create", src_->mountpoint(), "s1"});
  auto expected = Walk(src_->Path("/.snapshots/s1/data"));
  const std::string uuid = Uuid(*src_);

  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(CAIRN_BIN, CAIRN_BIN, "snap", "push", src_->mountpoint().c_str(), "s1", nullptr);
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  size_t landed = 0;
  for (int i = 0; i < 600 && landed < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    landed = Bucket("fs/" + uuid + "/segments/").size();
  }
  EXPECT_GE(landed, 3u);
  ASSERT_TRUE(src_->KillDaemon());
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the push finished first";
  ASSERT_TRUE(src_->ForceUnmount());
  EXPECT_TRUE(Bucket("fs/snapshots/").empty()) << "a manifest before everything it names";

  ASSERT_TRUE(src_->Mount().ok());
  json push = Cairn({"snap", "push", src_->mountpoint(), "s1", "--json"});
  EXPECT_GT(push["bytes_present"].get<uint64_t>(), 0u) << push.dump();
  Cairn({"snap", "restore", kUrl, "s1", dst_->data_dir()});
  ASSERT_TRUE(dst_->Mount().ok());
  ExpectSameTree(expected, Walk(dst_->Path("/data")));
}

TEST_F(SnapshotTest, DamagedObjectsAreDetectedNeverServed) {
  FormatAndMount();
  WriteTree("/data", 30);
  Cairn({"snap", "create", src_->mountpoint(), "s1"});
  Cairn({"snap", "push", src_->mountpoint(), "s1"});
  const std::string uuid = Uuid(*src_);
  const std::string manifest_key = "fs/snapshots/s1/" + uuid + ".json";
  auto manifest = json::parse(GetObject(manifest_key))["manifest"];

  // A good restore first; then a segment object changes under it: reads fail, never lie.
  Cairn({"snap", "restore", kUrl, "s1", dst_->data_dir()});
  ASSERT_TRUE(dst_->Mount().ok());
  const std::string seg_key = "fs/" + manifest["segments"][0]["key"].get<std::string>();
  std::string seg = GetObject(seg_key);
  ASSERT_GT(seg.size(), 4096u);
  std::string damaged = seg;
  for (size_t i = 1000; i < damaged.size(); i += 4096) damaged[i] ^= 0x5a;
  PutObject(seg_key, damaged);
  int errors = 0;
  for (const auto& [name, e] : Walk(src_->Path("/.snapshots/s1/data"))) {
    if (!S_ISREG(e.st.st_mode) || e.st.st_size <= 4096) continue;
    auto data = ReadFile(dst_->Path("/data" + name));
    if (!data) {
      EXPECT_EQ(data.error(), EIO) << name;
      ++errors;
    } else {
      EXPECT_EQ(std::to_string(HashString(*data)) + ":" + std::to_string(data->size()), e.content)
          << name << " served wrong bytes";
    }
  }
  EXPECT_GT(errors, 0);
  ASSERT_TRUE(dst_->Unmount().ok());

  // A truncated segment object: the restore says so and leaves nothing behind.
  PutObject(seg_key, seg.substr(0, seg.size() / 2));
  CairnMount other;
  CommandResult r = RunCairn({"snap", "restore", kUrl, "s1", other.data_dir()});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("the manifest says"), std::string::npos) << r.err;
  EXPECT_NE(access((other.data_dir() + "/cairn.json").c_str(), F_OK), 0);
  PutObject(seg_key, seg);

  // A damaged metadata object.
  const std::string meta_key = "fs/" + manifest["metadata"][0]["key"].get<std::string>();
  std::string meta = GetObject(meta_key);
  PutObject(meta_key, meta + "x");
  r = RunCairn({"snap", "restore", kUrl, "s1", other.data_dir()});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("damaged"), std::string::npos) << r.err;
  PutObject(meta_key, meta);

  // A damaged manifest.
  std::string text = GetObject(manifest_key);
  std::string bad = text;
  bad[bad.find("\"files\"") + 9] ^= 1;
  PutObject(manifest_key, bad);
  r = RunCairn({"snap", "restore", kUrl, "s1", other.data_dir()});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("damaged"), std::string::npos) << r.err;
  PutObject(manifest_key, text);

  // Intact again: the restore works.
  r = RunCairn({"snap", "restore", kUrl, "s1", other.data_dir()});
  EXPECT_TRUE(r.ok()) << r.Describe();
  // Bad names and URLs get clear errors.
  r = RunCairn({"snap", "restore", kUrl, "nope", src_->root() + "/x"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("no snapshot 'nope'"), std::string::npos) << r.err;
  r = RunCairn({"snap", "restore", "s3://", "s1", src_->root() + "/x"});
  EXPECT_FALSE(r.ok());
  r = RunCairn({"snap", "push", src_->mountpoint(), "missing"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("no snapshot named 'missing'"), std::string::npos) << r.err;
  ASSERT_TRUE(src_->Unmount().ok());
}

TEST_F(SnapshotTest, KillDuringCreateLeavesOnlyWholeSnapshots) {
  FormatAndMount();
  WriteTree("/data", 30);
  const auto expected = Walk(src_->Path("/data"));
  for (int round = 0; round < 3; ++round) {
    pid_t pid = fork();
    if (pid == 0) {
      int null_fd = open("/dev/null", O_WRONLY);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
      for (int i = 0;; ++i) {
        std::string name = "r" + std::to_string(round) + "-" + std::to_string(i);
        pid_t child = fork();
        if (child == 0) {
          execl(CAIRN_BIN, CAIRN_BIN, "snap", "create", src_->mountpoint().c_str(), name.c_str(),
                nullptr);
          _exit(127);
        }
        int st = 0;
        waitpid(child, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(0);
      }
    }
    ASSERT_GT(pid, 0);
    // Kill once at least one more snapshot is whole (slow under sanitizers), while the loop goes
    // on creating the next ones.
    auto whole = [&] {
      CommandResult r =
          RunCairn({"snap", "list", src_->mountpoint(), "--json"}, milliseconds(30000));
      auto j = json::parse(r.out, nullptr, false);
      return r.ok() && j.is_object() ? j["snapshots"].size() : size_t{0};
    };
    const size_t before = whole();
    for (int i = 0; i < 600 && whole() <= before; ++i)
      std::this_thread::sleep_for(milliseconds(50));
    std::this_thread::sleep_for(milliseconds(37 * round));
    ASSERT_TRUE(src_->KillDaemon());
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(src_->ForceUnmount());
    CommandResult fsck = src_->Fsck();
    EXPECT_TRUE(fsck.ok()) << fsck.Describe();
    ASSERT_TRUE(src_->Mount().ok());
    // Every snapshot that exists is whole; nothing half-made is left in the data directory.
    json list = Cairn({"snap", "list", src_->mountpoint(), "--json"});
    EXPECT_GT(list["snapshots"].size(), 0u);
    for (const auto& snap : list["snapshots"]) {
      const std::string name = snap["name"];
      ExpectSameTree(expected, Walk(src_->Path("/.snapshots/" + name + "/data")));
    }
    // (LAST: the metadata store's record of the largest snapshot id taken.)
    auto dirs = ListDir(src_->data_dir() + "/snapshots");
    ASSERT_TRUE(dirs.has_value());
    std::erase(*dirs, "LAST");
    EXPECT_EQ(dirs->size(), list["snapshots"].size());
  }
  ASSERT_TRUE(src_->Unmount().ok());
}

}  // namespace
}  // namespace cairn::integration
