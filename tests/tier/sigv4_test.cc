// SigV4 against published vectors: cases of the AWS SigV4 test suite (aws-sig-v4-test-suite, as
// also shipped in aws-c-auth's tests) and the GetObject example of the S3 documentation
// ("Authenticating Requests: Using the Authorization Header").
#include "tier/sigv4.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::tier {
namespace {

const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
constexpr char kSuiteTime[] = "20150830T123600Z";
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kSuitePrefix[] =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";

SigV4Request SuiteGet(std::string path) {
  SigV4Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteTime}};
  r.payload_sha256 = kEmptySha256;
  return r;
}

std::string SignSuite(const SigV4Request& r, const Credentials& c = kSuiteCredentials) {
  return SignV4(r, c, "us-east-1", "service", kSuiteTime);
}

TEST(SigV4Test, Helpers) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("Param1=value1"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(UriEncode("a b/c~d_e.f-g+h*i%", true), "a%20b%2Fc~d_e.f-g%2Bh%2Ai%25");
  EXPECT_EQ(UriEncode("dir/ü x.txt", false), "dir/%C3%BC%20x.txt");
  EXPECT_EQ(CanonicalQueryString({{"b", "2"}, {"a", "x y"}, {"A", "/"}, {"uploads", ""}}),
            "A=%2F&a=x%20y&b=2&uploads=");
}

TEST(SigV4Test, GetVanilla) {
  SigV4Request r = SuiteGet("/");
  EXPECT_EQ(CanonicalRequest(r),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" +
                std::string(kEmptySha256));
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d7"
                              "63fbf31");
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  SigV4Request r = SuiteGet("/");
  r.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec9"
                              "4cdf2500");
}

TEST(SigV4Test, GetVanillaEmptyQueryKey) {
  SigV4Request r = SuiteGet("/");
  r.query = {{"Param1", "value1"}};
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72"
                              "011b9aeb");
}

TEST(SigV4Test, GetVanillaQueryUnreserved) {
  SigV4Request r = SuiteGet("/");
  const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  r.query = {{unreserved, unreserved}};
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb1"
                              "43a40197");
}

TEST(SigV4Test, GetUtf8Path) {
  SigV4Request r = SuiteGet(UriEncode("/\xE1\x88\xB4", false));  // "/ሴ"
  EXPECT_EQ(r.path, "/%E1%88%B4");
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd031"
                              "41be5d85");
}

TEST(SigV4Test, GetVanillaUtf8Query) {
  SigV4Request r = SuiteGet("/");
  r.query = {{"\xE1\x88\xB4", "bar"}};
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c902"
                              "7818dd04");
}

TEST(SigV4Test, GetHeaderValueTrim) {
  SigV4Request r = SuiteGet("/");
  r.headers.emplace_back("My-Header1", " value1");
  r.headers.emplace_back("My-Header2", " \"a   b   c\"");
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                              "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee3597"
                              "57a9c736");
}

TEST(SigV4Test, GetVanillaWithSessionToken) {
  Credentials c = kSuiteCredentials;
  c.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  SigV4Request r = SuiteGet("/");
  r.headers.emplace_back("X-Amz-Security-Token", c.session_token);
  EXPECT_EQ(SignSuite(r, c), std::string(kSuitePrefix) +
                                 "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                                 "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c6"
                                 "6dd9f74e7f8");
}

TEST(SigV4Test, PostXWwwFormUrlencoded) {
  SigV4Request r;
  r.method = "POST";
  r.path = "/";
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
               {"Host", "example.amazonaws.com"},
               {"X-Amz-Date", kSuiteTime}};
  r.payload_sha256 = Sha256Hex("Param1=value1");
  EXPECT_EQ(SignSuite(r), std::string(kSuitePrefix) +
                              "SignedHeaders=content-type;host;x-amz-date, "
                              "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0"
                              "fe09473a");
}

// The S3 documentation's example: GET /test.txt with Range: bytes=0-9 from examplebucket.
TEST(SigV4Test, S3GetObjectExample) {
  const Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  SigV4Request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptySha256},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_sha256 = kEmptySha256;
  EXPECT_EQ(Sha256Hex(CanonicalRequest(r)),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(SignV4(r, c, "us-east-1", "s3", "20130524T000000Z"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

}  // namespace
}  // namespace cairn::tier
