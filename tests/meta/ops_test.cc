// The namespace operations (meta/ops.h) over meta::StoreTxn, on every KvStore: the in-memory one,
// RocksDB and PostgreSQL. What the mount's tests check through the kernel, checked here on the
// records themselves: link counts, entries, orphans, and that a failed check stages nothing.
#include "meta/ops.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <optional>

#include "kv_factories.h"
#include "meta/meta_store.h"
#include "meta/store_txn.h"

namespace cairn::meta {
namespace {

constexpr uint64_t kRoot = kRootIno;

template <typename F>
class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Inode root;
    root.ino = kRoot;
    root.mode = S_IFDIR | 0755;
    root.nlink = 2;
    root.parent = kRoot;
    kv::WriteBatch b;
    b.Put(InodeKey(kRoot), EncodeInode(root));
    ASSERT_TRUE(kv->Write(b, true).ok());
    ASSERT_TRUE(inos.Load().ok());
  }

  // Runs op in a Txn of its own and commits it when op succeeds.
  template <typename Op>
  Status Run(Op&& op) {
    StoreTxn txn(kv.get(), &inos, /*node=*/7);
    Status st = op(txn);
    if (!st.ok()) return st;
    return txn.Commit(true);
  }
  Result<uint64_t> Make(uint64_t parent, std::string_view name, uint32_t mode,
                        std::string_view target = {}) {
    uint64_t ino = 0;
    Status st = Run([&](Txn& txn) -> Status {
      CAIRN_ASSIGN_OR_RETURN(Inode * inode, MakeNode(txn, parent, name, {mode, 1, 2, 0, target}));
      ino = inode->ino;
      return Status::Ok();
    });
    if (!st.ok()) return Err(st);
    return ino;
  }
  Status AddLink(uint64_t ino, uint64_t parent, std::string_view name) {
    return Run([&](Txn& txn) -> Status {
      auto inode = Link(txn, ino, parent, name);
      return inode ? Status::Ok() : inode.error();
    });
  }
  Status Remove(uint64_t parent, std::string_view name, bool dir) {
    return Run([&](Txn& txn) { return RemoveEntry(txn, parent, name, dir); });
  }
  Status Move(uint64_t parent, std::string_view name, uint64_t new_parent,
              std::string_view new_name, unsigned flags = 0) {
    return Run([&](Txn& txn) { return Rename(txn, {parent, name, new_parent, new_name, flags}); });
  }
  Inode Stored(uint64_t ino) {
    auto inode = store.GetInode(ino);
    EXPECT_TRUE(inode) << inode.error().ToString();
    return inode ? *inode : Inode{};
  }
  std::optional<uint64_t> Entry(uint64_t parent, std::string_view name) {
    auto d = store.GetDentry(parent, name);
    if (!d) return std::nullopt;
    return d->ino;
  }
  bool Orphan(uint64_t ino) { return kv->Get(OrphanKey(ino)).has_value(); }

  F factory;
  std::unique_ptr<kv::KvStore> kv = factory.Make();
  MetaStore store{kv.get()};
  IdAllocator inos{kv.get(), "next_ino", 2};
};

TYPED_TEST_SUITE(OpsTest, testing::KvFactories);

TYPED_TEST(OpsTest, MakeNodeAddsEntryAndCountsLinks) {
  auto dir = this->Make(kRoot, "d", S_IFDIR | 0750);
  ASSERT_TRUE(dir) << dir.error().ToString();
  auto file = this->Make(*dir, "f", S_IFREG | 0640);
  ASSERT_TRUE(file);
  auto link = this->Make(*dir, "l", S_IFLNK | 0777, "target");
  ASSERT_TRUE(link);
  EXPECT_EQ(this->Entry(kRoot, "d"), *dir);
  EXPECT_EQ(this->Entry(*dir, "f"), *file);
  EXPECT_EQ(this->Stored(kRoot).nlink, 3u);  // ".", "..", d's ".."
  const Inode d = this->Stored(*dir);
  EXPECT_EQ(d.nlink, 2u);
  EXPECT_EQ(d.parent, kRoot);
  const Inode f = this->Stored(*file);
  EXPECT_TRUE(f.IsReg());
  EXPECT_EQ(f.nlink, 1u);
  EXPECT_EQ(f.uid, 1u);
  EXPECT_TRUE(f.no_xattrs);
  EXPECT_EQ(this->Stored(*link).inline_data, "target");
  EXPECT_EQ(this->Stored(*link).size, 6u);
}

