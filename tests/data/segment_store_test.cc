#include "data/segment_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "kv/memory_kv_store.h"

namespace cairn::data {
namespace {

class SegmentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-seg-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/segments");
    options_.segment_size = 1 << 20;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = SegmentStore::Open(dir_, &kv_, options_);
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
  }
  std::string Pattern(size_t n, char seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
    return s;
  }

  std::string dir_;
  kv::MemoryKvStore kv_;
  SegmentStoreOptions options_;
  std::unique_ptr<SegmentStore> store_;
};

TEST_F(SegmentStoreTest, AppendsAndReadsBackWindows) {
  std::string data = Pattern(200000, 'a');
  auto e = store_->Append(5, 0, data.data(), data.size());
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->crcs.size(), 4u);  // 64 KiB chunks
  std::string out(data.size(), '\0');
  ASSERT_TRUE(store_->Read(*e, 0, e->length, out.data()).ok());
  EXPECT_EQ(out, data);
  // An unaligned window in the middle, spanning a chunk boundary.
  std::string part(70000, '\0');
  ASSERT_TRUE(store_->Read(*e, 60000, 70000, part.data()).ok());
  EXPECT_EQ(part, data.substr(60000, 70000));
  // A trimmed extent (skip) reads its own window.
  meta::Extent trimmed = *e;
  trimmed.skip = 100;
  trimmed.length = 1000;
  std::string t(1000, '\0');
  ASSERT_TRUE(store_->Read(trimmed, 0, 1000, t.data()).ok());
  EXPECT_EQ(t, data.substr(100, 1000));
}

TEST_F(SegmentStoreTest, SmallBlobsPackIntoOneSegment) {
  std::vector<meta::Extent> extents;
  for (int i = 0; i < 100; ++i) {
    std::string d = Pattern(5000, static_cast<char>(i));
    extents.push_back(*store_->Append(100 + i, 0, d.data(), d.size()));
  }
  EXPECT_EQ(store_->List().size(), 1u);
  for (int i = 0; i < 100; ++i) {
    std::string out(5000, '\0');
    ASSERT_TRUE(store_->Read(extents[i], 0, 5000, out.data()).ok());
    EXPECT_EQ(out, Pattern(5000, static_cast<char>(i)));
  }
}

TEST_F(SegmentStoreTest, RollsToANewSegmentWhenFull) {
  std::string d = Pattern(400000, 'x');
  std::vector<meta::Extent> extents;
  for (int i = 0; i < 12; ++i) {
    auto e = store_->Append(1, i * d.size(), d.data(), d.size());
    ASSERT_TRUE(e);
    extents.push_back(*e);
  }
  // Full segments seal in the background; they read back and sync while that runs.
  ASSERT_TRUE(store_->SyncActive().ok());
  std::string out(d.size(), '\0');
  for (const auto& e : extents) {
    ASSERT_TRUE(store_->Read(e, 0, e.length, out.data()).ok());
    EXPECT_EQ(out, d);
  }
  ASSERT_TRUE(store_->WaitForSeals().ok());
  auto list = store_->List();
  EXPECT_GE(list.size(), 4u);
  int sealed = 0;
  for (auto& s : list) sealed += s.state == meta::SegmentState::kSealed;
  EXPECT_EQ(sealed, static_cast<int>(list.size()) - 1);
  // A clean close seals the last one too; everything reads back after reopening.
  ASSERT_TRUE(store_->Close().ok());
  Reopen();
  for (auto& s : store_->List()) EXPECT_EQ(s.state, meta::SegmentState::kSealed) << s.id;
  for (const auto& e : extents) {
    ASSERT_TRUE(store_->Read(e, 0, e.length, out.data()).ok());
    EXPECT_EQ(out, d);
  }
}

