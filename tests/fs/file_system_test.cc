// FileSystem over a real data directory (RocksDB and segment files), without FUSE.
#include "fs/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "fs/cluster.h"
#include "fs/inode_cache.h"
#include "fs/options.h"
#include "fs/restore.h"
#include "kv/memory_kv_store.h"
#include "kv/rocksdb_kv_store.h"

namespace cairn::fs {
namespace {

constexpr uint64_t kRoot = meta::kRootIno;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-fs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    FormatOptions fo;
    fo.segment_size = 1 << 20;
    ASSERT_TRUE(Format(dir_, fo).ok());
    Open();
  }
  void TearDown() override {
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    fs_.reset();
    MountOptions mo;
    mo.compaction_interval_s = 0;
    auto f = FileSystem::Open(dir_, mo);
    ASSERT_TRUE(f) << f.error().ToString();
    fs_ = std::move(*f);
  }
  uint64_t CreateFile(uint64_t parent, const std::string& name, const std::string& data) {
    auto st = fs_->Create(ctx_, parent, name, 0644, O_WRONLY);
    EXPECT_TRUE(st) << st.error().ToString();
    if (!data.empty()) {
      auto n = fs_->Write(st->st_ino, 0, data.data(), data.size());
      EXPECT_TRUE(n) << n.error().ToString();
    }
    EXPECT_TRUE(fs_->Release(st->st_ino).ok());
    return st->st_ino;
  }
  std::string ReadAll(uint64_t ino) {
    auto st = fs_->GetAttr(ino);
    EXPECT_TRUE(st);
    std::string out(static_cast<size_t>(st->st_size), '\0');
    auto n = fs_->Read(ino, 0, out.size(), out.data());
    EXPECT_TRUE(n) << n.error().ToString();
    out.resize(n ? *n : 0);
    return out;
  }
  static std::string Random(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }
  uint64_t Ino(uint64_t parent, const std::string& name) {
    auto st = fs_->Lookup(parent, name);
    EXPECT_TRUE(st) << name;
    return st ? st->st_ino : 0;
  }

  std::string dir_;
  Context ctx_{0, 0};
  std::unique_ptr<FileSystem> fs_;
};

// The superblock's cluster section: what a node's cairn.json holds, and what the shared copy in
// the metadata leaves out.
TEST(Superblock, ClusterSectionRoundTripsAndIsCheckedWhenRead) {
  Superblock sb;
  sb.uuid = "0f0e0d0c-0b0a-4908-8706-050403020100";
  sb.cluster.meta = "host=127.0.0.1 port=5432 dbname=cairn";
  sb.cluster.ceph_conf = "/etc/ceph/ceph.conf";
  sb.cluster.ceph_user = "cairn";
  sb.cluster.pool = "nvme";
  sb.cluster.node = 3;
  auto node = ParseSuperblock(SuperblockJson(sb, true), "node", "/tmp/x");
  ASSERT_TRUE(node.has_value()) << node.error().ToString();
  EXPECT_EQ(node->uuid, sb.uuid);
  EXPECT_EQ(node->cluster.meta, sb.cluster.meta);
  EXPECT_EQ(node->cluster.ceph_conf, sb.cluster.ceph_conf);
  EXPECT_EQ(node->cluster.ceph_user, "cairn");
  EXPECT_EQ(node->cluster.pool, "nvme");
  EXPECT_EQ(node->cluster.node, 3u);
  auto shared = ParseSuperblock(SuperblockJson(sb, false), "shared", "/tmp/x");
  ASSERT_TRUE(shared.has_value());
  EXPECT_FALSE(shared->cluster.enabled());
  std::string damaged = SuperblockJson(sb, true);
  damaged.replace(damaged.find("\"node\": 3"), 9, "\"node\": 0");
  auto bad = ParseSuperblock(damaged, "node", "/tmp/x");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
  EXPECT_NE(bad.error().message().find("cluster section"), std::string::npos);
}

TEST_F(FileSystemTest, SmallFilesLiveInline) {
  uint64_t ino = CreateFile(kRoot, "tiny", "hello");
  EXPECT_EQ(ReadAll(ino), "hello");
  Stats s = fs_->GetStats();
  EXPECT_EQ(s.files, 1u);
  EXPECT_EQ(s.inline_files, 1u);
  EXPECT_EQ(s.space_used, 0u);  // no segment was needed
}