TYPED_TEST(OpsTest, MakeNodeRefusesWhatPosixRefuses) {
  auto file = this->Make(kRoot, "f", S_IFREG | 0644);
  ASSERT_TRUE(file);
  EXPECT_EQ(this->Make(kRoot, "f", S_IFREG | 0644).error().code(), Code::kExists);
  EXPECT_EQ(this->Make(kRoot, "f", S_IFDIR | 0755).error().code(), Code::kExists);
  EXPECT_EQ(this->Make(*file, "x", S_IFREG | 0644).error().code(), Code::kNotDir);
  EXPECT_EQ(this->Make(kRoot, "", S_IFREG).error().code(), Code::kInvalid);
  EXPECT_EQ(this->Make(kRoot, "a/b", S_IFREG).error().code(), Code::kInvalid);
  EXPECT_EQ(this->Make(kRoot, std::string(256, 'n'), S_IFREG).error().code(), Code::kNameTooLong);
  EXPECT_EQ(this->Make(99999, "x", S_IFREG).error().code(), Code::kNotFound);
  EXPECT_EQ(this->Stored(kRoot).nlink, 2u);
}

TYPED_TEST(OpsTest, SetGidDirectoryPassesItsGroupOn) {
  auto dir = this->Make(kRoot, "g", S_IFDIR | S_ISGID | 0775);
  ASSERT_TRUE(dir);
  {
    StoreTxn txn(this->kv.get(), &this->inos);
    auto d = txn.Get(*dir);
    ASSERT_TRUE(d);
    (*d)->gid = 55;
    ASSERT_TRUE(txn.Commit().ok());
  }
  auto sub = this->Make(*dir, "sub", S_IFDIR | 0755);
  auto file = this->Make(*dir, "f", S_IFREG | 0644);
  ASSERT_TRUE(sub && file);
  EXPECT_EQ(this->Stored(*sub).gid, 55u);
  EXPECT_TRUE(this->Stored(*sub).mode & S_ISGID);
  EXPECT_EQ(this->Stored(*file).gid, 55u);
  EXPECT_FALSE(this->Stored(*file).mode & S_ISGID);
}

TYPED_TEST(OpsTest, LinkAndUnlinkCountLinksAndOrphanTheLast) {
  auto file = this->Make(kRoot, "f", S_IFREG | 0644);
  ASSERT_TRUE(file);
  ASSERT_TRUE(this->AddLink(*file, kRoot, "g").ok());
  EXPECT_EQ(this->Stored(*file).nlink, 2u);
  EXPECT_EQ(this->Entry(kRoot, "g"), *file);
  EXPECT_EQ(this->AddLink(*file, kRoot, "f").code(), Code::kExists);
  auto dir = this->Make(kRoot, "d", S_IFDIR | 0755);
  ASSERT_TRUE(dir);
  EXPECT_EQ(this->AddLink(*dir, kRoot, "d2").code(), Code::kPermission);

  ASSERT_TRUE(this->Remove(kRoot, "f", false).ok());
  EXPECT_EQ(this->Stored(*file).nlink, 1u);
  EXPECT_FALSE(this->Orphan(*file));
  ASSERT_TRUE(this->Remove(kRoot, "g", false).ok());
  EXPECT_EQ(this->Stored(*file).nlink, 0u);  // the record stays while the file is open
  EXPECT_TRUE(this->Orphan(*file));
  EXPECT_EQ(OrphanNode(*this->kv->Get(OrphanKey(*file))), 7u);
  EXPECT_FALSE(this->Entry(kRoot, "g"));
  EXPECT_EQ(this->Remove(kRoot, "g", false).code(), Code::kNotFound);
}

