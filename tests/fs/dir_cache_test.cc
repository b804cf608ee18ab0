// DirCache: what a cluster node keeps of whole directories, and what makes it let go.
#include "fs/dir_cache.h"

#include <gtest/gtest.h>

#include <atomic>

namespace cairn::fs {
namespace {

using Answer = DirCache::Answer;
using Entries = std::vector<std::pair<std::string, meta::Dentry>>;

constexpr int64_t kLease = 1'000'000'000;  // 1 s

class DirCacheTest : public ::testing::Test {
 protected:
  std::atomic<bool> listening{true};
  DirCache cache{[this] { return listening.load(); }, kLease, /*max_entries=*/100, /*max_dir=*/10};

  void Load(uint64_t dir, const std::string& record, Entries entries, int64_t now = 0) {
    cache.Begin(dir);
    cache.End(dir, record, std::move(entries), now == 0 ? Now() : now);
  }
  static int64_t Now() { return 1'000'000'000'000; }
  Answer Look(uint64_t dir, const std::string& name) {
    meta::Dentry d;
    return cache.Lookup(dir, name, &d);
  }
};

TEST_F(DirCacheTest, ALoadedDirectoryAnswersPresentAndAbsent) {
  EXPECT_EQ(Look(7, "a"), Answer::kUnknown);
  Load(7, "r1", {{"a", {10, 8}}, {"b", {11, 8}}});
  meta::Dentry d;
  ASSERT_EQ(cache.Lookup(7, "a", &d), Answer::kPresent);
  EXPECT_EQ(d.ino, 10u);
  EXPECT_EQ(Look(7, "zzz"), Answer::kAbsent);
  auto list = cache.List(7);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first, "a");
  EXPECT_EQ(cache.EmptyAt(7, "r1"), std::optional<bool>(false));
}

TEST_F(DirCacheTest, AChangeHeardDuringALoadSpoilsIt) {
  cache.Begin(7);
  cache.Changed(7, "a");  // another node changed an entry while the scan ran
  cache.End(7, "r1", Entries{{"a", {10, 8}}}, Now());
  EXPECT_EQ(Look(7, "a"), Answer::kUnknown);
  EXPECT_FALSE(cache.Has(7));
}

TEST_F(DirCacheTest, AnotherNodesChangeMakesThatNameUnknown) {
  Load(7, "r1", {{"a", {10, 8}}});
  cache.Changed(7, "b");
  EXPECT_EQ(Look(7, "b"), Answer::kUnknown);  // it may exist now
  EXPECT_EQ(Look(7, "a"), Answer::kPresent);
  EXPECT_FALSE(cache.List(7));  // not whole any more
  // A change of this node cannot start from the record the directory was loaded at.
  meta::Dentry d;
  EXPECT_EQ(cache.LookupAt(7, "r1", "zzz", &d), Answer::kUnknown);
}

TEST_F(DirCacheTest, ThisNodesCommitsMoveTheDirectoryWithThem) {
  Load(7, "r1", {{"a", {10, 8}}});
  meta::Dentry d;
  EXPECT_EQ(cache.LookupAt(7, "r1", "b", &d), Answer::kAbsent);
  EXPECT_EQ(cache.LookupAt(7, "r0", "b", &d), Answer::kUnknown);  // another record: the store
  cache.Commit(7, "r1", "r2", {{"b", meta::Dentry{12, 8}}, {"a", std::nullopt}});
  EXPECT_EQ(cache.LookupAt(7, "r2", "b", &d), Answer::kPresent);
  EXPECT_EQ(d.ino, 12u);
  EXPECT_EQ(Look(7, "a"), Answer::kAbsent);
  // A commit from a record the cache was not at: it cannot follow, and lets the directory go.
  cache.Commit(7, "r9", "r10", {{"c", meta::Dentry{13, 8}}});
  EXPECT_FALSE(cache.Has(7));
}

TEST_F(DirCacheTest, ADirectoryThisNodeCreatedIsKnownEmpty) {
  cache.Created(9, "r1", Now());
  EXPECT_EQ(Look(9, "x"), Answer::kAbsent);
  EXPECT_EQ(cache.EmptyAt(9, "r1"), std::optional<bool>(true));
  EXPECT_EQ(cache.EmptyAt(9, "r2"), std::nullopt);
}

TEST_F(DirCacheTest, WithoutNoticesADirectoryLastsTheLease) {
  listening = false;
  Load(7, "r1", {{"a", {10, 8}}}, /*now=*/1);  // loaded long ago
  EXPECT_EQ(Look(7, "a"), Answer::kUnknown);
  EXPECT_FALSE(cache.Has(7));
  listening = true;  // while notices are heard it is trusted until one says otherwise
  EXPECT_EQ(Look(7, "a"), Answer::kPresent);
}

TEST_F(DirCacheTest, MissedNoticesDropEverything) {
  Load(7, "r1", {{"a", {10, 8}}});
  Load(8, "r1", {{"b", {11, 8}}});
  cache.Clear();
  EXPECT_EQ(Look(7, "a"), Answer::kUnknown);
  EXPECT_EQ(Look(8, "b"), Answer::kUnknown);
}

TEST_F(DirCacheTest, LargeDirectoriesAreNotKeptAndMemoryIsBounded) {
  Entries big;
  for (int i = 0; i < 11; ++i) big.push_back({"f" + std::to_string(i), {uint64_t(100 + i), 8}});
  cache.Begin(7);
  cache.End(7, "r1", big, Now());  // over max_dir
  EXPECT_FALSE(cache.Has(7));
  cache.TooLarge(7);
  EXPECT_FALSE(cache.Loadable(7));
  // 100 entries at most: loading more directories lets the oldest go.
  for (uint64_t dir = 20; dir < 32; ++dir) {
    Entries e;
    for (int i = 0; i < 10; ++i) e.push_back({"f" + std::to_string(i), {dir * 100 + i, 8}});
    Load(dir, "r", e);
  }
  EXPECT_LE(cache.stats().entries, 100u);
  EXPECT_FALSE(cache.Has(20));
  EXPECT_TRUE(cache.Has(31));
}

}  // namespace
}  // namespace cairn::fs