TEST_F(FileSystemTest, GrowingPastTheInlineLimitMovesDataToASegment) {
  uint64_t ino = CreateFile(kRoot, "f", std::string(3000, 'a'));
  std::string more = Random(10000, 1);
  ASSERT_TRUE(fs_->Write(ino, 2000, more.data(), more.size()));
  std::string want = std::string(2000, 'a') + more;
  EXPECT_EQ(ReadAll(ino), want);
  EXPECT_EQ(fs_->GetStats().inline_files, 0u);
  Open();
  EXPECT_EQ(ReadAll(Ino(kRoot, "f")), want);
}

TEST_F(FileSystemTest, OverwritesAndHolesReadBackExactly) {
  std::string data = Random(300000, 2);
  uint64_t ino = CreateFile(kRoot, "f", data);
  std::string patch = Random(5000, 3);
  ASSERT_TRUE(fs_->Write(ino, 100000, patch.data(), patch.size()));
  data.replace(100000, 5000, patch);
  // Write far past the end: the gap is a hole of zeros.
  ASSERT_TRUE(fs_->Write(ino, 1000000, "end", 3));
  data.resize(1000000, '\0');
  data += "end";
  EXPECT_EQ(ReadAll(ino), data);
  // Truncate into the middle of an extent, then extend again: the cut bytes stay zero.
  SetAttrRequest r;
  r.size = 150000;
  ASSERT_TRUE(fs_->SetAttr(ino, r));
  r.size = 200000;
  ASSERT_TRUE(fs_->SetAttr(ino, r));
  std::string want = data.substr(0, 150000) + std::string(50000, '\0');
  EXPECT_EQ(ReadAll(ino), want);
  Open();
  EXPECT_EQ(ReadAll(Ino(kRoot, "f")), want);
}

TEST_F(FileSystemTest, PunchHoleAndFallocate) {
  std::string data = Random(200000, 4);
  uint64_t ino = CreateFile(kRoot, "f", data);
  ASSERT_TRUE(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 70000).ok());
  std::fill(data.begin() + 1000, data.begin() + 71000, '\0');
  EXPECT_EQ(ReadAll(ino), data);
  ASSERT_TRUE(fs_->Fallocate(ino, 0, 0, 300000).ok());
  EXPECT_EQ(fs_->GetAttr(ino)->st_size, 300000);
  EXPECT_EQ(fs_->Fallocate(ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096).code(), Code::kNotSupported);
}

TEST_F(FileSystemTest, StBlocksCountWhatIsStored) {
  auto blocks = [&](uint64_t ino) { return fs_->GetAttr(ino)->st_blocks; };
  // Sparse: 4 KiB written at 1 MiB; the hole costs nothing.
  uint64_t sparse = CreateFile(kRoot, "sparse", "");
  std::string block = Random(4096, 7);
  ASSERT_TRUE(fs_->Write(sparse, 1 << 20, block.data(), block.size()));
  EXPECT_EQ(fs_->GetAttr(sparse)->st_size, (1 << 20) + 4096);
  EXPECT_EQ(blocks(sparse), 8);
  // Inline: the bytes in the record.
  uint64_t tiny = CreateFile(kRoot, "tiny", "hello");
  EXPECT_EQ(blocks(tiny), 1);
  // A hole punched, a truncation.
  uint64_t full = CreateFile(kRoot, "full", Random(100000, 8));
  EXPECT_EQ(blocks(full), (100000 + 511) / 512);
  ASSERT_TRUE(fs_->Fallocate(full, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 51200).ok());
  EXPECT_EQ(blocks(full), (100000 - 51200 + 511) / 512);
  SetAttrRequest shrink;
  shrink.size = 60000;
  ASSERT_TRUE(fs_->SetAttr(full, shrink));
  EXPECT_EQ(blocks(full), (60000 - 51200 + 511) / 512);
  shrink.size = 0;
  ASSERT_TRUE(fs_->SetAttr(full, shrink));
  EXPECT_EQ(blocks(full), 0);
  // The same after a reopen (stored bytes are in the record).
  Open();
  EXPECT_EQ(blocks(sparse), 8);
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
}

