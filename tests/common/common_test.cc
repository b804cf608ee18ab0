#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/coding.h"
#include "common/status.h"
#include "common/units.h"

namespace cairn {
namespace {

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32c, SeedChainsLikeOneCall) {
  std::string a = "hello ", b = "world";
  EXPECT_EQ(Crc32c(b.data(), b.size(), Crc32c(a)), Crc32c(a + b));
}

TEST(Coding, BigEndianKeysSortNumerically) {
  std::string a, b;
  PutBig64(&a, 255);
  PutBig64(&b, 256);
  EXPECT_LT(a, b);
  EXPECT_EQ(GetBig64(b), 256u);
}

TEST(Coding, DecoderRefusesToReadPastTheEnd) {
  std::string s;
  PutFixed32(&s, 7);
  Decoder d(s);
  uint64_t v64;
  EXPECT_FALSE(d.Get64(&v64));
  uint32_t v32;
  EXPECT_TRUE(d.Get32(&v32));
  EXPECT_EQ(v32, 7u);
  EXPECT_FALSE(d.Get32(&v32));
}

TEST(Units, ParsesSizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("2TiB"), 2ull << 40);
  EXPECT_EQ(*ParseSize("200MB"), 200000000u);
  EXPECT_EQ(*ParseSize("4kib"), 4096u);
}

TEST(Units, RejectsJunk) {
  for (const char* junk :
       {"", "MiB", "-1", "12XB", "1.5GiB", "99999999999999999999", "20000000TiB"}) {
    auto r = ParseSize(junk);
    ASSERT_FALSE(r) << junk;
    EXPECT_EQ(r.error().code(), Code::kInvalid);
  }
}

TEST(Status, MapsToErrno) {
  EXPECT_EQ(ToErrno(Code::kNotFound), ENOENT);
  EXPECT_EQ(ToErrno(Code::kCorruption), EIO);
  EXPECT_EQ(ToErrno(Code::kNameTooLong), ENAMETOOLONG);
  Status st(Code::kExists, "a/b");
  EXPECT_EQ(st.ToString(), "already exists: a/b");
}

Result<int> Half(int x) {
  if (x % 2) return Err(Code::kInvalid, "odd");
  return x / 2;
}
Result<int> Quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).error().message(), "odd");
}

}  // namespace
}  // namespace cairn
