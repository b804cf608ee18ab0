// The same suite over every KvStore implementation: in memory, RocksDB, and PostgreSQL (a real
// server started once for this binary, on a Unix socket).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "kv/memory_kv_store.h"
#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "pg_server.h"

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

// One PostgreSQL server for the whole binary; each store gets a database of its own.
testing::PgServer* Pg() {
  static std::unique_ptr<testing::PgServer> server = [] {
    std::string why;
    auto s = testing::PgServer::Start(&why);
    if (!s) ADD_FAILURE() << "PostgreSQL did not start: " << why;
    return s;
  }();
  return server.get();
}

struct PgFactory {
  std::string db = "kv" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::unique_ptr<KvStore> Make() {
    if (Pg() == nullptr) return std::make_unique<MemoryKvStore>();  // failure already reported
    std::string why;
    EXPECT_TRUE(Pg()->CreateDatabase(db, &why)) << why;
    PgOptions o;
    o.create_if_missing = true;
    auto kv = PgKvStore::Open(Pg()->ConnInfo(db), o);
    EXPECT_TRUE(kv) << kv.error().ToString();
    if (!kv) return std::make_unique<MemoryKvStore>();
    return std::move(*kv);
  }
  static inline int counter = 0;
};

template <typename F>
class KvStoreTest : public ::testing::Test {
 protected:
  F factory;
  std::unique_ptr<KvStore> kv = factory.Make();
};

using Factories = ::testing::Types<MemoryFactory, RocksFactory, PgFactory>;
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

TYPED_TEST(KvStoreTest, CountersAddWithoutReading) {
  WriteBatch b;
  b.Add("c", 5);
  b.Add("c", -7);
  b.Put("p", "not a counter");
  b.Add("p", 3);  // a value that is not a counter is replaced
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  EXPECT_EQ(*DecodeCounter(*this->kv->Get("c")), -2);
  EXPECT_EQ(*DecodeCounter(*this->kv->Get("p")), 3);
  WriteBatch big;
  big.Add("c", int64_t{1} << 40);
  ASSERT_TRUE(this->kv->Write(big, true).ok());
  EXPECT_EQ(*DecodeCounter(*this->kv->Get("c")), (int64_t{1} << 40) - 2);
}

TYPED_TEST(KvStoreTest, KeysAreOrderedBytewise) {
  WriteBatch b;
  const std::vector<std::string> keys = {std::string("a\0b", 3), "a", std::string("\xff", 1),
                                         std::string("a\x80", 2), "ab"};
  for (const auto& k : keys) b.Put(k, k);
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  std::vector<std::string> got;
  auto it = this->kv->NewIterator();
  for (it->Seek(""); it->Valid(); it->Next()) got.emplace_back(it->key());
  EXPECT_EQ(got, (std::vector<std::string>{"a", std::string("a\0b", 3), "ab",
                                           std::string("a\x80", 2), std::string("\xff", 1)}));
  EXPECT_EQ(*this->kv->Get(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TYPED_TEST(KvStoreTest, IteratorWalksManyPagesWithinBounds) {
  // More keys than one page of the PostgreSQL iterator, inside bounds, both ways.
  WriteBatch b;
  for (int i = 0; i < 1000; ++i) b.Put(fmt::format("k{:04}", i), std::to_string(i));
  b.Put("a", "below");
  b.Put("l", "above");
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  auto it = this->kv->NewIterator("k0100", "k0900");
  int n = 0;
  std::string last;
  for (it->Seek(""); it->Valid(); it->Next()) {
    EXPECT_GT(std::string(it->key()), last);
    last = it->key();
    ++n;
  }
  ASSERT_TRUE(it->status().ok());
  EXPECT_EQ(n, 800);
  EXPECT_EQ(last, "k0899");
  n = 0;
  for (it->SeekForPrev("z"); it->Valid(); it->Prev()) ++n;
  EXPECT_EQ(n, 800);
  it->Seek("k0500");
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "k0499");
  it->Next();
  EXPECT_EQ(it->key(), "k0500");
}

TYPED_TEST(KvStoreTest, LargeBatchIsAtomic) {
  // Larger than one pipeline of the PostgreSQL store.
  WriteBatch b;
  for (int i = 0; i < 2000; ++i) b.Put(fmt::format("big{:05}", i), "v");
  b.DeleteRange("big00000", "big00010");
  ASSERT_TRUE(this->kv->Write(b, true).ok());
  auto all = ScanRange(*this->kv, "big", "bih");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2000u);  // the range delete ran first
}

TYPED_TEST(KvStoreTest, ExpectationsGateTheWholeBatch) {
  WriteBatch init;
  init.Put("rec", "v1");
  ASSERT_TRUE(this->kv->Write(init, true).ok());
  // Holds: a present key with its value, an absent key as absent.
  WriteBatch ok;
  ok.Expect("rec", "v1");
  ok.Expect("name", std::nullopt);
  ok.Put("rec", "v2");
  ok.Put("name", "x");
  ASSERT_TRUE(this->kv->Write(ok, true).ok());
  EXPECT_EQ(*this->kv->Get("rec"), "v2");
  // Each kind of failure applies nothing: a stale value, a present key expected absent, an
  // absent key expected present.
  for (int kind = 0; kind < 3; ++kind) {
    WriteBatch b;
    if (kind == 0) b.Expect("rec", "v1");
    if (kind == 1) b.Expect("name", std::nullopt);
    if (kind == 2) b.Expect("missing", "v");
    b.Put("rec", "bad");
    b.Add("count", 1);
    b.DeleteRange("name", "namf");
    Status st = this->kv->Write(b, true);
    EXPECT_EQ(st.code(), Code::kConflict) << kind << " " << st.ToString();
  }
  EXPECT_EQ(*this->kv->Get("rec"), "v2");
  EXPECT_EQ(*this->kv->Get("name"), "x");
  EXPECT_EQ(this->kv->Get("count").error().code(), Code::kNotFound);
}

class PgKvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Pg() == nullptr) GTEST_FAIL() << "no PostgreSQL server";
  }
  std::string NewDatabase() {
    std::string db = "pgt" + std::to_string(::getpid()) + "_" + std::to_string(counter_++);
    std::string why;
    EXPECT_TRUE(Pg()->CreateDatabase(db, &why)) << why;
    return db;
  }
  // Two stores on one new database, standing for two nodes; the first creates the schema.
  std::pair<std::unique_ptr<PgKvStore>, std::unique_ptr<PgKvStore>> TwoNodes() {
    const std::string db = NewDatabase();
    conninfo_ = Pg()->ConnInfo(db);
    PgOptions o;
    o.create_if_missing = true;
    auto a = PgKvStore::Open(conninfo_, o);
    auto b = a ? PgKvStore::Open(conninfo_, {}) : std::move(a);
    if (!a || !b) return {};
    return {std::move(*a), std::move(*b)};
  }
  static inline int counter_ = 0;
  std::string conninfo_;  // TwoNodes' database
};