TEST_F(FileSystemTest, FallocateReservesOrSaysItCannot) {
  auto blocks = [&](uint64_t ino) { return fs_->GetAttr(ino)->st_blocks; };
  uint64_t ino = CreateFile(kRoot, "f", "");
  ASSERT_TRUE(fs_->Fallocate(ino, 0, 0, 3 << 20).ok());
  EXPECT_EQ(fs_->GetAttr(ino)->st_size, 3 << 20);
  EXPECT_EQ(blocks(ino), (3 << 20) / 512);
  EXPECT_EQ(ReadAll(ino), std::string(3 << 20, '\0'));
  // Data already there stays; only holes are filled.
  std::string data = Random(10000, 9);
  uint64_t sparse = CreateFile(kRoot, "sparse", "");
  ASSERT_TRUE(fs_->Write(sparse, 20000, data.data(), data.size()));
  ASSERT_TRUE(fs_->Fallocate(sparse, FALLOC_FL_KEEP_SIZE, 0, 1 << 20).ok());
  EXPECT_EQ(fs_->GetAttr(sparse)->st_size, 30000);  // KEEP_SIZE: reserved only inside the file
  EXPECT_EQ(blocks(sparse), (30000 + 511) / 512);
  std::string expected(20000, '\0');
  expected += data;
  EXPECT_EQ(ReadAll(sparse), expected);
  // An inline file that grows past what a record holds moves to a segment.
  uint64_t small = CreateFile(kRoot, "small", "abc");
  ASSERT_TRUE(fs_->Fallocate(small, 0, 0, 100000).ok());
  std::string grown = "abc";
  grown.resize(100000, '\0');
  EXPECT_EQ(ReadAll(small), grown);
  EXPECT_EQ(blocks(small), (100000 + 511) / 512);
  // More than the disk has: ENOSPC, and the file is unchanged.
  uint64_t huge = CreateFile(kRoot, "huge", "");
  EXPECT_EQ(fs_->Fallocate(huge, 0, 0, uint64_t{1} << 50).code(), Code::kNoSpace);
  EXPECT_EQ(fs_->GetAttr(huge)->st_size, 0);
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
}

// A mount reads the totals instead of counting; they survive a reopen and match what fsck counts.
TEST_F(FileSystemTest, TotalsArePersistedAndAnOldFileSystemIsCountedOnce) {
  ASSERT_TRUE(fs_->Mkdir(ctx_, kRoot, "d", 0755));
  const uint64_t d = Ino(kRoot, "d");
  std::vector<uint64_t> inos;
  for (int i = 0; i < 20; ++i)
    inos.push_back(CreateFile(d, "f" + std::to_string(i), Random(i * 3000, i)));
  ASSERT_TRUE(fs_->Symlink(ctx_, d, "link", "f1"));
  ASSERT_TRUE(fs_->Unlink(d, "f3").ok());
  fs_->Forget(inos[3], 1);  // the kernel's reference from create: now it goes
  const Stats before = fs_->GetStats();
  auto same = [&](const Stats& s) {
    EXPECT_EQ(s.files, before.files);
    EXPECT_EQ(s.directories, before.directories);
    EXPECT_EQ(s.symlinks, before.symlinks);
    EXPECT_EQ(s.bytes, before.bytes);
    EXPECT_EQ(s.inline_files, before.inline_files);
    EXPECT_EQ(s.inline_bytes, before.inline_bytes);
    EXPECT_EQ(s.space_live, before.space_live);
  };
  EXPECT_EQ(before.files, 19u);
  EXPECT_EQ(before.directories, 2u);
  Open();
  same(fs_->GetStats());
  const auto blocks = fs_->GetAttr(Ino(d, "f10"))->st_blocks;
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();

  // Turn it into a file system from before the totals: no totals, no live bytes, version 1
  // inode records. The next mount counts once and writes them.
  {
    auto kv = kv::RocksDbKvStore::Open(dir_ + "/meta", {});
    ASSERT_TRUE(kv);
    kv::WriteBatch batch;
    auto counters = kv::ScanRange(**kv, "M", "N");
    auto lives = kv::ScanRange(**kv, "L", "M");
    auto inodes = kv::ScanRange(**kv, "I", "J");
    ASSERT_TRUE(counters && lives && inodes);
    for (auto& [key, value] : *counters) {
      if (key.starts_with("Mtotal.") || key == "Maccounting") batch.Delete(key);
    }
    for (auto& [key, value] : *lives) batch.Delete(key);
    for (auto& [key, value] : *inodes) {
      std::string v1 = value;
      v1[0] = 1;
      v1.erase(58, 8);  // version, flags, 4 x u32, 3 x u64, 3 x (u64 + u32): then `stored`
      batch.Put(key, v1);
    }
    ASSERT_TRUE((*kv)->Write(batch, true).ok());
  }
  report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  Open();
  same(fs_->GetStats());
  EXPECT_EQ(fs_->GetAttr(Ino(d, "f10"))->st_blocks, blocks);
  fs_.reset();
  report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  Open();
  same(fs_->GetStats());
}

