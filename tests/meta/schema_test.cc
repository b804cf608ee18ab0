// Golden bytes pin the on-disk formats of docs/FORMATS.md: a change here is a format change.
#include "meta/schema.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "kv/memory_kv_store.h"
#include "meta/meta_store.h"

namespace cairn::meta {
namespace {

std::string Hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

TEST(Schema, KeysAreBigEndianAndTagged) {
  EXPECT_EQ(Hex(InodeKey(0x0102)), "490000000000000102");
  EXPECT_EQ(Hex(DentryKey(1, "ab")), "4400000000000000016162");
  EXPECT_EQ(Hex(ExtentKey(2, 0x10000)),
            "45000000000000000200000000000100"
            "00");
  EXPECT_EQ(Hex(SegmentKey(3)), "530000000000000003");
  EXPECT_EQ(KeyU64(ExtentKey(7, 99), true), 99u);
  EXPECT_EQ(KeyName(DentryKey(5, "name")), "name");
  EXPECT_LT(ExtentKey(1, 255), ExtentKey(1, 256));
  EXPECT_EQ(PrefixEnd(DentryPrefix(1)), DentryPrefix(2));
}

Inode SampleInode() {
  Inode i;
  i.ino = 42;
  i.mode = S_IFREG | 0644;
  i.uid = 1000;
  i.gid = 100;
  i.nlink = 1;
  i.size = 3;
  i.atime = {1, 2};
  i.mtime = {3, 4};
  i.ctime = {5, 6};
  i.is_inline = true;
  i.inline_data = "abc";
  return i;
}

TEST(Schema, InodeGoldenBytes) {
  // version 2, inline flag, mode 0100644, uid 1000, gid 100, nlink 1, size 3, rdev 0, parent 0,
  // atime 1.2, mtime 3.4, ctime 5.6, stored 7, then the inline bytes "abc".
  Inode sample = SampleInode();
  sample.stored = 7;
  EXPECT_EQ(Hex(EncodeInode(sample)),
            "0201a4810000e8030000640000000100000003000000000000000000000000000000000000000000"
            "0000010000000000000002000000030000000000000004000000050000000000000006000000"
            "0700000000000000616263");
  auto back = DecodeInode(42, EncodeInode(sample));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, sample);
  // Flag bit 2: known to have no extended attributes.
  sample.no_xattrs = true;
  EXPECT_EQ(Hex(EncodeInode(sample)).substr(0, 4), "0205");
  back = DecodeInode(42, EncodeInode(sample));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->no_xattrs);
}

TEST(Schema, InodeVersion1IsReadWithStoredUnknown) {
  std::string v1 = Unhex(
      "0101a4810000e8030000640000000100000003000000000000000000000000000000000000000000"
      "0000010000000000000002000000030000000000000004000000050000000000000006000000616263");
  auto back = DecodeInode(42, v1);
  ASSERT_TRUE(back) << back.error().ToString();
  Inode expected = SampleInode();
  expected.stored = UINT64_MAX;
  EXPECT_EQ(*back, expected);
}

TEST(Schema, ExtentGoldenBytes) {
  Extent e;
  e.file_offset = 4096;
  e.segment_id = 9;
  e.blob_offset = 96;
  e.blob_length = 70000;
  e.skip = 10;
  e.length = 100;
  e.crcs = {0xdeadbeef, 0x01020304};
  // version 1, segment 9, blob offset 96, blob length 70000, skip 10, length 100, 2 crcs.
  EXPECT_EQ(Hex(EncodeExtent(e)),
            "0109000000000000006000000000000000701101000a0000006400000002000000efbeadde04030201");
  auto back = DecodeExtent(4096, EncodeExtent(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, e);
}

TEST(Schema, SegmentGoldenBytes) {
  // version 1, state uploaded, size 4096: the form of every segment written by this file system.
  SegmentRecord plain{7, SegmentState::kUploaded, 4096, "", false};
  EXPECT_EQ(Hex(EncodeSegment(plain)), "01030010000000000000");
  // A segment of a restored file system: then flags (1: pushed) and the origin's uuid.
  SegmentRecord foreign{7, SegmentState::kEvicted, 4096, "ab", true};
  EXPECT_EQ(Hex(EncodeSegment(foreign)),
            "010400100000000000000102000000"
            "6162");
  for (const auto& rec : {plain, foreign}) {
    auto back = DecodeSegment(7, EncodeSegment(rec));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, rec);
  }
  std::string enc = EncodeSegment(foreign);
  EXPECT_FALSE(DecodeSegment(7, enc.substr(0, enc.size() - 1)));
  EXPECT_FALSE(DecodeSegment(7, enc + "x"));
}

