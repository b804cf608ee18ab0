// The same suite over every KvStore implementation: in memory, RocksDB, and PostgreSQL (a real
// server started once for this binary, on a Unix socket).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "kv/memory_kv_store.h"
#include "kv/pg_kv_store.h"
#include "kv/read_cache.h"
#include "kv/rocksdb_kv_store.h"
#include "kv_factories.h"
#include "pg_server.h"

namespace cairn::kv {
namespace {

using testing::MemoryFactory;
using testing::Pg;
using testing::PgFactory;
using testing::RocksFactory;

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

TYPED_TEST(KvStoreTest, SnapshotIsOneInstantAndItsBatchComesAfterIt) {
  WriteBatch before;
  for (int i = 0; i < 600; ++i) before.Put(fmt::format("k{:04}", i), std::to_string(i));
  before.Add("count", 5);
  before.Put(std::string("\0bin\xff", 5), "binary");
  ASSERT_TRUE(this->kv->Write(before, false).ok());
  WriteBatch record;  // applied right after the snapshot's instant, not in it
  record.Put("record", "1");
  ASSERT_TRUE(this->kv->CreateSnapshot(7, record).ok());
  EXPECT_EQ(*this->kv->Get("record"), "1");
  // Every kind of change after it: overwrite, delete, counter add, range delete, new key; some
  // twice, so that a version saved once is not saved again over the first.
  for (int round = 0; round < 2; ++round) {
    WriteBatch after;
    after.Put("k0000", fmt::format("changed{}", round));
    after.Delete("k0001");
    after.Add("count", 1);
    after.DeleteRange("k0100", "k0200");
    after.Put("new", "x");
    ASSERT_TRUE(this->kv->Write(after, round == 1).ok());
  }
  auto view = this->kv->OpenSnapshot(7);
  ASSERT_TRUE(view) << view.error().ToString();
  KvStore& snap = **view;
  EXPECT_EQ(*snap.Get("k0000"), "0");
  EXPECT_EQ(*snap.Get("k0001"), "1");
  EXPECT_EQ(*snap.Get("k0150"), "150");
  EXPECT_EQ(*DecodeCounter(*snap.Get("count")), 5);
  EXPECT_EQ(*snap.Get(std::string("\0bin\xff", 5)), "binary");
  EXPECT_EQ(snap.Get("new").error().code(), Code::kNotFound);
  EXPECT_EQ(snap.Get("record").error().code(), Code::kNotFound);
  auto rows = ScanRange(snap, "k", "l");
  ASSERT_TRUE(rows) << rows.error().ToString();
  ASSERT_EQ(rows->size(), 600u);
  EXPECT_EQ(rows->front().first, "k0000");
  EXPECT_EQ(rows->front().second, "0");
  EXPECT_EQ(rows->back().first, "k0599");
  int n = 0;
  auto it = snap.NewIterator("k0090", "k0210");
  for (it->SeekForPrev("k0300"); it->Valid(); it->Prev()) ++n;
  EXPECT_EQ(n, 120);
  // The live store has moved on.
  EXPECT_EQ(*this->kv->Get("k0000"), "changed1");
  EXPECT_EQ(this->kv->Get("k0001").error().code(), Code::kNotFound);
  EXPECT_EQ(*DecodeCounter(*this->kv->Get("count")), 7);
  EXPECT_EQ(ScanRange(*this->kv, "k", "l")->size(), 499u);
  // Read-only.
  WriteBatch refused;
  refused.Put("x", "y");
  EXPECT_EQ(snap.Write(refused, true).code(), Code::kReadOnly);
}

TYPED_TEST(KvStoreTest, SnapshotIdsIncreaseAndDroppedViewsFail) {
  ASSERT_TRUE(this->kv->CreateSnapshot(3, WriteBatch()).ok());
  EXPECT_EQ(this->kv->CreateSnapshot(3, WriteBatch()).code(), Code::kExists);
  EXPECT_EQ(this->kv->CreateSnapshot(2, WriteBatch()).code(), Code::kInvalid);
  WriteBatch b;
  b.Put("seg", "1");
  ASSERT_TRUE(this->kv->Write(b, false).ok());
  ASSERT_TRUE(this->kv->CreateSnapshot(5, WriteBatch()).ok());
  EXPECT_EQ(*this->kv->ListSnapshots(), (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(this->kv->OpenSnapshot(4).error().code(), Code::kNotFound);
  // Which snapshots hold a key: "seg" came after 3, so only 5 holds it.
  EXPECT_TRUE(*this->kv->SnapshotsHold("seg"));
  EXPECT_FALSE(*this->kv->SnapshotsHold("other"));
  WriteBatch gone;
  gone.Delete("seg");
  ASSERT_TRUE(this->kv->Write(gone, false).ok());
  EXPECT_TRUE(*this->kv->SnapshotsHold("seg"));  // 5 still holds its version
  auto view = this->kv->OpenSnapshot(5);
  ASSERT_TRUE(view);
  EXPECT_EQ(*(*view)->Get("seg"), "1");
  ASSERT_TRUE(this->kv->DropSnapshot(5).ok());
  ASSERT_TRUE(this->kv->DropSnapshot(5).ok());  // absent: fine
  EXPECT_FALSE(*this->kv->SnapshotsHold("seg"));
  // A view of a dropped snapshot never answers with what the live store holds instead.
  auto after = (*view)->Get("seg");
  EXPECT_FALSE(after);
  EXPECT_EQ(*this->kv->ListSnapshots(), (std::vector<uint64_t>{3}));
  // Ids are never reused, even of a dropped snapshot.
  EXPECT_EQ(this->kv->CreateSnapshot(5, WriteBatch()).code(), Code::kInvalid);
  ASSERT_TRUE(this->kv->CreateSnapshot(6, WriteBatch()).ok());
}

// A snapshot's view keeps what it read: point reads, found or not, and small ranges; a range past
// the limit is read through every time.
TEST(ReadCache, KeepsPointReadsAndSmallRangesOfAnUnchangingStore) {
  MemoryKvStore base;
  WriteBatch w;
  w.Put("a", "1");
  for (int i = 0; i < 2000; ++i) w.Put(fmt::format("big{:04}", i), "v");
  for (int i = 0; i < 10; ++i) w.Put(fmt::format("e{:02}", i), std::to_string(i));
  ASSERT_TRUE(base.Write(w, false).ok());
  ASSERT_TRUE(base.CreateSnapshot(1, WriteBatch()).ok());
  ReadCache cache(*base.OpenSnapshot(1));
  EXPECT_EQ(*cache.Get("a"), "1");
  EXPECT_EQ(cache.Get("nope").error().code(), Code::kNotFound);
  auto small = ScanRange(cache, "e", "f");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->size(), 10u);
  auto it = cache.NewIterator("e", "f");
  it->SeekForPrev("e05x");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "e05");
  it->Prev();
  EXPECT_EQ(it->key(), "e04");
  // The snapshot goes: what was kept still answers, what was not does not.
  ASSERT_TRUE(base.DropSnapshot(1).ok());
  EXPECT_EQ(*cache.Get("a"), "1");
  EXPECT_EQ(cache.Get("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(ScanRange(cache, "e", "f")->size(), 10u);
  EXPECT_FALSE(cache.Get("e03"));                                 // never asked for before
  EXPECT_FALSE(ScanRange(cache, "big", "bih")->size() == 2000u);  // too large to keep
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

// One query's first value as text, on a connection of the test's own.
std::string Sql(const std::string& conninfo, const std::string& query) {
  PGconn* pg = PQconnectdb(conninfo.c_str());
  std::string out = "<connection failed>";
  if (PQstatus(pg) == CONNECTION_OK) {
    PGresult* r = PQexec(pg, query.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      out.clear();
    } else {
      out = std::string("<error: ") + PQresultErrorMessage(r) + ">";
    }
    PQclear(r);
  }
  PQfinish(pg);
  return out;
}

TEST_F(PgKvStoreTest, ConcurrentBatchesShareCommitsAndOneConflictFailsAlone) {
  // 16 threads write at once; every third batch expects a value that does not hold. Those get
  // kConflict and apply nothing; every other batch of the same groups commits.
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  WriteBatch init;
  init.Put("guard", "real");
  ASSERT_TRUE(a->Write(init, true).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0}, conflicts{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        WriteBatch w;
        const bool doomed = (t * 40 + i) % 3 == 0;
        if (doomed) w.Expect("guard", "not this");
        w.Put(fmt::format("row{:02}-{:03}", t, i), doomed ? "doomed" : "ok");
        w.Add("applied", 1);
        Status st = a->Write(w, i % 10 == 0);
        if (st.code() == Code::kConflict && doomed) {
          ++conflicts;
        } else if (!st.ok() || doomed) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const int doomed = conflicts.load();
  EXPECT_EQ(doomed, 214);  // (t * 40 + i) % 3 == 0 for 214 of the 640
  auto rows = ScanRange(*b, "row", "rox");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 640u - doomed);
  for (const auto& [k, v] : *rows) EXPECT_EQ(v, "ok") << k;
  EXPECT_EQ(*DecodeCounter(*b->Get("applied")), 640 - doomed);
  const auto stats = a->group_stats();
  EXPECT_EQ(stats.batches, 641u);
  RecordProperty("groups", static_cast<int>(stats.groups));
}

TEST_F(PgKvStoreTest, SnapshotWhileWritersRunIsOneInstant) {
  // Writers keep moving a token between two keys (delete one, put the other, one batch) and
  // adding to a counter; snapshots taken meanwhile must each hold exactly one token and a
  // counter equal to the moves they hold.
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  WriteBatch init;
  for (int t = 0; t < 4; ++t) init.Put(fmt::format("t{}-left", t), "token");
  ASSERT_TRUE(a->Write(init, true).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      KvStore* kv = t % 2 ? b.get() : a.get();
      for (int i = 0; !stop; ++i) {
        WriteBatch w;
        const std::string from = fmt::format("t{}-{}", t, i % 2 ? "right" : "left");
        const std::string to = fmt::format("t{}-{}", t, i % 2 ? "left" : "right");
        w.Delete(from);
        w.Put(to, "token");
        w.Add(fmt::format("t{}-moves", t), 1);
        w.Put(fmt::format("t{}-last", t), std::to_string(i + 1));
        if (!kv->Write(w, false).ok()) ++failures;
      }
    });
  }
  for (uint64_t id = 1; id <= 5; ++id) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE((id % 2 ? a : b)->CreateSnapshot(id, WriteBatch()).ok());
  }
  stop = true;
  for (auto& th : writers) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t id = 1; id <= 5; ++id) {
    auto view = a->OpenSnapshot(id);
    ASSERT_TRUE(view);
    for (int t = 0; t < 4; ++t) {
      const bool left = static_cast<bool>((*view)->Get(fmt::format("t{}-left", t)));
      const bool right = static_cast<bool>((*view)->Get(fmt::format("t{}-right", t)));
      EXPECT_NE(left, right) << "snapshot " << id << " writer " << t;
      auto moves = (*view)->Get(fmt::format("t{}-moves", t));
      auto last = (*view)->Get(fmt::format("t{}-last", t));
      const int64_t m = moves ? *DecodeCounter(*moves) : 0;
      EXPECT_EQ(m, last ? std::stoll(*last) : 0) << "snapshot " << id;
      EXPECT_EQ(right, m % 2 == 1) << "snapshot " << id;
    }
  }
}

TEST_F(PgKvStoreTest, DroppingSnapshotsFreesTheHistoryOnlyTheyNeeded) {
  auto [a, b] = TwoNodes();
  ASSERT_TRUE(a && b);
  WriteBatch w;
  for (int i = 0; i < 100; ++i) w.Put(fmt::format("k{:03}", i), "v0");
  ASSERT_TRUE(a->Write(w, false).ok());
  const auto rewrite = [&](const std::string& value) {
    WriteBatch r;
    for (int i = 0; i < 100; ++i) r.Put(fmt::format("k{:03}", i), value);
    ASSERT_TRUE(a->Write(r, false).ok());
  };
  const auto history = [&] { return Sql(conninfo_, "SELECT count(*) FROM cairn_kv_hist"); };
  EXPECT_EQ(history(), "0");
  rewrite("v1");  // no snapshot yet: nothing is kept
  EXPECT_EQ(history(), "0");
  ASSERT_TRUE(a->CreateSnapshot(1, WriteBatch()).ok());
  rewrite("v2");  // 1 needs the v1 versions
  rewrite("v3");  // written in the same epoch: nothing more
  EXPECT_EQ(history(), "100");
  ASSERT_TRUE(a->CreateSnapshot(2, WriteBatch()).ok());
  rewrite("v4");  // 2 needs the v3 versions
  EXPECT_EQ(history(), "200");
  EXPECT_EQ(*(*a->OpenSnapshot(1))->Get("k042"), "v1");
  EXPECT_EQ(*(*a->OpenSnapshot(2))->Get("k042"), "v3");
  ASSERT_TRUE(b->DropSnapshot(1).ok());
  EXPECT_EQ(history(), "100");
  EXPECT_EQ(*(*a->OpenSnapshot(2))->Get("k042"), "v3");
  ASSERT_TRUE(b->DropSnapshot(2).ok());
  EXPECT_EQ(history(), "0");
  rewrite("v5");  // no snapshot left: nothing is kept any more
  EXPECT_EQ(history(), "0");
  EXPECT_EQ(*a->Get("k042"), "v5");
}

TEST_F(PgKvStoreTest, ADatabaseOfSchemaOneUpgradesAndKeepsItsTableSnapshots) {
  // What an older Cairn made: cairn_kv without epochs, and a snapshot as a whole-table copy.
  const std::string db = NewDatabase();
  const std::string conninfo = Pg()->ConnInfo(db);
  ASSERT_EQ(Sql(conninfo,
                "CREATE TABLE cairn_kv (k bytea PRIMARY KEY, v bytea NOT NULL);"
                "CREATE TABLE cairn_kv_sync (id int PRIMARY KEY, n bigint NOT NULL);"
                "INSERT INTO cairn_kv_sync VALUES (1, 0);"
                "CREATE FUNCTION cairn_kv_expect(key bytea, expected bytea) RETURNS void "
                "LANGUAGE sql AS 'SELECT 1';"
                "INSERT INTO cairn_kv VALUES ('a', 'old'), ('b', 'old');"
                "CREATE TABLE cairn_snap_1 AS SELECT k, v FROM cairn_kv;"
                "ALTER TABLE cairn_snap_1 ADD PRIMARY KEY (k);"
                "UPDATE cairn_kv SET v = 'new' WHERE k = 'a'"),
            "");
  auto kv = PgKvStore::Open(conninfo, {});
  ASSERT_TRUE(kv) << kv.error().ToString();
  EXPECT_EQ(*(*kv)->Get("a"), "new");
  EXPECT_EQ(Sql(conninfo, "SELECT version FROM cairn_kv_epoch"), "2");
  // An older Cairn checks for cairn_kv_expect: it no longer opens the upgraded database.
  EXPECT_EQ(Sql(conninfo, "SELECT to_regprocedure('cairn_kv_expect(bytea,bytea)') IS NULL"), "t");
  EXPECT_EQ(*(*kv)->ListSnapshots(), std::vector<uint64_t>{1});
  auto old = (*kv)->OpenSnapshot(1);
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(*(*old)->Get("a"), "old");
  EXPECT_TRUE(*(*kv)->SnapshotsHold("b"));
  // New snapshots are epochs, beside it.
  ASSERT_TRUE((*kv)->CreateSnapshot(2, WriteBatch()).ok());
  WriteBatch w;
  w.Put("a", "newer");
  ASSERT_TRUE((*kv)->Write(w, false).ok());
  EXPECT_EQ(*(*(*kv)->OpenSnapshot(2))->Get("a"), "new");
  EXPECT_EQ(*(*kv)->ListSnapshots(), (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE((*kv)->DropSnapshot(1).ok());
  EXPECT_EQ(Sql(conninfo, "SELECT to_regclass('cairn_snap_1') IS NULL"), "t");
  EXPECT_EQ(*(*kv)->ListSnapshots(), std::vector<uint64_t>{2});
  // Opening again does not run the upgrade again; a newer schema is refused.
  ASSERT_TRUE(PgKvStore::Open(conninfo, {}));
  ASSERT_EQ(Sql(conninfo, "UPDATE cairn_kv_epoch SET version = 99"), "");
  auto newer = PgKvStore::Open(conninfo, {});
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code(), Code::kNotSupported);
  EXPECT_NE(newer.error().message().find("newer"), std::string::npos);
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