// The kernel may know millions of inodes: their reference counts stay, their states are bounded;
// an unlinked inode stays in memory until it is reclaimed.
TEST(InodeCacheTest, StatesAreBoundedAndUnlinkedInodesStay) {
  kv::MemoryKvStore kv;
  meta::MetaStore meta(&kv);
  kv::WriteBatch batch;
  for (uint64_t ino = 2; ino < 20002; ++ino) {
    meta::Inode inode;
    inode.ino = ino;
    inode.mode = S_IFREG | 0644;
    inode.nlink = ino == 7 ? 0 : 1;
    batch.Put(meta::InodeKey(ino), meta::EncodeInode(inode));
  }
  ASSERT_TRUE(kv.Write(batch, false).ok());
  InodeCache cache(&meta, 64 * 16);  // 16 per shard
  for (uint64_t ino = 2; ino < 20002; ++ino) ASSERT_TRUE(cache.Get(ino, 1));
  EXPECT_EQ(cache.referenced(), 20000u);
  EXPECT_LT(cache.size(), 64u * 16 * 2);
  EXPECT_NE(cache.Peek(7), nullptr);
  auto held = cache.Get(9);
  ASSERT_TRUE(held);
  for (uint64_t ino = 20002; ino < 40002; ++ino) {
    meta::Inode inode;
    inode.ino = ino;
    inode.mode = S_IFREG | 0644;
    inode.nlink = 1;
    cache.Insert(inode, 0);
  }
  EXPECT_EQ(cache.Peek(9), *held);  // held: never dropped
  EXPECT_NE(cache.Peek(7), nullptr);
  EXPECT_TRUE(cache.InUse(5));
  EXPECT_TRUE(cache.Drop(5, 1, 0));
  EXPECT_FALSE(cache.InUse(5));
  // A dropped state comes back from the metadata, the same record.
  auto again = cache.Get(5);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->inode.ino, 5u);
}

TEST_F(FileSystemTest, NamespaceErrors) {
  ASSERT_TRUE(fs_->Mkdir(ctx_, kRoot, "d", 0755));
  uint64_t d = Ino(kRoot, "d");
  CreateFile(d, "f", "x");
  EXPECT_EQ(fs_->Mkdir(ctx_, kRoot, "d", 0755).error().code(), Code::kExists);
  EXPECT_EQ(fs_->Rmdir(kRoot, "d").code(), Code::kNotEmpty);
  EXPECT_EQ(fs_->Unlink(kRoot, "d").code(), Code::kIsDir);
  EXPECT_EQ(fs_->Rmdir(d, "f").code(), Code::kNotDir);
  EXPECT_EQ(fs_->Lookup(kRoot, "nope").error().code(), Code::kNotFound);
  EXPECT_EQ(fs_->Mkdir(ctx_, kRoot, std::string(256, 'n'), 0755).error().code(),
            Code::kNameTooLong);
  EXPECT_TRUE(fs_->Mkdir(ctx_, kRoot, std::string(255, 'n'), 0755));
  EXPECT_EQ(fs_->Link(d, kRoot, "dlink").error().code(), Code::kPermission);
  EXPECT_EQ(fs_->GetAttr(kRoot)->st_nlink, 4u);  // ".", "..", d, nnn...
}