TEST_F(SegmentStoreTest, CorruptByteIsDetectedNeverReturned) {
  std::string data = Pattern(100000, 'q');
  auto e = store_->Append(7, 0, data.data(), data.size());
  ASSERT_TRUE(e);
  ASSERT_TRUE(store_->Close().ok());
  {
    int fd = ::open(SegmentStore::SegmentPath(dir_, e->segment_id).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, e->blob_offset + 70000), 1);
    c ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &c, 1, e->blob_offset + 70000), 1);
    ::close(fd);
  }
  Reopen();
  std::string out(100000, '\0');
  Status st = store_->Read(*e, 0, 100000, out.data());
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  // The first chunk is intact and still readable on its own.
  EXPECT_TRUE(store_->Read(*e, 0, 1000, out.data()).ok());
}

TEST_F(SegmentStoreTest, TruncatedSegmentIsCorruption) {
  std::string data = Pattern(50000, 'z');
  auto e = store_->Append(7, 0, data.data(), data.size());
  ASSERT_TRUE(store_->Close().ok());
  ASSERT_EQ(::truncate(SegmentStore::SegmentPath(dir_, e->segment_id).c_str(),
                       static_cast<off_t>(e->blob_offset + 100)),
            0);
  Reopen();
  std::string out(50000, '\0');
  EXPECT_EQ(store_->Read(*e, 0, 50000, out.data()).code(), Code::kCorruption);
}

TEST_F(SegmentStoreTest, ReopenAfterCrashSealsTheOpenSegment) {
  std::string data = Pattern(1000, 'c');
  auto e = store_->Append(3, 0, data.data(), data.size());
  ASSERT_TRUE(e);
  // As after kill -9: the segment record still says open when the store comes back.
  std::string open_record = *kv_.Get(meta::SegmentKey(e->segment_id));
  store_.reset();
  kv::WriteBatch b;
  b.Put(meta::SegmentKey(e->segment_id), open_record);
  ASSERT_TRUE(kv_.Write(b, false).ok());
  Reopen();
  auto list = store_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, meta::SegmentState::kSealed);
  std::string out(1000, '\0');
  ASSERT_TRUE(store_->Read(*e, 0, 1000, out.data()).ok());
  EXPECT_EQ(out, data);
  // New appends go to a new segment.
  auto f = store_->Append(3, 1000, data.data(), data.size());
  EXPECT_NE(f->segment_id, e->segment_id);
}

// Stands in for the object tier: "uploads" are copies of the segment files kept in memory.
class CopyRemote : public RemoteSegments {
 public:
  explicit CopyRemote(std::string dir) : dir_(std::move(dir)) {}
  void Upload(uint64_t id) {
    std::ifstream in(SegmentStore::SegmentPath(dir_, id), std::ios::binary);
    objects_[id].assign(std::istreambuf_iterator<char>(in), {});
  }
  Status ReadRemote(uint64_t id, uint64_t offset, size_t n, char* out) override {
    ++remote_reads;
    const std::string& o = objects_.at(id);
    if (offset + n > o.size()) return Status(Code::kCorruption, "short");
    std::memcpy(out, o.data() + offset, n);
    return Status::Ok();
  }
  void OnRemoteRead(uint64_t) override {}
  void OnRemoved(uint64_t id, bool) override { removed.push_back(id); }
  const std::string& object(uint64_t id) { return objects_.at(id); }

  int remote_reads = 0;
  std::vector<uint64_t> removed;

 private:
  std::string dir_;
  std::map<uint64_t, std::string> objects_;
};

