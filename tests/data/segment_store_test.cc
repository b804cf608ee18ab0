#include "data/segment_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

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
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->Append(1, i * d.size(), d.data(), d.size()));
  auto list = store_->List();
  EXPECT_GE(list.size(), 2u);
  int sealed = 0;
  for (auto& s : list) sealed += s.state == meta::SegmentState::kSealed;
  EXPECT_EQ(sealed, static_cast<int>(list.size()) - 1);
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