TEST_F(FileSystemTest, RenameCases) {
  ASSERT_TRUE(fs_->Mkdir(ctx_, kRoot, "a", 0755));
  ASSERT_TRUE(fs_->Mkdir(ctx_, kRoot, "b", 0755));
  uint64_t a = Ino(kRoot, "a"), b = Ino(kRoot, "b");
  ASSERT_TRUE(fs_->Mkdir(ctx_, a, "sub", 0755));
  uint64_t sub = Ino(a, "sub");
  uint64_t f1 = CreateFile(kRoot, "f1", "one");
  CreateFile(kRoot, "f2", "two");

  // Plain move, over an existing file, NOREPLACE.
  ASSERT_TRUE(fs_->Rename(kRoot, "f1", b, "g", 0).ok());
  EXPECT_EQ(Ino(b, "g"), f1);
  EXPECT_EQ(fs_->Rename(kRoot, "f2", b, "g", RENAME_NOREPLACE).code(), Code::kExists);
  ASSERT_TRUE(fs_->Rename(kRoot, "f2", b, "g", 0).ok());
  EXPECT_EQ(ReadAll(Ino(b, "g")), "two");
  // Directory cases.
  EXPECT_EQ(fs_->Rename(kRoot, "a", sub, "x", 0).code(), Code::kInvalid);  // into itself
  EXPECT_EQ(fs_->Rename(kRoot, "a", b, "g", 0).code(), Code::kNotDir);     // dir over file
  EXPECT_EQ(fs_->Rename(b, "g", a, "sub", 0).code(), Code::kIsDir);        // file over dir
  ASSERT_TRUE(fs_->Mkdir(ctx_, b, "empty", 0755));
  ASSERT_TRUE(fs_->Rename(a, "sub", b, "empty", 0).ok());  // over empty dir
  EXPECT_EQ(Ino(b, "empty"), sub);
  EXPECT_EQ(fs_->GetAttr(a)->st_nlink, 2u);
  EXPECT_EQ(fs_->GetAttr(b)->st_nlink, 3u);
  EXPECT_EQ(fs_->Rename(kRoot, "a", kRoot, "b", 0).code(), Code::kNotEmpty);  // b holds g
  ASSERT_TRUE(fs_->Mkdir(ctx_, a, "keep", 0755));
  EXPECT_EQ(fs_->Rename(kRoot, "b", kRoot, "a", 0).code(), Code::kNotEmpty);
  // Exchange a file and a directory across parents.
  ASSERT_TRUE(fs_->Rename(b, "g", a, "keep", RENAME_EXCHANGE).ok());
  EXPECT_TRUE(S_ISDIR(fs_->Lookup(b, "g")->st_mode));
  EXPECT_TRUE(S_ISREG(fs_->Lookup(a, "keep")->st_mode));
  EXPECT_EQ(fs_->GetAttr(a)->st_nlink, 2u);
  EXPECT_EQ(fs_->GetAttr(b)->st_nlink, 4u);
  EXPECT_EQ(fs_->Rename(kRoot, "a", kRoot, "none", RENAME_EXCHANGE).code(), Code::kNotFound);
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
}

TEST_F(FileSystemTest, HardLinksShareData) {
  uint64_t ino = CreateFile(kRoot, "a", Random(20000, 5));
  ASSERT_TRUE(fs_->Link(ino, kRoot, "b"));
  EXPECT_EQ(fs_->GetAttr(ino)->st_nlink, 2u);
  ASSERT_TRUE(fs_->Unlink(kRoot, "a").ok());
  EXPECT_EQ(ReadAll(Ino(kRoot, "b")), Random(20000, 5));
  EXPECT_EQ(fs_->GetAttr(ino)->st_nlink, 1u);
}

TEST_F(FileSystemTest, UnlinkedFileLivesUntilTheKernelForgetsIt) {
  uint64_t ino = CreateFile(kRoot, "f", Random(50000, 6));  // one lookup held by "the kernel"
  ASSERT_TRUE(fs_->Unlink(kRoot, "f").ok());
  EXPECT_EQ(ReadAll(ino), Random(50000, 6));
  ASSERT_TRUE(fs_->Write(ino, 0, "new", 3));
  EXPECT_EQ(fs_->GetStats().files, 1u);
  fs_->Forget(ino, 1);
  EXPECT_EQ(fs_->GetStats().files, 0u);
  EXPECT_EQ(fs_->GetStats().space_live, 0u);
  EXPECT_FALSE(fs_->GetAttr(ino));
}