TEST_F(SegmentStoreTest, TierStatesUploadEvictReadRemotelyHydrate) {
  CopyRemote remote(dir_);
  store_->SetRemote(&remote);
  std::string data = Pattern(300000, 'q');
  auto e = store_->Append(7, 0, data.data(), data.size());
  ASSERT_TRUE(e);
  const uint64_t id = e->segment_id;
  auto sealed = store_->SealIfOlderThan(0);
  ASSERT_TRUE(sealed && *sealed);
  // Only sealed segments are uploaded; only uploaded ones are evicted.
  EXPECT_EQ(*store_->Evict(id), 0u);
  remote.Upload(id);
  ASSERT_TRUE(store_->MarkUploaded(id).ok());
  const uint64_t local = store_->LocalBytes();
  auto freed = store_->Evict(id);
  ASSERT_TRUE(freed);
  EXPECT_GT(*freed, data.size());
  EXPECT_EQ(store_->LocalBytes(), local - *freed);
  EXPECT_FALSE(std::filesystem::exists(SegmentStore::SegmentPath(dir_, id)));

  // Evicted data reads from the remote, verified by the same checksums.
  std::string out(data.size(), '\0');
  ASSERT_TRUE(store_->Read(*e, 0, e->length, out.data()).ok());
  EXPECT_EQ(out, data);
  EXPECT_GT(remote.remote_reads, 0);

  // The state survives a reopen; a damaged download is refused; a good one is installed.
  Reopen();
  store_->SetRemote(&remote);
  for (const auto& seg : store_->List()) {
    if (seg.id == id) {
      EXPECT_EQ(seg.state, meta::SegmentState::kEvicted);
    }
  }
  const std::string tmp = store_->HydratePath(id);
  {
    std::ofstream bad(tmp, std::ios::binary);
    bad << remote.object(id).substr(0, 1000);
  }
  EXPECT_EQ(store_->InstallHydrated(id, tmp).code(), Code::kCorruption);
  {
    std::ofstream good(tmp, std::ios::binary);
    good << remote.object(id);
  }
  ASSERT_TRUE(store_->InstallHydrated(id, tmp).ok());
  const int before = remote.remote_reads;
  ASSERT_TRUE(store_->Read(*e, 0, e->length, out.data()).ok());
  EXPECT_EQ(out, data);
  EXPECT_EQ(remote.remote_reads, before);  // local again
  ASSERT_TRUE(store_->Remove(id).ok());
  EXPECT_EQ(remote.removed, std::vector<uint64_t>{id});
}

TEST_F(SegmentStoreTest, CorruptRemoteDataIsDetected) {
  CopyRemote remote(dir_);
  store_->SetRemote(&remote);
  std::string data = Pattern(100000, 'c');
  auto e = store_->Append(9, 0, data.data(), data.size());
  ASSERT_TRUE(e);
  ASSERT_TRUE(store_->SealIfOlderThan(0));
  // Flip a byte of the blob before "uploading".
  {
    auto f = File::Open(SegmentStore::SegmentPath(dir_, e->segment_id), O_RDWR);
    ASSERT_TRUE(f);
    char c = 0x55;
    ASSERT_TRUE(f->WriteAt(e->blob_offset + 10, &c, 1).ok());
  }
  remote.Upload(e->segment_id);
  ASSERT_TRUE(store_->MarkUploaded(e->segment_id).ok());
  ASSERT_TRUE(store_->Evict(e->segment_id));
  std::string out(data.size(), '\0');
  EXPECT_EQ(store_->Read(*e, 0, e->length, out.data()).code(), Code::kCorruption);
}

TEST(RecordHeader, GoldenBytesAndDamage) {
  std::string h = EncodeRecordHeader({4096, 42, 8192});
  ASSERT_EQ(h.size(), kRecordHeaderSize);
  auto back = DecodeRecordHeader(h);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->length, 4096u);
  EXPECT_EQ(back->ino, 42u);
  EXPECT_EQ(back->file_offset, 8192u);
  h[10] ^= 1;
  EXPECT_FALSE(DecodeRecordHeader(h));
  EXPECT_TRUE(CheckSegmentHeader(EncodeSegmentHeader(9), 9).ok());
  EXPECT_FALSE(CheckSegmentHeader(EncodeSegmentHeader(9), 10).ok());
}

}  // namespace
}  // namespace cairn::data