TEST_F(PgKvStoreTest, ReopensAndRefusesADatabaseWithoutCairnMetadata) {
  const std::string db = NewDatabase();
  auto empty = PgKvStore::Open(Pg()->ConnInfo(db), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Code::kNotFound);
  EXPECT_NE(empty.error().ToString().find("no Cairn metadata"), std::string::npos);
  {
    PgOptions o;
    o.create_if_missing = true;
    auto kv = PgKvStore::Open(Pg()->ConnInfo(db), o);
    ASSERT_TRUE(kv);
    WriteBatch b;
    b.Put("k", "v");
    ASSERT_TRUE((*kv)->Write(b, true).ok());
  }
  auto kv = PgKvStore::Open(Pg()->ConnInfo(db), {});
  ASSERT_TRUE(kv) << kv.error().ToString();
  EXPECT_EQ(*(*kv)->Get("k"), "v");
}

TEST_F(PgKvStoreTest, TableCopiesAreOneInstantAndReadOnly) {
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  WriteBatch w;
  for (int i = 0; i < 600; ++i) w.Put(fmt::format("k{:04}", i), std::string(1, 'a' + i % 26));
  w.Put(std::string("\0bin\xff", 5), "binary");
  ASSERT_TRUE(a->Write(w, false).ok());
  ASSERT_TRUE(a->CopyTable("cairn_snap_1").ok());
  // Changes after the copy stay out of it.
  WriteBatch later;
  later.Put("k0000", "changed");
  later.Delete("k0001");
  later.Put("new", "x");
  ASSERT_TRUE(b->Write(later, true).ok());
  // The copy: served read-only, in key order, with the table's bytes as they were.
  auto tables = b->ListTables("cairn_snap_");
  ASSERT_TRUE(tables);
  EXPECT_EQ(*tables, std::vector<std::string>{"cairn_snap_1"});
  auto live = a->Get("k0000");
  ASSERT_TRUE(live);
  EXPECT_EQ(*live, "changed");
  PgOptions o;
  o.table = "cairn_snap_1";
  auto copy = PgKvStore::Open(conninfo_, o);
  ASSERT_TRUE(copy) << copy.error().ToString();
  EXPECT_EQ(*(*copy)->Get("k0000"), "a");
  EXPECT_EQ(*(*copy)->Get("k0001"), "b");
  EXPECT_EQ((*copy)->Get("new").error().code(), Code::kNotFound);
  EXPECT_EQ(*(*copy)->Get(std::string("\0bin\xff", 5)), "binary");
  auto rows = ScanRange(**copy, "k", "l");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 600u);
  EXPECT_EQ(rows->front().first, "k0000");
  EXPECT_EQ(rows->back().first, "k0599");
  WriteBatch refused;
  refused.Put("x", "y");
  EXPECT_EQ((*copy)->Write(refused, true).code(), Code::kReadOnly);
  // Bad names and missing tables.
  EXPECT_EQ(a->CopyTable("cairn_kv").code(), Code::kInvalid);
  EXPECT_EQ(a->CopyTable("bad name; drop").code(), Code::kInvalid);
  o.table = "cairn_snap_9";
  auto missing = PgKvStore::Open(conninfo_, o);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  copy->reset();
  ASSERT_TRUE(b->DropTable("cairn_snap_1").ok());
  ASSERT_TRUE(b->DropTable("cairn_snap_1").ok());  // absent: fine
  EXPECT_TRUE(b->ListTables("cairn_snap_")->empty());
}