TEST_F(FileSystemTest, OrphansOfACrashAreReclaimedAtMount) {
  fs_.reset();
  pid_t pid = ::fork();
  if (pid == 0) {
    auto f = FileSystem::Open(dir_, {});
    if (!f) ::_exit(1);
    auto st = (*f)->Create(ctx_, kRoot, "f", 0644, 0);
    std::string d = Random(100000, 7);
    if (!st || !(*f)->Write(st->st_ino, 0, d.data(), d.size())) ::_exit(2);
    if (!(*f)->Unlink(kRoot, "f").ok() || !(*f)->FsyncDir(kRoot).ok()) ::_exit(3);
    ::_exit(0);  // like kill -9: no shutdown, the file was still open
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto before = Fsck(dir_);
  ASSERT_TRUE(before);
  EXPECT_TRUE(before->problems.empty());
  EXPECT_FALSE(before->notes.empty());
  Open();
  EXPECT_EQ(fs_->GetStats().files, 0u);
  EXPECT_EQ(fs_->GetStats().space_live, 0u);
}

TEST_F(FileSystemTest, Xattrs) {
  uint64_t ino = CreateFile(kRoot, "f", "");
  ASSERT_TRUE(fs_->SetXattr(ino, "user.a", "1", 0).ok());
  EXPECT_EQ(fs_->SetXattr(ino, "user.a", "2", XATTR_CREATE).code(), Code::kExists);
  EXPECT_EQ(fs_->SetXattr(ino, "user.b", "2", XATTR_REPLACE).code(), Code::kNoData);
  ASSERT_TRUE(fs_->SetXattr(ino, "user.b", std::string("\0bin", 4), 0).ok());
  EXPECT_EQ(*fs_->GetXattr(ino, "user.b"), std::string("\0bin", 4));
  EXPECT_EQ(*fs_->ListXattr(ino), (std::vector<std::string>{"user.a", "user.b"}));
  ASSERT_TRUE(fs_->RemoveXattr(ino, "user.a").ok());
  EXPECT_EQ(fs_->GetXattr(ino, "user.a").error().code(), Code::kNoData);
  EXPECT_EQ(fs_->RemoveXattr(ino, "user.a").code(), Code::kNoData);
}

TEST_F(FileSystemTest, ReaddirSnapshotsTheListing) {
  for (int i = 0; i < 5000; ++i) CreateFile(kRoot, "f" + std::to_string(i), "");
  auto h = fs_->OpenDir(kRoot);
  ASSERT_TRUE(h);
  auto entries = fs_->DirHandle(*h);
  ASSERT_TRUE(entries);
  EXPECT_EQ((*entries)->size(), 5002u);
  EXPECT_EQ((**entries)[0].name, ".");
  EXPECT_EQ((**entries)[1].name, "..");
  fs_->ReleaseDir(*h);
}

TEST_F(FileSystemTest, CompactionKeepsLiveDataAndFreesSpace) {
  std::vector<uint64_t> inos;
  for (int i = 0; i < 60; ++i)
    inos.push_back(CreateFile(kRoot, "f" + std::to_string(i), Random(50000, 100 + i)));
  for (int i = 0; i < 60; i += 2) ASSERT_TRUE(fs_->Unlink(kRoot, "f" + std::to_string(i)).ok());
  for (int i = 0; i < 60; i += 2) fs_->Forget(inos[i], 1);
  Stats before = fs_->GetStats();
  auto n = fs_->CompactOnce(0.9);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_GT(*n, 0u);
  Stats after = fs_->GetStats();
  EXPECT_LT(after.space_used, before.space_used);
  EXPECT_EQ(after.space_live, before.space_live);
  for (int i = 1; i < 60; i += 2) EXPECT_EQ(ReadAll(inos[i]), Random(50000, 100 + i)) << i;
  Open();
  for (int i = 1; i < 60; i += 2)
    EXPECT_EQ(ReadAll(Ino(kRoot, "f" + std::to_string(i))), Random(50000, 100 + i));
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty());
}

TEST_F(FileSystemTest, SecondOpenerIsRefused) {
  auto second = FileSystem::Open(dir_, {});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kBusy);
}

TEST_F(FileSystemTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 8, kFiles = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFiles; ++i) {
        std::string name = "t" + std::to_string(t) + "_" + std::to_string(i);
        std::string data = Random(1000 + 7919 * i % 90000, t * 1000 + i);
        auto st = fs_->Create(ctx_, kRoot, name, 0644, 0);
        if (!st || !fs_->Write(st->st_ino, 0, data.data(), data.size())) {
          ++failures;
          continue;
        }
        std::string back(data.size(), '\0');
        auto n = fs_->Read(st->st_ino, 0, back.size(), back.data());
        if (!n || back != data) ++failures;
        (void)fs_->Release(st->st_ino);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fs_->GetStats().files, static_cast<uint64_t>(kThreads * kFiles));
}

