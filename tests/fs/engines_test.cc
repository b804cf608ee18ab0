// FileSystem over every metadata store (the in-memory one, RocksDB, PostgreSQL), handed in as
// engines: the namespace operations, the data path and snapshots behave the same on each.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "fs/cluster.h"
#include "fs/file_system.h"
#include "fs/options.h"
#include "kv/memory_kv_store.h"
#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "pg_server.h"

namespace cairn::fs {
namespace {

constexpr uint64_t kRoot = meta::kRootIno;

testing::PgServer* Pg() { return testing::SharedPgServer(); }

// Each store: its engines over a formatted data directory (whose own RocksDB metadata the
// in-memory and PostgreSQL stores stand in for: they get a root directory of their own).
struct MemoryStore {
  Result<Engines> Make(const std::string&) {
    Engines e;
    e.kv = std::make_unique<kv::MemoryKvStore>();
    kv::WriteBatch b;
    StageRootDirectory(&b);
    CAIRN_RETURN_IF_ERROR(e.kv->Write(b, true));
    return e;
  }
};
struct RocksStore {
  Result<Engines> Make(const std::string& dir) {
    Engines e;
    kv::RocksDbOptions o;
    o.snapshot_dir = dir + "/snapshots";
    CAIRN_ASSIGN_OR_RETURN(e.kv, kv::RocksDbKvStore::Open(dir + "/meta", o));
    return e;
  }
};
struct PgStore {
  Result<Engines> Make(const std::string&) {
    if (Pg() == nullptr) return Err(Code::kUnavailable, "no PostgreSQL");
    const std::string db = "fs" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    std::string why;
    if (!Pg()->CreateDatabase(db, &why)) return Err(Code::kIo, why);
    kv::PgOptions o;
    o.create_if_missing = true;
    Engines e;
    CAIRN_ASSIGN_OR_RETURN(e.kv, kv::PgKvStore::Open(Pg()->ConnInfo(db), o));
    kv::WriteBatch b;
    StageRootDirectory(&b);
    CAIRN_RETURN_IF_ERROR(e.kv->Write(b, true));
    return e;
  }
  static inline int counter = 0;
};

template <typename Store>
class EnginesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-engines-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    FormatOptions fo;
    fo.segment_size = 1 << 20;
    ASSERT_TRUE(Format(dir_, fo).ok());
    auto engines = store_.Make(dir_);
    ASSERT_TRUE(engines) << engines.error().ToString();
    MountOptions mo;
    mo.compaction_interval_s = 0;
    auto fs = FileSystem::OpenWith(dir_, std::move(*engines), mo);
    ASSERT_TRUE(fs) << fs.error().ToString();
    fs_ = std::move(*fs);
  }
  void TearDown() override {
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }
  uint64_t Ino(uint64_t parent, const std::string& name) {
    auto st = fs_->Lookup(parent, name);
    return st ? st->st_ino : 0;
  }
  uint64_t Put(uint64_t parent, const std::string& name, const std::string& data) {
    auto st = fs_->Create(ctx_, parent, name, 0644, O_WRONLY);
    EXPECT_TRUE(st) << st.error().ToString();
    if (!st) return 0;
    if (!data.empty()) {
      EXPECT_TRUE(fs_->Write(st->st_ino, 0, data.data(), data.size()));
    }
    EXPECT_TRUE(fs_->Release(st->st_ino).ok());
    return st->st_ino;
  }
  std::string Get(uint64_t ino) {
    auto st = fs_->GetAttr(ino);
    if (!st) return "<" + st.error().ToString() + ">";
    std::string out(static_cast<size_t>(st->st_size), '\0');
    auto n = fs_->Read(ino, 0, out.size(), out.data());
    if (!n) return "<" + n.error().ToString() + ">";
    out.resize(*n);
    return out;
  }
  std::set<std::string> Names(uint64_t dir) {
    std::set<std::string> out;
    auto h = fs_->OpenDir(dir);
    if (!h) return out;
    for (const auto& e : **fs_->DirHandle(*h)) {
      if (e.name != "." && e.name != "..") out.insert(e.name);
    }
    fs_->ReleaseDir(*h);
    return out;
  }

  std::string dir_;
  Store store_;
  std::unique_ptr<FileSystem> fs_;
  Context ctx_{0, 0};
};

using Stores = ::testing::Types<MemoryStore, RocksStore, PgStore>;
TYPED_TEST_SUITE(EnginesTest, Stores);