TEST_F(PgKvStoreTest, AdvisoryLocksExcludeAcrossClients) {
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  std::atomic<int> stage{0};
  {
    auto shared1 = a->Lock(42, false);
    auto shared2 = b->Lock(42, false);  // shared with shared: both at once
    ASSERT_TRUE(shared1 && shared2);
    std::thread exclusive([&] {
      auto held = b->Lock(42, true);
      EXPECT_TRUE(held);
      stage = 2;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(stage.load(), 0);  // waits for both shared holders
    stage = 1;
    shared1->reset();
    shared2->reset();
    exclusive.join();
  }
  EXPECT_EQ(stage.load(), 2);
  // Released at destruction: taken again at once.
  auto again = a->Lock(42, true);
  EXPECT_TRUE(again);
}

TEST_F(PgKvStoreTest, UnreachableOrWrongEndpointsAreClearErrors) {
  // A socket directory with no server in it, a database that does not exist, a bad string.
  auto none = PgKvStore::Open("host=/nonexistent-dir user=postgres dbname=x", {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kUnavailable);
  EXPECT_NE(none.error().ToString().find("PostgreSQL connection failed"), std::string::npos);
  auto nodb = PgKvStore::Open(Pg()->ConnInfo("no_such_db"), {});
  ASSERT_FALSE(nodb);
  EXPECT_NE(nodb.error().ToString().find("no_such_db"), std::string::npos);
  auto garbage = PgKvStore::Open("this is = not a conninfo", {});
  ASSERT_FALSE(garbage);
  PgOptions zero;
  zero.max_connections = 0;
  EXPECT_FALSE(PgKvStore::Open(Pg()->ConnInfo("postgres"), zero));
}

TEST_F(PgKvStoreTest, ConcurrentCounterAddsFromManyClientsAllCount) {
  // Two stores on one database stand for two nodes; 4 threads each add to one counter.
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    KvStore* kv = t % 2 ? b.get() : a.get();
    threads.emplace_back([kv, t, &failures] {
      for (int i = 0; i < 50; ++i) {
        WriteBatch w;
        w.Add("total", 1);
        w.Put(fmt::format("row{}-{:03}", t, i), "x");
        if (!kv->Write(w, false).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*DecodeCounter(*a->Get("total")), 400);
  auto rows = ScanRange(*b, "row", "rox");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 400u);
}

TEST_F(PgKvStoreTest, ExpectationsSerializeReadModifyWriteAcrossClients) {
  // Two stores stand for two nodes; 8 threads each read a record, expect it unchanged and write
  // it plus one, rerunning on kConflict; half also create names that another thread may create
  // first. No increment is lost, and each name is created exactly once.
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0}, conflicts{0}, created{0};
  for (int t = 0; t < 8; ++t) {
    KvStore* kv = t % 2 ? b.get() : a.get();
    threads.emplace_back([&, kv, t] {
      for (int i = 0; i < 25; ++i) {
        for (;;) {
          auto cur = kv->Get("rec");
          std::optional<std::string> seen;
          int64_t n = 0;
          if (cur) {
            seen = *cur;
            n = std::stoll(*cur);
          }
          WriteBatch w;
          w.Expect("rec", seen);
          w.Put("rec", std::to_string(n + 1));
          Status st = kv->Write(w, false);
          if (st.code() == Code::kConflict) {
            ++conflicts;
            continue;
          }
          if (!st.ok()) ++failures;
          break;
        }
        const std::string name = fmt::format("name{:03}", i);
        if (t % 2 == 0 && !kv->Get(name)) {
          WriteBatch w;
          w.Expect(name, std::nullopt);
          w.Put(name, std::to_string(t));
          Status st = kv->Write(w, false);
          if (st.ok())
            ++created;
          else if (st.code() != Code::kConflict)
            ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*a->Get("rec"), "200");
  EXPECT_EQ(created.load(), 25);
  RecordProperty("conflicts", conflicts.load());
}

TEST_F(PgKvStoreTest, SyncedWritesSurviveAServerCrash) {
  const std::string db = NewDatabase();
  PgOptions o;
  o.create_if_missing = true;
  {
    auto kv = PgKvStore::Open(Pg()->ConnInfo(db), o);
    ASSERT_TRUE(kv);
    WriteBatch synced;
    synced.Put("synced", "1");
    ASSERT_TRUE((*kv)->Write(synced, true).ok());
    WriteBatch later;
    later.Put("later", "2");
    ASSERT_TRUE((*kv)->Write(later, false).ok());
    ASSERT_TRUE((*kv)->SyncWal().ok());
    std::string why;
    ASSERT_TRUE(Pg()->CrashAndRestart(&why)) << why;
    // The store's connections died with the server; the pool replaces them.
    auto again = (*kv)->Get("synced");
    ASSERT_TRUE(again) << again.error().ToString();
  }
  auto kv = PgKvStore::Open(Pg()->ConnInfo(db), {});
  ASSERT_TRUE(kv) << kv.error().ToString();
  auto synced = (*kv)->Get("synced");
  ASSERT_TRUE(synced) << synced.error().ToString();
  EXPECT_EQ(*synced, "1");
  auto later = (*kv)->Get("later");
  ASSERT_TRUE(later) << later.error().ToString();
  EXPECT_EQ(*later, "2");  // made durable by SyncWal
}

// What a listener heard: each notice's keys, "*" for "anything may have changed".
struct Heard {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> notices;  // keys joined with ' '
  void Add(const std::vector<std::string>* keys) {
    std::string line = "*";
    if (keys) {
      line.clear();
      for (const auto& k : *keys) line += (line.empty() ? "" : " ") + k;
    }
    std::lock_guard lock(mu);
    notices.push_back(line);
    cv.notify_all();
  }
  // Waits (generously: a correctness bound, not a timing check) for n notices in all.
  std::vector<std::string> WaitFor(size_t n) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(20), [&] { return notices.size() >= n; });
    return notices;
  }
};

TEST_F(PgKvStoreTest, NoticesReachOtherListenersAfterCommitOnly) {
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  PgNotices na, nb;
  na.origin = "a";
  na.watched = [](std::string_view k) { return k.starts_with("w"); };
  nb.origin = "b";
  a->Announce(na);
  Heard heard_a, heard_b;
  ASSERT_TRUE(a->Listen(na, [&](auto* keys) { heard_a.Add(keys); }).ok());
  ASSERT_TRUE(b->Listen(nb, [&](auto* keys) { heard_b.Add(keys); }).ok());

  WriteBatch unwatched;  // no watched key: no notice
  unwatched.Put("x1", "1");
  ASSERT_TRUE(a->Write(unwatched, false).ok());
  WriteBatch failed;  // an expectation that does not hold: nothing commits, nothing is heard
  failed.Expect("x1", "not this");
  failed.Put(std::string("w\0\xff", 3), "binary key");
  EXPECT_EQ(a->Write(failed, false).code(), Code::kConflict);
  WriteBatch two;
  two.Put("w1", "1");
  two.Put("x2", "2");
  two.Delete(std::string("w\0\xff", 3));
  ASSERT_TRUE(a->Write(two, false).ok());
  WriteBatch big;  // past the payload limit: "anything"
  for (int i = 0; i < 2000; ++i) big.Put(fmt::format("w{:06}", i), "v");
  ASSERT_TRUE(a->Write(big, false).ok());
  auto notices = heard_b.WaitFor(2);
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0], std::string("w1 w\0\xff", 6));
  EXPECT_EQ(notices[1], "*");

  // After the server restarts, the listener connects again and says that it may have missed
  // notices; then it hears the next ones.
  std::string why;
  ASSERT_TRUE(Pg()->CrashAndRestart(&why)) << why;
  notices = heard_b.WaitFor(3);
  ASSERT_EQ(notices.size(), 3u);
  EXPECT_EQ(notices[2], "*");
  WriteBatch after;
  after.Put("w2", "2");
  for (int attempt = 0; attempt < 3 && !a->Write(after, false).ok(); ++attempt) {
  }
  notices = heard_b.WaitFor(4);
  ASSERT_EQ(notices.size(), 4u);
  EXPECT_EQ(notices[3], "w2");
  // A store never hears its own origin's notices; at most "may have missed" after the restart.
  a->StopListening();
  b->StopListening();
  EXPECT_LE(heard_a.notices.size(), 1u);
  for (const auto& n : heard_a.notices) EXPECT_EQ(n, "*");
}

}  // namespace
}  // namespace cairn::kv