// Writes of one file append in parallel and commit one at a time; compaction runs meanwhile on
// 1 MiB segments, so it meets segments whose blobs a write has appended but not yet committed.
TEST_F(FileSystemTest, ParallelWritesToOneFileSurviveCompaction) {
  constexpr int kThreads = 8, kRounds = 12;
  constexpr size_t kRange = 192 * 1024;  // each thread owns one range of the file
  const uint64_t ino = CreateFile(kRoot, "shared", "");
  auto open = fs_->Open(ino, O_WRONLY);
  ASSERT_TRUE(open.ok());
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread compactor([&] {
    while (!done.load()) {
      if (!fs_->CompactOnce(0.9)) ++failures;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string data = Random(kRange, t * 100 + round);
        // Two halves in two writes, the second first: overwrites, out of order.
        const size_t half = kRange / 2;
        const uint64_t base = t * kRange;
        if (!fs_->Write(ino, base + half, data.data() + half, half)) ++failures;
        if (!fs_->Write(ino, base, data.data(), half)) ++failures;
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  compactor.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(fs_->Release(ino).ok());
  std::string expected;
  for (int t = 0; t < kThreads; ++t) expected += Random(kRange, t * 100 + kRounds - 1);
  EXPECT_TRUE(ReadAll(ino) == expected);
  auto n = fs_->CompactOnce(0.9);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_TRUE(ReadAll(ino) == expected);
  Open();
  EXPECT_TRUE(ReadAll(Ino(kRoot, "shared")) == expected);
  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->problems.empty());
}

// Snapshots: a view shows the tree as it was; pins keep its segments through deletes and
// compaction until the snapshot goes; every change inside it is refused.
TEST_F(FileSystemTest, SnapshotPinsSegmentsAndStaysFrozen) {
  const std::string big = Random(300000, 1);
  uint64_t ino = CreateFile(kRoot, "big", big);
  CreateFile(kRoot, "small", "tiny");
  auto info = fs_->CreateSnapshot("s1");
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->files, 2u);
  EXPECT_EQ(info->bytes, big.size() + 4);
  EXPECT_EQ(fs_->CreateSnapshot("s1").error().code(), Code::kExists);
  EXPECT_FALSE(fs_->CreateSnapshot(".x"));

  auto dir = fs_->Lookup(kRoot, kSnapDirName);
  ASSERT_TRUE(dir);
  auto root = fs_->Lookup(dir->st_ino, "s1");
  ASSERT_TRUE(root);
  auto snap_big = fs_->Lookup(root->st_ino, "big");
  ASSERT_TRUE(snap_big);
  EXPECT_TRUE(IsSnapIno(snap_big->st_ino));

  // The live file goes and compaction runs: the view still reads every byte.
  ASSERT_TRUE(fs_->Unlink(kRoot, "big").ok());
  fs_->Forget(ino, 1);
  ASSERT_TRUE(fs_->CompactOnce(1.0));
  EXPECT_EQ(ReadAll(snap_big->st_ino), big);
  const uint64_t pinned_space = fs_->GetStats().space_used;
  EXPECT_GE(pinned_space, big.size());

  // Read-only, and not listed in the root.
  EXPECT_EQ(fs_->Write(snap_big->st_ino, 0, "x", 1).error().code(), Code::kReadOnly);
  EXPECT_EQ(fs_->Open(snap_big->st_ino, O_RDWR).code(), Code::kReadOnly);
  EXPECT_EQ(fs_->Mkdir(ctx_, root->st_ino, "d", 0755).error().code(), Code::kReadOnly);
  EXPECT_EQ(fs_->Unlink(root->st_ino, "small").code(), Code::kReadOnly);
  EXPECT_EQ(fs_->Mkdir(ctx_, kRoot, kSnapDirName, 0755).error().code(), Code::kExists);
  auto h = fs_->OpenDir(kRoot);
  ASSERT_TRUE(h);
  for (const auto& e : **fs_->DirHandle(*h)) EXPECT_NE(e.name, kSnapDirName);
  fs_->ReleaseDir(*h);

  // It survives a reopen; deleting it lets compaction reclaim the space.
  Open();
  root = fs_->Lookup(kSnapDirIno, "s1");
  ASSERT_TRUE(root);
  snap_big = fs_->Lookup(root->st_ino, "big");
  ASSERT_TRUE(snap_big);
  EXPECT_EQ(ReadAll(snap_big->st_ino), big);
  const uint64_t old_root = root->st_ino;
  ASSERT_TRUE(fs_->DeleteSnapshot("s1").ok());
  EXPECT_FALSE(fs_->Lookup(kSnapDirIno, "s1"));
  // A new snapshot never reuses a deleted one's inode numbers (the kernel may still cache them).
  ASSERT_TRUE(fs_->CreateSnapshot("s1"));
  auto new_root = fs_->Lookup(kSnapDirIno, "s1");
  ASSERT_TRUE(new_root);
  EXPECT_NE(new_root->st_ino, old_root);
  ASSERT_TRUE(fs_->DeleteSnapshot("s1").ok());
  ASSERT_TRUE(fs_->CompactOnce(1.0));
  EXPECT_LT(fs_->GetStats().space_used, pinned_space);
  EXPECT_TRUE(fs_->ListSnapshots().empty());
}

// Push to the embedded object store, restore into a new directory, and read it all back; the
// restored file system reads its source's segments and writes its own.
TEST_F(FileSystemTest, PushAndRestoreThroughALocalObjectStore) {
  const std::string a = Random(200000, 2), b = Random(90000, 3);
  CreateFile(kRoot, "a", a);
  auto sub = fs_->Mkdir(ctx_, kRoot, "sub", 0750);
  ASSERT_TRUE(sub);
  CreateFile(sub->st_ino, "b", b);
  ASSERT_TRUE(fs_->SetXattr(sub->st_ino, "user.k", "v", 0).ok());
  ASSERT_TRUE(fs_->CreateSnapshot("s1"));
  auto push = fs_->PushSnapshot("s1", "", {});
  ASSERT_TRUE(push) << push.error().ToString();
  EXPECT_GE(push->bytes_uploaded, a.size() + b.size());
  auto again = fs_->PushSnapshot("s1", "", {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->bytes_uploaded, 0u);

  const std::string url = fs_->superblock().tier.object_store;
  const std::string copy = dir_ + "-restored";
  std::filesystem::remove_all(copy);
  auto r = RestoreSnapshot(url, "s1", copy, {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->files, 2u);
  {
    MountOptions mo;
    mo.compaction_interval_s = 0;
    auto restored = FileSystem::Open(copy, mo);
    ASSERT_TRUE(restored) << restored.error().ToString();
    auto& fs2 = **restored;
    auto ra = fs2.Lookup(kRoot, "a");
    ASSERT_TRUE(ra);
    std::string back(a.size(), '\0');
    ASSERT_EQ(*fs2.Read(ra->st_ino, 0, back.size(), back.data()), a.size());
    EXPECT_EQ(back, a);
    auto rsub = fs2.Lookup(kRoot, "sub");
    ASSERT_TRUE(rsub);
    EXPECT_EQ(rsub->st_mode & 07777, 0750u);
    EXPECT_EQ(*fs2.GetXattr(rsub->st_ino, "user.k"), "v");
    EXPECT_EQ(fs2.superblock().restored_from, push->manifest_key);
    // Its own writes: a new file and an overwrite, under its own prefix.
    auto st = fs2.Create(ctx_, kRoot, "new", 0644, 0);
    ASSERT_TRUE(st);
    ASSERT_TRUE(fs2.Write(st->st_ino, 0, b.data(), b.size()));
    ASSERT_TRUE(fs2.Write(ra->st_ino, 0, "changed", 7));
    ASSERT_TRUE(fs2.Shutdown().ok());
  }
  // The source still reads its original bytes.
  auto la = fs_->Lookup(kRoot, "a");
  ASSERT_TRUE(la);
  EXPECT_EQ(ReadAll(la->st_ino), a);
  // A second restore into the same directory is refused; a missing snapshot is reported.
  EXPECT_EQ(RestoreSnapshot(url, "s1", copy, {}).error().code(), Code::kExists);
  EXPECT_EQ(RestoreSnapshot(url, "nope", copy + "2", {}).error().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(copy + "2/cairn.json"));
  std::filesystem::remove_all(copy);
  std::filesystem::remove_all(copy + "2");
}

}  // namespace
}  // namespace cairn::fs