TYPED_TEST(OpsTest, RemoveChecksTypeAndEmptiness) {
  auto dir = this->Make(kRoot, "d", S_IFDIR | 0755);
  ASSERT_TRUE(dir);
  auto file = this->Make(*dir, "f", S_IFREG | 0644);
  ASSERT_TRUE(file);
  EXPECT_EQ(this->Remove(kRoot, "d", false).code(), Code::kIsDir);
  EXPECT_EQ(this->Remove(*dir, "f", true).code(), Code::kNotDir);
  EXPECT_EQ(this->Remove(kRoot, "d", true).code(), Code::kNotEmpty);
  EXPECT_EQ(this->Remove(kRoot, ".", true).code(), Code::kInvalid);
  EXPECT_EQ(this->Remove(kRoot, "..", true).code(), Code::kNotEmpty);
  EXPECT_EQ(this->Stored(kRoot).nlink, 3u);  // nothing of the refused removals was written
  ASSERT_TRUE(this->Remove(*dir, "f", false).ok());
  ASSERT_TRUE(this->Remove(kRoot, "d", true).ok());
  EXPECT_EQ(this->Stored(kRoot).nlink, 2u);
  EXPECT_EQ(this->Stored(*dir).nlink, 0u);
  EXPECT_TRUE(this->Orphan(*dir));
}

TYPED_TEST(OpsTest, OneTxnSeesWhatItStaged) {
  // Create a directory and a file in it, remove the file and then the directory: one batch.
  StoreTxn txn(this->kv.get(), &this->inos);
  auto dir = MakeNode(txn, kRoot, "d", {S_IFDIR | 0755});
  ASSERT_TRUE(dir);
  const uint64_t d = (*dir)->ino;
  ASSERT_TRUE(MakeNode(txn, d, "f", {S_IFREG | 0644}));
  EXPECT_EQ(MakeNode(txn, d, "f", {S_IFREG | 0644}).error().code(), Code::kExists);
  auto empty = txn.DirEmpty(d);
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
  ASSERT_TRUE(RemoveEntry(txn, d, "f", false).ok());
  empty = txn.DirEmpty(d);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(*empty);
  ASSERT_TRUE(RemoveEntry(txn, kRoot, "d", true).ok());
  ASSERT_TRUE(txn.Commit(true).ok());
  EXPECT_FALSE(this->Entry(kRoot, "d"));
  EXPECT_EQ(this->Stored(kRoot).nlink, 2u);
}

TYPED_TEST(OpsTest, RenameMovesReplacesAndExchanges) {
  auto a = this->Make(kRoot, "a", S_IFDIR | 0755);
  auto b = this->Make(kRoot, "b", S_IFDIR | 0755);
  auto f = this->Make(*a, "f", S_IFREG | 0644);
  auto g = this->Make(*b, "g", S_IFREG | 0644);
  ASSERT_TRUE(a && b && f && g);

  // A file replaces another: the victim loses its link and becomes an orphan.
  ASSERT_TRUE(this->Move(*a, "f", *b, "g").ok());
  EXPECT_FALSE(this->Entry(*a, "f"));
  EXPECT_EQ(this->Entry(*b, "g"), *f);
  EXPECT_EQ(this->Stored(*g).nlink, 0u);
  EXPECT_TRUE(this->Orphan(*g));

  // A directory moves to another parent: ".." and both link counts follow.
  ASSERT_TRUE(this->Move(kRoot, "b", *a, "b").ok());
  EXPECT_EQ(this->Stored(*b).parent, *a);
  EXPECT_EQ(this->Stored(*a).nlink, 3u);
  EXPECT_EQ(this->Stored(kRoot).nlink, 3u);

  // RENAME_NOREPLACE and RENAME_EXCHANGE.
  auto h = this->Make(kRoot, "h", S_IFREG | 0644);
  ASSERT_TRUE(h);
  EXPECT_EQ(this->Move(kRoot, "h", kRoot, "a", RENAME_NOREPLACE).code(), Code::kExists);
  ASSERT_TRUE(this->Move(kRoot, "h", kRoot, "a", RENAME_EXCHANGE).ok());
  EXPECT_EQ(this->Entry(kRoot, "a"), *h);
  EXPECT_EQ(this->Entry(kRoot, "h"), *a);
  EXPECT_EQ(this->Move(kRoot, "h", kRoot, "none", RENAME_EXCHANGE).code(), Code::kNotFound);
  EXPECT_EQ(this->Move(kRoot, "h", kRoot, "a", RENAME_EXCHANGE | RENAME_NOREPLACE).code(),
            Code::kInvalid);

  // Onto another link of the same inode: nothing happens.
  ASSERT_TRUE(this->AddLink(*h, kRoot, "h2").ok());
  ASSERT_TRUE(this->Move(kRoot, "a", kRoot, "h2").ok());
  EXPECT_EQ(this->Entry(kRoot, "a"), *h);
  EXPECT_EQ(this->Stored(*h).nlink, 2u);
}