TYPED_TEST(EnginesTest, NamespaceOperationsAndTheDataPath) {
  auto& fs = *this->fs_;
  auto d = fs.Mkdir(this->ctx_, kRoot, "d", 0755);
  ASSERT_TRUE(d);
  auto e = fs.Mkdir(this->ctx_, kRoot, "e", 0700);
  ASSERT_TRUE(e);
  const std::string big(300000, 'x');
  const uint64_t small = this->Put(d->st_ino, "small", "inline bytes");
  const uint64_t large = this->Put(d->st_ino, "large", big);
  EXPECT_EQ(this->Get(small), "inline bytes");
  EXPECT_EQ(this->Get(large), big);
  EXPECT_EQ(fs.Create(this->ctx_, d->st_ino, "small", 0644, O_WRONLY).error().code(),
            Code::kExists);
  ASSERT_TRUE(fs.Symlink(this->ctx_, d->st_ino, "link", "small"));
  EXPECT_EQ(*fs.Readlink(this->Ino(d->st_ino, "link")), "small");
  ASSERT_TRUE(fs.Link(small, e->st_ino, "hard"));
  EXPECT_EQ(fs.GetAttr(small)->st_nlink, 2u);
  // Rename across directories, over an existing name, and an exchange.
  ASSERT_TRUE(fs.Rename(d->st_ino, "large", e->st_ino, "moved", 0).ok());
  EXPECT_EQ(this->Get(this->Ino(e->st_ino, "moved")), big);
  ASSERT_TRUE(fs.Rename(e->st_ino, "hard", e->st_ino, "moved", 0).ok());
  EXPECT_EQ(this->Get(this->Ino(e->st_ino, "moved")), "inline bytes");
  ASSERT_TRUE(fs.Rename(d->st_ino, "link", e->st_ino, "moved", RENAME_EXCHANGE).ok());
  EXPECT_EQ(this->Names(d->st_ino), (std::set<std::string>{"link", "small"}));
  EXPECT_EQ(this->Names(e->st_ino), (std::set<std::string>{"moved"}));
  // Extended attributes: none known on a new inode, then set, listed, removed.
  EXPECT_EQ(fs.GetXattr(small, "user.a").error().code(), Code::kNoData);
  ASSERT_TRUE(fs.SetXattr(small, "user.a", "1", 0).ok());
  EXPECT_EQ(*fs.GetXattr(small, "user.a"), "1");
  EXPECT_EQ(*fs.ListXattr(small), std::vector<std::string>{"user.a"});
  ASSERT_TRUE(fs.RemoveXattr(small, "user.a").ok());
  EXPECT_EQ(fs.GetXattr(small, "user.a").error().code(), Code::kNoData);
  // Truncate, overwrite, unlink, rmdir of a non-empty and an empty directory.
  SetAttrRequest trunc;
  trunc.size = 4;
  ASSERT_TRUE(fs.SetAttr(small, trunc));
  EXPECT_EQ(this->Get(small), "inli");
  ASSERT_TRUE(fs.Write(small, 2, "NE", 2));
  EXPECT_EQ(this->Get(small), "inNE");
  EXPECT_EQ(fs.Rmdir(kRoot, "d").code(), Code::kNotEmpty);
  ASSERT_TRUE(fs.Unlink(d->st_ino, "small").ok());
  ASSERT_TRUE(fs.Unlink(d->st_ino, "link").ok());
  ASSERT_TRUE(fs.Rmdir(kRoot, "d").ok());
  EXPECT_EQ(fs.Lookup(kRoot, "d").error().code(), Code::kNotFound);
  EXPECT_EQ(this->Names(kRoot), std::set<std::string>{"e"});
}

TYPED_TEST(EnginesTest, SnapshotsFreezeTheTreeOnEveryStore) {
  auto& fs = *this->fs_;
  const std::string big(200000, 'b');
  const uint64_t a = this->Put(kRoot, "a", "version 1");
  this->Put(kRoot, "big", big);
  ASSERT_TRUE(fs.CreateSnapshot("s1"));
  ASSERT_TRUE(fs.Write(a, 0, "VERSION 2", 9));
  ASSERT_TRUE(fs.Unlink(kRoot, "big").ok());
  this->Put(kRoot, "new", "n");
  auto root = fs.Lookup(kSnapDirIno, "s1");
  ASSERT_TRUE(root) << root.error().ToString();
  EXPECT_EQ(this->Get(this->Ino(root->st_ino, "a")), "version 1");
  EXPECT_EQ(this->Get(this->Ino(root->st_ino, "big")), big);
  EXPECT_EQ(fs.Lookup(root->st_ino, "new").error().code(), Code::kNotFound);
  EXPECT_EQ(this->Get(a), "VERSION 2");
  auto list = fs.ListSnapshots();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].files, 2u);
  EXPECT_EQ(list[0].bytes, big.size() + 9);
  // The snapshot keeps the big file's segment through compaction; its deletion lets it go.
  ASSERT_TRUE(fs.CompactOnce(1.0));
  EXPECT_EQ(this->Get(this->Ino(root->st_ino, "big")), big);
  ASSERT_TRUE(fs.DeleteSnapshot("s1").ok());
  EXPECT_FALSE(fs.Lookup(kSnapDirIno, "s1"));
  EXPECT_TRUE(fs.ListSnapshots().empty());
}

}  // namespace
}  // namespace cairn::fs