TEST(Schema, SnapshotRecordRoundTripsAndRejectsDamage) {
  SnapshotRecord r;
  r.name = "s1";
  r.index = 3;
  r.created = {1790000000, 5};
  r.pins = {1, 2, 9};
  r.pushed_to = {"s3://bucket/fs"};
  std::string enc = EncodeSnapshot(r);
  auto back = DecodeSnapshot("s1", enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
  EXPECT_EQ(SnapshotKey("s1"), "Ns1");
  for (size_t n = 0; n < enc.size(); ++n) EXPECT_FALSE(DecodeSnapshot("s1", enc.substr(0, n))) << n;
  r.index = 0;  // not a valid index
  EXPECT_FALSE(DecodeSnapshot("s1", EncodeSnapshot(r)));
}

TEST(Schema, TruncatedOrDamagedRecordsAreCorruption) {
  std::string inode = EncodeInode(SampleInode());
  for (size_t n = 0; n < 60; ++n) {
    auto r = DecodeInode(42, inode.substr(0, n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code(), Code::kCorruption);
  }
  inode[0] = 9;  // unknown version
  EXPECT_FALSE(DecodeInode(42, inode));
  Extent e;
  e.blob_length = 10;
  e.length = 10;
  e.crcs = {1};
  std::string ext = EncodeExtent(e);
  EXPECT_FALSE(DecodeExtent(0, ext.substr(0, ext.size() - 1)));
  e.crcs = {1, 2};  // wrong number of chunk checksums for the blob
  EXPECT_FALSE(DecodeExtent(0, EncodeExtent(e)));
  EXPECT_FALSE(DecodeDentry("short"));
}

TEST(Schema, CheckNameEnforcesPosixRules) {
  EXPECT_TRUE(CheckName("ok.jpg").ok());
  EXPECT_TRUE(CheckName(std::string(255, 'x')).ok());
  EXPECT_EQ(CheckName(std::string(256, 'x')).code(), Code::kNameTooLong);
  EXPECT_EQ(CheckName("").code(), Code::kInvalid);
  EXPECT_EQ(CheckName(".").code(), Code::kInvalid);
  EXPECT_EQ(CheckName("..").code(), Code::kInvalid);
  EXPECT_EQ(CheckName("a/b").code(), Code::kInvalid);
  EXPECT_EQ(CheckName(std::string("a\0b", 3)).code(), Code::kInvalid);
}

TEST(Schema, TotalsOfClusterNodesHaveShardsOfTheirOwn) {
  EXPECT_EQ(TotalKey(kTotalFiles, 0), CounterKey(kTotalFiles));
  EXPECT_EQ(TotalKey(kTotalFiles, 0x1a), "Mtotal.files@0000001a");
  kv::MemoryKvStore kv;
  kv::WriteBatch batch;
  batch.Add(TotalKey(kTotalFiles, 0), 5);
  batch.Add(TotalKey(kTotalFiles, 1), 7);
  batch.Add(TotalKey(kTotalFiles, 2), -2);
  batch.Add(TotalKey(kTotalBytes, 1), 1000);  // another total, not summed in
  ASSERT_TRUE(kv.Write(batch, false).ok());
  MetaStore meta(&kv);
  EXPECT_EQ(*meta.ReadTotal(kTotalFiles), 10);
  EXPECT_EQ(*meta.ReadTotal(kTotalSymlinks), 0);
}

TEST(MetaStore, ExtentsOfFileAfterFileThroughOneIterator) {
  kv::MemoryKvStore kv;
  kv::WriteBatch batch;
  auto extent = [](uint64_t off, uint64_t seg) {
    Extent e;
    e.file_offset = off;
    e.segment_id = seg;
    e.blob_length = e.length = 100;
    e.crcs = {1};
    return e;
  };
  // Inode 3: two extents; 4: none; 5: one (and an inode record between, which is no extent).
  for (const auto& [ino, e] :
       {std::pair{3, extent(0, 1)}, {3, extent(100, 2)}, {5, extent(0, 3)}}) {
    batch.Put(ExtentKey(ino, e.file_offset), EncodeExtent(e));
  }
  batch.Put(InodeKey(4), "not an extent");
  ASSERT_TRUE(kv.Write(batch, false).ok());
  MetaStore meta(&kv);
  auto it = meta.NewExtentIterator();
  for (int pass = 0; pass < 2; ++pass) {  // forward and back: each call seeks afresh
    for (uint64_t ino :
         pass == 0 ? std::vector<uint64_t>{3, 4, 5} : std::vector<uint64_t>{5, 4, 3}) {
      auto got = meta.AllExtents(*it, ino);
      ASSERT_TRUE(got) << got.error().ToString();
      auto want = meta.GetExtents(ino, 0, UINT64_MAX);
      ASSERT_TRUE(want);
      EXPECT_EQ(*got, *want) << ino;
      EXPECT_EQ(got->size(), ino == 3 ? 2u : ino == 4 ? 0u : 1u) << ino;
    }
  }
}

TEST(Schema, OrphanValueNamesTheNode) {
  EXPECT_EQ(OrphanValue(0), "");
  EXPECT_EQ(Hex(OrphanValue(7)), "07000000");
  EXPECT_EQ(OrphanNode(OrphanValue(7)), 7u);
  EXPECT_EQ(OrphanNode(""), 0u);  // written before cluster mode: the single node's
}

// Allocators of several nodes share one counter: every number goes to exactly one of them.
TEST(IdAllocator, AllocatorsSharingACounterNeverHandOutANumberTwice) {
  kv::MemoryKvStore kv;
  constexpr int kNodes = 4, kPerThread = 3 * IdAllocator::kBlock;
  std::vector<std::unique_ptr<IdAllocator>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.push_back(std::make_unique<IdAllocator>(&kv, "next_ino", 2));
    ASSERT_TRUE(nodes.back()->Load().ok());
  }
  std::mutex mu;
  std::set<uint64_t> seen;
  bool duplicate = false;
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      std::vector<uint64_t> mine;
      for (int n = 0; n < kPerThread; ++n) {
        auto id = nodes[i]->Next();
        ASSERT_TRUE(id.has_value());
        mine.push_back(*id);
      }
      std::lock_guard lock(mu);
      for (uint64_t id : mine) duplicate |= !seen.insert(id).second;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(duplicate);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kNodes * kPerThread));
  EXPECT_GE(*seen.begin(), 2u);
  // A node that starts later continues after everything reserved.
  IdAllocator late(&kv, "next_ino", 2);
  ASSERT_TRUE(late.Load().ok());
  EXPECT_GT(*late.Next(), *seen.rbegin());
}

}  // namespace
}  // namespace cairn::meta
