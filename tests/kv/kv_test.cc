// The same suite over both KvStore implementations.
#include <gtest/gtest.h>

#include <filesystem>

#include "kv/memory_kv_store.h"
#include "kv/rocksdb_kv_store.h"

namespace cairn::kv {
namespace {

struct MemoryFactory {
  std::unique_ptr<KvStore> Make() { return std::make_unique<MemoryKvStore>(); }
};

struct RocksFactory {
  std::string dir;
  RocksFactory() {
    dir = std::filesystem::temp_directory_path() /
          ("cairn-kv-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
  }
  ~RocksFactory() { std::filesystem::remove_all(dir); }
  std::unique_ptr<KvStore> Make() {
    RocksDbOptions o;
    o.create_if_missing = true;
    return std::move(*RocksDbKvStore::Open(dir, o));
  }
  static inline int counter = 0;
};

template <typename F>
class KvStoreTest : public ::testing::Test {
 protected:
  F factory;
  std::unique_ptr<KvStore> kv = factory.Make();
};

using Factories = ::testing::Types<MemoryFactory, RocksFactory>;
TYPED_TEST_SUITE(KvStoreTest, Factories);

TYPED_TEST(KvStoreTest, GetMissingIsNotFound) {
  auto v = this->kv->Get("nope");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), Code::kNotFound);
}

TYPED_TEST(KvStoreTest, BatchAppliesInOrder) {
  WriteBatch b;
  b.Put("a", "1");
  b.Put("b", "2");
  b.Delete("a");
  b.Put("c", "3");
  ASSERT_TRUE(this->kv->Write(b, true).ok());
  EXPECT_FALSE(this->kv->Get("a"));
  EXPECT_EQ(*this->kv->Get("b"), "2");
  EXPECT_EQ(*this->kv->Get("c"), "3");
}

TYPED_TEST(KvStoreTest, DeleteRangeRunsBeforeThePutsOfItsBatch) {
  WriteBatch b;
  for (char c = 'a'; c <= 'e'; ++c) b.Put(std::string("k") + c, "v");
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  WriteBatch d;
  d.DeleteRange("kb", "kd");
  d.Put("kc", "new");
  ASSERT_TRUE(this->kv->Write(d, false).ok());
  auto all = ScanRange(*this->kv, "k", "l");
  ASSERT_TRUE(all);
  std::vector<std::string> keys;
  for (auto& [k, v] : *all) keys.push_back(k + "=" + v);
  EXPECT_EQ(keys, (std::vector<std::string>{"ka=v", "kc=new", "kd=v", "ke=v"}));
}

TYPED_TEST(KvStoreTest, IteratorSeeksBothWays) {
  WriteBatch b;
  for (std::string k : {"b", "d", "f"}) b.Put(k, k);
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  auto it = this->kv->NewIterator();
  it->Seek("c");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->SeekForPrev("c");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
  it->SeekForPrev("a");
  EXPECT_FALSE(it->Valid());
  it->Seek("f");
  it->Next();
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("z");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "f");
  it->Prev();
  EXPECT_EQ(it->key(), "d");
}

TYPED_TEST(KvStoreTest, IteratorIsASnapshot) {
  WriteBatch b;
  b.Put("x", "1");
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  auto it = this->kv->NewIterator();
  WriteBatch c;
  c.Put("y", "2");
  ASSERT_TRUE(this->kv->Write(c, false).ok());
  int n = 0;
  for (it->Seek(""); it->Valid(); it->Next()) ++n;
  EXPECT_EQ(n, 1);
}

TEST(RocksDbKvStore, SurvivesReopenAndRefusesSecondOpener) {
  RocksFactory f;
  {
    auto kv = f.Make();
    WriteBatch b;
    b.Put("k", "v");
    ASSERT_TRUE(kv->Write(b, true).ok());
    auto second = RocksDbKvStore::Open(f.dir, {});
    EXPECT_FALSE(second);
  }
  auto kv = RocksDbKvStore::Open(f.dir, {});
  ASSERT_TRUE(kv);
  EXPECT_EQ(*(*kv)->Get("k"), "v");
}

}  // namespace
}  // namespace cairn::kv
