// The pushed-snapshot formats: manifest and refs codecs, key layout, names, and the parallel
// runner the push and restore use.
#include "snap/manifest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/thread_pool.h"
#include "tier/object_store.h"

namespace cairn::snap {
namespace {

Manifest Sample() {
  Manifest m;
  m.name = "daily-1";
  m.fs_uuid = "3f2edd46-9c20-42c7-a7ca-87aed1f3c3a8";
  m.created = 1790000000;
  m.created_nsec = 42;
  m.pushed = 1790000100;
  m.inline_max = 4096;
  m.segment_size = 64 << 20;
  m.files = 3;
  m.file_bytes = 12345;
  m.metadata = {{"000012.sst", MetaKey(m.fs_uuid, std::string(64, 'a')), 100, std::string(64, 'a')},
                {"CURRENT", MetaKey(m.fs_uuid, std::string(64, 'b')), 16, std::string(64, 'b')}};
  m.segments = {{1, m.fs_uuid + "/segments/0000000000000001.seg", 1 << 20}};
  return m;
}

TEST(Manifest, RoundTrips) {
  Manifest m = Sample();
  auto back = DecodeManifest(EncodeManifest(m), "k");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->fs_uuid, m.fs_uuid);
  EXPECT_EQ(back->created, m.created);
  EXPECT_EQ(back->created_nsec, m.created_nsec);
  EXPECT_EQ(back->files, m.files);
  ASSERT_EQ(back->metadata.size(), 2u);
  EXPECT_EQ(back->metadata[0].file, "000012.sst");
  EXPECT_EQ(back->metadata[1].sha256, std::string(64, 'b'));
  ASSERT_EQ(back->segments.size(), 1u);
  EXPECT_EQ(back->segments[0].size, 1u << 20);
  EXPECT_EQ(back->Keys().size(), 3u);
}

TEST(Manifest, DamageIsDetected) {
  const std::string good = EncodeManifest(Sample());
  // Any changed byte of the body fails the checksum (or the parse), never decodes.
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] ^= 1;
    if (bad == good) continue;
    auto m = DecodeManifest(bad, "k");
    if (m) {
      // Only whitespace or JSON formatting may change without effect.
      EXPECT_EQ(EncodeManifest(*m), good) << "byte " << i;
    } else {
      EXPECT_EQ(m.error().code(), Code::kCorruption) << "byte " << i;
    }
  }
  EXPECT_FALSE(DecodeManifest(good.substr(0, good.size() / 2), "k"));
  EXPECT_FALSE(DecodeManifest("", "k"));
  EXPECT_FALSE(DecodeManifest("{\"manifest\":{},\"sha256\":\"x\"}", "k"));
}

TEST(Manifest, OtherVersionsAndUnsafeKeysAreRefused) {
  Manifest m = Sample();
  m.version = 2;
  auto v2 = DecodeManifest(EncodeManifest(m), "k");
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code(), Code::kNotSupported);
  EXPECT_NE(v2.error().message().find("version 2"), std::string::npos);
  m = Sample();
  m.segments[0].key = "/etc/passwd";
  EXPECT_FALSE(DecodeManifest(EncodeManifest(m), "k"));
  m = Sample();
  m.metadata[0].file = "../escape";
  EXPECT_FALSE(DecodeManifest(EncodeManifest(m), "k"));
}

TEST(Manifest, KeysNamesAndOwners) {
  EXPECT_EQ(ManifestKey("s1", "u"), "snapshots/s1/u.json");
  EXPECT_EQ(MetaKey("u", "ab"), "u/meta/ab");
  EXPECT_EQ(RefsKey("u"), "refs/u.json");
  EXPECT_EQ(KeyOwner("u/segments/1.seg"), "u");
  EXPECT_EQ(KeyOwner("snapshots/s1/u.json"), "");
  EXPECT_EQ(KeyOwner("refs/u.json"), "");
  EXPECT_EQ(KeyOwner("flat"), "");
  EXPECT_TRUE(CheckSnapshotName("daily-2026-11-27").ok());
  EXPECT_TRUE(CheckSnapshotName("épreuve").ok());
  for (const std::string& bad :
       std::vector<std::string>{"", ".hidden", "a/b", "x@y", std::string(129, 'n'), "a\nb"}) {
    EXPECT_FALSE(CheckSnapshotName(bad).ok()) << bad;
  }
}

TEST(Refs, RoundTripAndDamage) {
  Refs r{"u2", "snapshots/s1/u.json", {"u/segments/0000000000000001.seg"}};
  auto back = DecodeRefs(EncodeRefs(r), "k");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->fs_uuid, "u2");
  EXPECT_EQ(back->keys, r.keys);
  EXPECT_FALSE(DecodeRefs("{\"format\":\"other\"}", "k"));
  EXPECT_FALSE(DecodeRefs("not json", "k"));
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto path = std::filesystem::temp_directory_path() / "cairn-sha-test";
  { std::ofstream(path) << "abc"; }
  auto file = Sha256File(path);
  ASSERT_TRUE(file);
  EXPECT_EQ(*file, Sha256Hex("abc"));
  std::filesystem::remove(path);
}

TEST(FindSnapshot, ByNameAndAmbiguity) {
  auto root = std::filesystem::temp_directory_path() / "cairn-find-snapshot";
  std::filesystem::remove_all(root);
  auto store = tier::OpenObjectStore("file://" + root.string());
  ASSERT_TRUE(store);
  Manifest a = Sample();
  ASSERT_TRUE((*store)->Put(ManifestKey(a.name, a.fs_uuid), EncodeManifest(a)).ok());
  auto found = FindSnapshot(**store, "daily-1");
  ASSERT_TRUE(found) << found.error().ToString();
  EXPECT_EQ(found->fs_uuid, a.fs_uuid);
  Manifest b = Sample();
  b.fs_uuid = "00000000-0000-4000-8000-000000000000";
  ASSERT_TRUE((*store)->Put(ManifestKey(b.name, b.fs_uuid), EncodeManifest(b)).ok());
  auto ambiguous = FindSnapshot(**store, "daily-1");
  ASSERT_FALSE(ambiguous);
  EXPECT_NE(ambiguous.error().message().find("daily-1@" + b.fs_uuid), std::string::npos);
  auto qualified = FindSnapshot(**store, "daily-1@" + b.fs_uuid);
  ASSERT_TRUE(qualified);
  EXPECT_EQ(qualified->fs_uuid, b.fs_uuid);
  auto missing = FindSnapshot(**store, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  ASSERT_TRUE((*store)->Put("snapshots/broken/u.json", "{garbage").ok());
  auto listing = ListSnapshots(**store);
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->manifests.size(), 2u);
  EXPECT_EQ(listing->damaged.size(), 1u);
  std::filesystem::remove_all(root);
}

TEST(RunParallel, RunsEverythingAndReportsTheFirstError) {
  std::atomic<int> sum{0};
  EXPECT_TRUE(RunParallel(100, 4, [&](size_t i) {
                sum += static_cast<int>(i);
                return Status::Ok();
              }).ok());
  EXPECT_EQ(sum.load(), 4950);
  int ticks = 0;
  Status st = RunParallel(
      50, 3, [&](size_t i) { return i == 7 ? Status(Code::kIo, "item 7") : Status::Ok(); },
      [&] { ++ticks; });
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_GE(ticks, 1);
  EXPECT_TRUE(RunParallel(0, 4, [](size_t) { return Status(Code::kIo, "never"); }).ok());
}

}  // namespace
}  // namespace cairn::snap