TYPED_TEST(OpsTest, RenameOverDirectoryOnlyWhenEmpty) {
  auto a = this->Make(kRoot, "a", S_IFDIR | 0755);
  auto b = this->Make(kRoot, "b", S_IFDIR | 0755);
  auto f = this->Make(*b, "f", S_IFREG | 0644);
  auto file = this->Make(kRoot, "file", S_IFREG | 0644);
  ASSERT_TRUE(a && b && f && file);
  EXPECT_EQ(this->Move(kRoot, "a", kRoot, "b").code(), Code::kNotEmpty);
  EXPECT_EQ(this->Move(kRoot, "a", kRoot, "file").code(), Code::kNotDir);
  EXPECT_EQ(this->Move(kRoot, "file", kRoot, "a").code(), Code::kIsDir);
  EXPECT_EQ(this->Stored(kRoot).nlink, 4u);
  ASSERT_TRUE(this->Remove(*b, "f", false).ok());
  ASSERT_TRUE(this->Move(kRoot, "a", kRoot, "b").ok());
  EXPECT_EQ(this->Entry(kRoot, "b"), *a);
  EXPECT_EQ(this->Stored(kRoot).nlink, 3u);
  EXPECT_EQ(this->Stored(*b).nlink, 0u);
  EXPECT_TRUE(this->Orphan(*b));
}

TYPED_TEST(OpsTest, RenameThatRacedStagesNothing) {
  auto f = this->Make(kRoot, "f", S_IFREG | 0644);
  auto g = this->Make(kRoot, "g", S_IFREG | 0644);
  ASSERT_TRUE(f && g);
  const Dentry seen_src{*g, DT_REG};  // what a look before locking saw: no longer true
  const std::optional<Dentry> seen_dst;
  StoreTxn txn(this->kv.get(), &this->inos);
  RenameArgs args{kRoot, "f", kRoot, "h"};
  args.seen_src = &seen_src;
  args.seen_dst = &seen_dst;
  bool raced = false;
  ASSERT_TRUE(Rename(txn, args, &raced).ok());
  EXPECT_TRUE(raced);
  EXPECT_TRUE(txn.batch().empty());
}

TYPED_TEST(OpsTest, ChangeThatMetAnotherWritersFailsWhole) {
  // Two changes read the root; the first commits, the second finds its record changed and
  // writes nothing (the driver above runs it again from the stored records).
  StoreTxn first(this->kv.get(), &this->inos);
  StoreTxn second(this->kv.get(), &this->inos);
  ASSERT_TRUE(MakeNode(first, kRoot, "x", {S_IFDIR | 0755}));
  ASSERT_TRUE(MakeNode(second, kRoot, "y", {S_IFREG | 0644}));
  ASSERT_TRUE(first.Commit(true).ok());
  EXPECT_EQ(second.Commit(true).code(), Code::kConflict);
  EXPECT_TRUE(this->Entry(kRoot, "x"));
  EXPECT_FALSE(this->Entry(kRoot, "y"));
  auto y = this->Make(kRoot, "y", S_IFREG | 0644);
  ASSERT_TRUE(y);
  EXPECT_EQ(this->Stored(kRoot).nlink, 3u);
}

}  // namespace
}  // namespace cairn::meta
