// The snapshot catalog (fs/snapshots.h) over every KvStore: the in-memory one, RocksDB
// (checkpoints) and PostgreSQL (epochs). Creation, listing, deletion, what a view reads, which
// segments a snapshot holds, and what a later mount finds.
#include "fs/snapshots.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "kv_factories.h"
#include "meta/meta_store.h"

namespace cairn::fs {
namespace {

template <typename F>
class SnapshotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-snapshots-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    catalog_ = Make();
    ASSERT_TRUE(catalog_->Load().ok());
  }
  void TearDown() override {
    catalog_.reset();
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Snapshots> Make() {
    Snapshots::Options o;
    o.dir = dir_ + "/snapshots";
    Snapshots::Host host;
    host.sync_data = [this] {
      ++synced_;
      return Status::Ok();
    };
    host.name_gone = [this](std::string name) { gone_.insert(std::move(name)); };
    return std::make_unique<Snapshots>(kv_.get(), o, host);
  }
  void Put(const std::string& key, const std::string& value) {
    kv::WriteBatch b;
    b.Put(key, value);
    ASSERT_TRUE(kv_->Write(b, true).ok());
  }
  void Delete(const std::string& key) {
    kv::WriteBatch b;
    b.Delete(key);
    ASSERT_TRUE(kv_->Write(b, true).ok());
  }

  F factory_;
  std::unique_ptr<kv::KvStore> kv_ = factory_.Make();
  std::string dir_;
  std::unique_ptr<Snapshots> catalog_;
  int synced_ = 0;
  std::set<std::string> gone_;
  static inline int counter_ = 0;
};

TYPED_TEST_SUITE(SnapshotsTest, testing::KvFactories);

TYPED_TEST(SnapshotsTest, CreateListAndRefuseBadOrTakenNames) {
  auto a = this->catalog_->Create("a");
  ASSERT_TRUE(a) << a.error().ToString();
  auto b = this->catalog_->Create("b");
  ASSERT_TRUE(b);
  EXPECT_NE(a->index, b->index);
  EXPECT_EQ(this->synced_, 2);  // the data is durable before each snapshot is
  EXPECT_EQ(this->catalog_->Create("a").error().code(), Code::kExists);
  EXPECT_EQ(this->catalog_->Create("").error().code(), Code::kInvalid);
  EXPECT_EQ(this->catalog_->Create("x/y").error().code(), Code::kInvalid);
  auto list = this->catalog_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "a");
  EXPECT_EQ(list[1].name, "b");
  ASSERT_TRUE(this->catalog_->ViewByName("b"));
  EXPECT_EQ((*this->catalog_->View(b->index))->record().name, "b");
  EXPECT_EQ(this->catalog_->View(9999).error().code(), Code::kNotFound);
}

TYPED_TEST(SnapshotsTest, ViewReadsTheInstantOfCreation) {
  this->Put("Ikey", "before");
  auto s = this->catalog_->Create("s");
  ASSERT_TRUE(s);
  this->Put("Ikey", "after");
  this->Put("Inew", "x");
  auto view = this->catalog_->ViewByName("s");
  ASSERT_TRUE(view);
  auto meta = (*view)->Meta();
  ASSERT_TRUE(meta) << meta.error().ToString();
  EXPECT_EQ(*(*meta)->kv().Get("Ikey"), "before");
  EXPECT_EQ((*meta)->kv().Get("Inew").error().code(), Code::kNotFound);
}

TYPED_TEST(SnapshotsTest, SegmentHeldUntilItsLastSnapshotGoes) {
  const uint64_t seg = 42;
  this->Put(meta::SegmentKey(seg), "record");
  ASSERT_TRUE(this->catalog_->Create("s"));
  this->Delete(meta::SegmentKey(seg));  // the live tree no longer has it
  bool removed = false;
  auto ran = this->catalog_->RemoveUnlessHeld(seg, [&] {
    removed = true;
    return Status::Ok();
  });
  ASSERT_TRUE(ran);
  EXPECT_FALSE(*ran);
  EXPECT_FALSE(removed);
  EXPECT_TRUE(*this->catalog_->Pinned(seg));

  ASSERT_TRUE(this->catalog_->Delete("s").ok());
  EXPECT_TRUE(this->gone_.count("s"));
  EXPECT_EQ(this->catalog_->ViewByName("s").error().code(), Code::kNotFound);
  EXPECT_FALSE(*this->catalog_->Pinned(seg));
  ran = this->catalog_->RemoveUnlessHeld(seg, [&] {
    removed = true;
    return Status::Ok();
  });
  ASSERT_TRUE(ran);
  EXPECT_TRUE(*ran);
  EXPECT_TRUE(removed);
  EXPECT_EQ(this->catalog_->Delete("s").code(), Code::kNotFound);
}

TYPED_TEST(SnapshotsTest, LaterMountSeesRecordsAndPushesAndDropsOrphanedStoreSnapshots) {
  ASSERT_TRUE(this->catalog_->Create("kept"));
  ASSERT_TRUE(this->catalog_->NotePushed("kept", "s3://bucket/x", true).ok());
  ASSERT_TRUE(this->catalog_->NotePushed("kept", "s3://bucket/x", true).ok());  // once
  // A creation cut short after the store's snapshot, before its record.
  kv::WriteBatch none;
  ASSERT_TRUE(this->kv_->CreateSnapshot(77, none).ok());

  auto again = this->Make();
  ASSERT_TRUE(again->Load().ok());
  auto list = again->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "kept");
  EXPECT_EQ(list[0].pushed_to, std::vector<std::string>{"s3://bucket/x"});
  auto ids = this->kv_->ListSnapshots();
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, std::vector<uint64_t>{list[0].index});
  ASSERT_TRUE(again->NotePushed("kept", "s3://bucket/x", false).ok());
  EXPECT_TRUE(again->List()[0].pushed_to.empty());
}

}  // namespace
}  // namespace cairn::fs
