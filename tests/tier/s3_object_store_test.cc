// S3ObjectStore against a real S3 server (s3rver on loopback, see tests/s3_server.h), checked
// where it matters with an independent client (the Debian awscli). Skips when node or s3rver is
// not installed.
#include "tier/s3_object_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/metrics.h"
#include "s3_server.h"

namespace cairn::tier {
namespace {

using cairn::testing::RunAwsCli;
using cairn::testing::S3Server;
using std::chrono::milliseconds;

constexpr char kBucket[] = "cairn-test";
// s3rver checks the access key but not the signature, so any secret works; this one is long and
// unusual, so that finding it in a message means it leaked.
constexpr char kSecret[] = "Zx9-TopSecret-Key/do+not+log-0123456789";
constexpr char kSessionToken[] = "Session-Token-Secret-abcdef0123456789";

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void PointEnvAt(const std::string& endpoint, const std::string& access_key = "S3RVER") {
  ::setenv("AWS_ENDPOINT_URL", endpoint.c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", access_key.c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", kSecret, 1);
  ::setenv("AWS_SESSION_TOKEN", kSessionToken, 1);
  ::setenv("AWS_REGION", "us-east-1", 1);
  ::unsetenv("AWS_ENDPOINT_URL_S3");
  ::unsetenv("AWS_S3_ADDRESSING_STYLE");
  ::unsetenv("AWS_PROFILE");
}

class S3ObjectStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = S3Server::Start(kBucket, &skip_reason_).release();
    tmp_ = std::filesystem::temp_directory_path() / ("cairn-s3-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(tmp_);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(tmp_);
  }
  void SetUp() override {
    if (server_ == nullptr) GTEST_SKIP() << skip_reason_;
    PointEnvAt(server_->endpoint());
  }

  // A store on a prefix of its own for the running test.
  std::unique_ptr<ObjectStore> Open(StoreOptions options = {}, std::string prefix = {}) {
    if (prefix.empty()) prefix = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto store = OpenS3ObjectStore(std::string(kBucket) + "/" + prefix, options);
    EXPECT_TRUE(store.has_value()) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  std::string Tmp(const std::string& name) const { return (tmp_ / name).string(); }
  std::string Prefix() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static S3Server* server_;
  static std::string skip_reason_;
  static std::filesystem::path tmp_;
};

S3Server* S3ObjectStoreTest::server_ = nullptr;
std::string S3ObjectStoreTest::skip_reason_;
std::filesystem::path S3ObjectStoreTest::tmp_;

TEST_F(S3ObjectStoreTest, PutGetHeadDelete) {
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Describe(), "s3://cairn-test/PutGetHeadDelete (" + server_->endpoint() + ")");
  const std::string data = "hello, object world";
  const int64_t before = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  ASSERT_TRUE(store->Put("a/b.txt", data).ok());

  auto info = store->Head("a/b.txt");
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->key, "a/b.txt");
  EXPECT_EQ(info->size, data.size());
  EXPECT_FALSE(info->etag.empty());
  EXPECT_EQ(info->etag.find('"'), std::string::npos);
  EXPECT_NEAR(static_cast<double>(info->mtime), static_cast<double>(before), 5.0);

  char buf[64] = {};
  auto n = store->GetRange("a/b.txt", 0, data.size(), buf);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), data);
  n = store->GetRange("a/b.txt", 7, 6, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "object");
  // Reading across the end returns what is there; at or past the end, nothing.
  n = store->GetRange("a/b.txt", 14, 50, buf);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), "world");
  n = store->GetRange("a/b.txt", data.size(), 10, buf);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(*n, 0u);
  n = store->GetRange("a/b.txt", 0, 0, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);

  // Replacing an object changes its ETag.
  ASSERT_TRUE(store->Put("a/b.txt", "v2").ok());
  auto info2 = store->Head("a/b.txt");
  ASSERT_TRUE(info2);
  EXPECT_EQ(info2->size, 2u);
  EXPECT_NE(info2->etag, info->etag);

  // Empty objects work.
  ASSERT_TRUE(store->Put("empty", "").ok());
  auto empty = store->Head("empty");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size, 0u);

  auto missing = store->GetRange("nope", 0, 4, buf);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound) << missing.error().ToString();
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  auto missing_head = store->Head("nope");
  ASSERT_FALSE(missing_head);
  EXPECT_EQ(missing_head.error().code(), Code::kNotFound);

  ASSERT_TRUE(store->Delete("a/b.txt").ok());
  EXPECT_TRUE(store->Delete("a/b.txt").ok());  // missing: not an error
  auto gone = store->Head("a/b.txt");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kNotFound);

  EXPECT_EQ(store->Put("", "x").code(), Code::kInvalid);
  EXPECT_EQ(store->Put("/abs", "x").code(), Code::kInvalid);
}

TEST_F(S3ObjectStoreTest, IfMatchDetectsChangedObjects) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Put("obj", "first version").ok());
  auto v1 = store->Head("obj");
  ASSERT_TRUE(v1);
  char buf[64];
  auto n = store->GetRange("obj", 0, 5, buf, v1->etag);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), "first");

  ASSERT_TRUE(store->Put("obj", "second").ok());
  auto v2 = store->Head("obj");
  ASSERT_TRUE(v2);
  n = store->GetRange("obj", 0, 5, buf, v1->etag);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), Code::kChanged) << n.error().ToString();
  // Past the (new, shorter) end with the old ETag: changed, not a clean end of object.
  n = store->GetRange("obj", 10, 3, buf, v1->etag);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), Code::kChanged) << n.error().ToString();
  auto f = store->GetToFile("obj", Tmp("ifmatch"), v1->etag);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code(), Code::kChanged);

  n = store->GetRange("obj", 0, 6, buf, v2->etag);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "second");
  f = store->GetToFile("obj", Tmp("ifmatch"), v2->etag);
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(ReadFile(Tmp("ifmatch")), "second");
}

TEST_F(S3ObjectStoreTest, KeysWithSpacesUtf8AndXmlCharacters) {
  auto store = Open();
  ASSERT_TRUE(store);
  const std::vector<std::string> keys = {
      "dir with spaces/file name.txt",
      "utf8/\xC3\xBC\xC3\xB1\xC3\xAF\x63\xC3\xB6\x64\xC3\xA9-\xE6\x97\xA5\xE6\x9C\xAC.bin",
      "xml/a&b<c>d\"e'f.txt",
      "punct/plus+equals=comma,semi;at@dollar$.txt",
      "punct/percent%20literal~tilde(paren)!.txt",
  };
  for (const auto& k : keys) ASSERT_TRUE(store->Put(k, "data:" + k).ok()) << k;
  for (const auto& k : keys) {
    char buf[256];
    auto n = store->GetRange(k, 0, sizeof(buf), buf);
    ASSERT_TRUE(n) << k << ": " << n.error().ToString();
    EXPECT_EQ(std::string(buf, *n), "data:" + k);
  }
  auto page = store->List("", "", "");
  ASSERT_TRUE(page) << page.error().ToString();
  std::vector<std::string> listed;
  for (const auto& o : page->objects) listed.push_back(o.key);
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);
  // Another client finds the same key.
  auto cli = RunAwsCli(server_->endpoint(), {"s3api", "head-object", "--bucket", kBucket, "--key",
                                             Prefix() + "/" + keys[1]});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("\"ContentLength\": " + std::to_string(keys[1].size() + 5)),
            std::string::npos)
      << cli.out;
}

TEST_F(S3ObjectStoreTest, ListPagesAndCommonPrefixes) {
  StoreOptions options;
  options.max_parallel = 16;
  auto store = Open(options);
  ASSERT_TRUE(store);
  constexpr int kKeys = 2500;
  auto key_of = [](int i) {
    char name[32];
    std::snprintf(name, sizeof(name), "many/k%05d", i);
    return std::string(name);
  };
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&] {
        for (int i; (i = next.fetch_add(1)) < kKeys;) {
          if (!store->Put(key_of(i), std::to_string(i)).ok()) failures.fetch_add(1);
        }
      });
    }
  }
  ASSERT_EQ(failures.load(), 0);

  std::vector<std::string> all;
  std::vector<size_t> page_sizes;
  std::string token;
  do {
    auto page = store->List("many/", "", token, 1000);
    ASSERT_TRUE(page) << page.error().ToString();
    page_sizes.push_back(page->objects.size());
    for (const auto& o : page->objects) {
      all.push_back(o.key);
      EXPECT_EQ(o.size, std::to_string(std::stoi(o.key.substr(6))).size());
      EXPECT_FALSE(o.etag.empty());
      EXPECT_GT(o.mtime, 1600000000);
    }
    token = page->next_token;
  } while (!token.empty() && page_sizes.size() < 10);
  EXPECT_EQ(page_sizes, (std::vector<size_t>{1000, 1000, 500}));
  ASSERT_EQ(all.size(), static_cast<size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(all[i], key_of(i));

  for (const char* k : {"tree/a", "tree/b/x", "tree/c/y", "tree/c/z", "tree/d e/f", "treetop"}) {
    ASSERT_TRUE(store->Put(k, "t").ok());
  }
  auto page = store->List("tree/", "/", "");
  ASSERT_TRUE(page) << page.error().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "tree/a");
  EXPECT_EQ(page->prefixes, (std::vector<std::string>{"tree/b/", "tree/c/", "tree/d e/"}));
  EXPECT_TRUE(page->next_token.empty());
  page = store->List("", "/", "");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->prefixes, (std::vector<std::string>{"many/", "tree/"}));
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "treetop");
  page = store->List("nothing-here/", "", "");
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->objects.empty());
}

TEST_F(S3ObjectStoreTest, MultipartUploadsCheckedWithAwsCli) {
  StoreOptions options;
  options.multipart_threshold = 5ull << 20;
  options.part_size = 5ull << 20;
  auto store = Open(options);
  ASSERT_TRUE(store);
  const std::string body = RandomBytes(12ull << 20, 42);
  ASSERT_TRUE(store->Put("big.bin", body).ok());

  auto info = store->Head("big.bin");
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->size, body.size());
  std::string window(3 << 20, '\0');
  // A read across the boundary of parts 1 and 2.
  auto n = store->GetRange("big.bin", (5ull << 20) - 1000, window.size(), window.data());
  ASSERT_TRUE(n) << n.error().ToString();
  ASSERT_EQ(*n, window.size());
  EXPECT_TRUE(window == body.substr((5ull << 20) - 1000, window.size()));

  auto head = RunAwsCli(server_->endpoint(), {"s3api", "head-object", "--bucket", kBucket, "--key",
                                              Prefix() + "/big.bin"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_NE(head.out.find("\"ContentLength\": " + std::to_string(body.size())), std::string::npos)
      << head.out;
  auto cp =
      RunAwsCli(server_->endpoint(), {"s3", "cp", "--only-show-errors",
                                      "s3://" + std::string(kBucket) + "/" + Prefix() + "/big.bin",
                                      Tmp("big-by-cli.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_TRUE(ReadFile(Tmp("big-by-cli.bin")) == body);

  // PutFile of a range of a file, multipart too, read back with GetToFile.
  const std::string file_body = RandomBytes((11ull << 20) + 12345, 7);
  WriteFile(Tmp("src.bin"), file_body);
  const uint64_t offset = 4096;
  const uint64_t length = file_body.size() - offset - 100;
  ASSERT_TRUE(store->PutFile("from-file.bin", Tmp("src.bin"), offset, length).ok());
  auto got = store->GetToFile("from-file.bin", Tmp("back.bin"));
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(*got, length);
  EXPECT_TRUE(ReadFile(Tmp("back.bin")) == file_body.substr(offset, length));

  // A file shorter than the range asked for is refused.
  auto short_file = store->PutFile("short.bin", Tmp("src.bin"), file_body.size() - 10, 100);
  EXPECT_FALSE(short_file.ok());
  auto no_file = store->PutFile("none.bin", Tmp("does-not-exist"), 0, 10);
  EXPECT_EQ(no_file.code(), Code::kNotFound);
}

TEST_F(S3ObjectStoreTest, PutFileAndGetToFileSmall) {
  auto store = Open();
  ASSERT_TRUE(store);
  WriteFile(Tmp("small.txt"), "0123456789abcdef");
  ASSERT_TRUE(store->PutFile("small", Tmp("small.txt"), 4, 8).ok());
  auto got = store->GetToFile("small", Tmp("small-back.txt"));
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(*got, 8u);
  EXPECT_EQ(ReadFile(Tmp("small-back.txt")), "456789ab");
  // GetToFile truncates what was there.
  WriteFile(Tmp("small-back.txt"), std::string(1000, 'x'));
  got = store->GetToFile("small", Tmp("small-back.txt"));
  ASSERT_TRUE(got);
  EXPECT_EQ(ReadFile(Tmp("small-back.txt")), "456789ab");
  auto missing = store->GetToFile("missing", Tmp("missing.txt"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST_F(S3ObjectStoreTest, ReadsObjectsWrittenByAwsCli) {
  auto store = Open();
  ASSERT_TRUE(store);
  const std::string body = RandomBytes(300000, 3);
  WriteFile(Tmp("cli-src.bin"), body);
  const std::string key = "from cli/\xC3\xA9t\xC3\xA9.bin";
  auto cp =
      RunAwsCli(server_->endpoint(), {"s3", "cp", "--only-show-errors", Tmp("cli-src.bin"),
                                      "s3://" + std::string(kBucket) + "/" + Prefix() + "/" + key});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto info = store->Head(key);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->size, body.size());
  std::string buf(1000, '\0');
  auto n = store->GetRange(key, 123456, buf.size(), buf.data(), info->etag);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_TRUE(buf == body.substr(123456, 1000));
  auto got = store->GetToFile(key, Tmp("cli-back.bin"), info->etag);
  ASSERT_TRUE(got);
  EXPECT_TRUE(ReadFile(Tmp("cli-back.bin")) == body);
  auto page = store->List("from cli/", "", "");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, key);
  EXPECT_EQ(page->objects[0].etag, info->etag);
  // And the other way round: the CLI deletes what the store wrote.
  ASSERT_TRUE(store->Put("to-delete", "x").ok());
  auto rm = RunAwsCli(server_->endpoint(),
                      {"s3", "rm", "--only-show-errors",
                       "s3://" + std::string(kBucket) + "/" + Prefix() + "/to-delete"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(store->Head("to-delete").error().code(), Code::kNotFound);
}

TEST_F(S3ObjectStoreTest, UnavailableWhileServerIsDownThenRecovers) {
  std::string why;
  auto own = S3Server::Start("down-test", &why);
  ASSERT_TRUE(own) << why;
  PointEnvAt(own->endpoint());
  auto opened = OpenS3ObjectStore("down-test/p", StoreOptions{});
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto& store = *opened;
  ASSERT_TRUE(store->Put("k", "value").ok());

  auto& retries = metrics::GetCounter("cairn_object_store_retries_total", "op=\"get\"");
  const uint64_t retries_before = retries.Value();
  own->Stop();
  const CallOptions quick{milliseconds(2000)};
  char buf[16];
  auto start = std::chrono::steady_clock::now();
  auto n = store->GetRange("k", 0, 5, buf, {}, quick);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), Code::kUnavailable) << n.error().ToString();
  EXPECT_LT(elapsed, milliseconds(2600));
  const std::string& message = n.error().message();
  EXPECT_NE(message.find("get"), std::string::npos) << message;
  EXPECT_NE(message.find("'k'"), std::string::npos) << message;
  EXPECT_NE(message.find("attempt"), std::string::npos) << message;
  EXPECT_GT(retries.Value(), retries_before);
  for (auto st : {store->Put("k2", "v", quick), store->Delete("k", quick)}) {
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  }
  auto h = store->Head("k", quick);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code(), Code::kUnavailable);
  auto l = store->List("", "", "", 1000, quick);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), Code::kUnavailable);

  ASSERT_TRUE(own->Restart(&why)) << why;
  n = store->GetRange("k", 0, 5, buf, {}, quick);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), "value");
}

TEST_F(S3ObjectStoreTest, SecretsNeverInMessagesOrLogs) {
  const std::string log_path = Tmp("secrets.log");
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  log::SetFd(fd);
  log::SetLevel(log::Level::kDebug);
  std::vector<std::string> messages;
  {
    auto store = Open();
    ASSERT_TRUE(store);
    messages.push_back(store->Describe());
    char buf[8];
    auto n = store->GetRange("missing", 0, 4, buf);
    ASSERT_FALSE(n);
    messages.push_back(n.error().ToString());
  }
  {
    // A refused access key: 403.
    PointEnvAt(server_->endpoint(), "NOT-A-KEY");
    auto store = Open();
    ASSERT_TRUE(store);
    auto st = store->Put("x", "y");
    EXPECT_EQ(st.code(), Code::kAccess) << st.ToString();
    messages.push_back(st.ToString());
  }
  {
    // Nobody listening: retries (logged at debug level), then kUnavailable.
    StoreOptions options;
    options.backoff_base = milliseconds(10);
    PointEnvAt("http://127.0.0.1:1");
    auto store = Open(options);
    ASSERT_TRUE(store);
    auto h = store->Head("x", CallOptions{milliseconds(500)});
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code(), Code::kUnavailable);
    messages.push_back(h.error().ToString());
  }
  log::SetLevel(log::Level::kInfo);
  log::SetFd(2);
  ::close(fd);
  const std::string logged = ReadFile(log_path);
  EXPECT_NE(logged.find("retrying"), std::string::npos) << logged;
  messages.push_back(logged);
  for (const auto& m : messages) {
    EXPECT_EQ(m.find(kSecret), std::string::npos) << m;
    EXPECT_EQ(m.find(kSessionToken), std::string::npos) << m;
    EXPECT_EQ(m.find("Signature="), std::string::npos) << m;
    EXPECT_EQ(m.find("AWS4-HMAC-SHA256"), std::string::npos) << m;
  }
}

// A scripted HTTP/1.1 server on loopback: answers requests, one connection at a time, with the
// replies queued, in order; past the queue, with 500 InternalError. For what s3rver cannot do:
// server errors, short bodies, odd replies.
class FakeHttpServer {
 public:
  struct Reply {
    std::string raw;     // status line, headers and body
    bool close = false;  // close the connection after it (a short body becomes a cut one)
  };

  FakeHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "fake server: cannot listen";
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Push(std::string raw, bool close = false) {
    std::lock_guard lock(mu_);
    replies_.push_back({std::move(raw), close});
  }
  // "GET /bucket/key?query" of each request so far.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

  static std::string Response(int status, const std::string& reason, const std::string& headers,
                              const std::string& body, size_t content_length = SIZE_MAX) {
    if (content_length == SIZE_MAX) content_length = body.size();
    return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n" + headers +
           "Content-Length: " + std::to_string(content_length) + "\r\n\r\n" + body;
  }

 private:
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  void Serve() {
    while (WaitReadable(fd_)) {
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      std::string in;
      bool open = true;
      while (open && !stop_) {
        size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          char buf[65536];
          ssize_t r = WaitReadable(conn) ? ::read(conn, buf, sizeof(buf)) : 0;
          if (r <= 0) {
            open = false;
            break;
          }
          in.append(buf, static_cast<size_t>(r));
        }
        if (!open) break;
        std::string head = in.substr(0, end);
        size_t body_len = 0;
        std::string lower = head;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (size_t p = lower.find("content-length:"); p != std::string::npos) {
          body_len = std::stoul(head.substr(p + 15));
        }
        while (in.size() < end + 4 + body_len) {
          char buf[65536];
          ssize_t r = WaitReadable(conn) ? ::read(conn, buf, sizeof(buf)) : 0;
          if (r <= 0) break;
          in.append(buf, static_cast<size_t>(r));
        }
        in.erase(0, std::min(in.size(), end + 4 + body_len));
        Reply reply{
            Response(500, "Internal Server Error", "",
                     "<Error><Code>InternalError</Code><Message>scripted</Message></Error>"),
            false};
        {
          std::lock_guard lock(mu_);
          requests_.push_back(head.substr(0, head.find(" HTTP/")));
          if (!replies_.empty()) {
            reply = std::move(replies_.front());
            replies_.erase(replies_.begin());
          }
        }
        for (size_t off = 0; off < reply.raw.size();) {
          ssize_t w = ::send(conn, reply.raw.data() + off, reply.raw.size() - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
        if (reply.close) open = false;
      }
      ::close(conn);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Reply> replies_;
  std::vector<std::string> requests_;
};

TEST(S3ObjectStoreFakeServerTest, RetriesServerErrorsAndShortBodies) {
  FakeHttpServer fake;
  PointEnvAt(fake.endpoint());
  StoreOptions options;
  options.backoff_base = milliseconds(1);
  options.backoff_max = milliseconds(5);
  options.max_attempts = 4;
  auto opened = OpenS3ObjectStore("bkt/pre", options);
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto& store = *opened;
  auto& retries = metrics::GetCounter("cairn_object_store_retries_total", "op=\"get\"");
  const std::string range = "Content-Range: bytes 0-9/100\r\nETag: \"e1\"\r\n";

  // 503, then a body cut short, then the whole range.
  fake.Push(FakeHttpServer::Response(
      503, "Slow Down", "", "<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"));
  fake.Push(FakeHttpServer::Response(206, "Partial Content", range, "01234", 10), true);
  fake.Push(FakeHttpServer::Response(206, "Partial Content", range, "0123456789"));
  uint64_t before = retries.Value();
  char buf[16] = {};
  auto n = store->GetRange("k", 0, 10, buf, "e1");
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), "0123456789");
  EXPECT_EQ(retries.Value() - before, 2u);
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0], "GET /bkt/pre/k");

  // Failing every time: kUnavailable after max_attempts, naming the operation, key and error.
  before = retries.Value();
  n = store->GetRange("k", 0, 10, buf);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), Code::kUnavailable);
  const std::string& m = n.error().message();
  EXPECT_NE(m.find("get 'k'"), std::string::npos) << m;
  EXPECT_NE(m.find("HTTP 500 InternalError: scripted"), std::string::npos) << m;
  EXPECT_NE(m.find("4 attempts"), std::string::npos) << m;
  EXPECT_EQ(retries.Value() - before, 3u);

  // Final answers, not retried.
  fake.Push(FakeHttpServer::Response(412, "Precondition Failed", "",
                                     "<Error><Code>PreconditionFailed</Code></Error>"));
  EXPECT_EQ(store->GetRange("k", 0, 10, buf, "e0").error().code(), Code::kChanged);
  fake.Push(FakeHttpServer::Response(
      403, "Forbidden", "", "<Error><Code>AccessDenied</Code><Message>no</Message></Error>"));
  auto st = store->Put("k", "v");
  EXPECT_EQ(st.code(), Code::kAccess);
  EXPECT_NE(st.message().find("AccessDenied"), std::string::npos) << st.message();
  // A range that is not the one asked for is corrupt, not retried.
  fake.Push(FakeHttpServer::Response(206, "Partial Content", "Content-Range: bytes 5-14/100\r\n",
                                     "0123456789"));
  EXPECT_EQ(store->GetRange("k", 0, 10, buf).error().code(), Code::kCorruption);
  // A server that ignores Range: the window of the whole object.
  fake.Push(FakeHttpServer::Response(200, "OK", "ETag: \"e1\"\r\n", "0123456789"));
  n = store->GetRange("k", 2, 3, buf);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(std::string(buf, *n), "234");
  // A retried PUT sends its body again.
  fake.Push(FakeHttpServer::Response(500, "Internal Server Error", "", ""));
  fake.Push(FakeHttpServer::Response(200, "OK", "ETag: \"e2\"\r\n", ""));
  EXPECT_TRUE(store->Put("k", "value").ok());

  // ListObjectsV2 XML with entities and character references.
  fake.Push(FakeHttpServer::Response(
      200, "OK", "Content-Type: application/xml\r\n",
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name>"
      "<Prefix>pre/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;1=</NextContinuationToken>"
      "<Contents><Key>pre/a&amp;b &lt;&gt;&quot;&apos; &#233;&#x4E2D;</Key>"
      "<LastModified>2020-01-02T03:04:05.000Z</LastModified><ETag>&quot;e1&quot;</ETag>"
      "<Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>"
      "<CommonPrefixes><Prefix>pre/d/</Prefix></CommonPrefixes></ListBucketResult>"));
  auto page = store->List("", "/", "", 2);
  ASSERT_TRUE(page) << page.error().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "a&b <>\"' \xC3\xA9\xE4\xB8\xAD");
  EXPECT_EQ(page->objects[0].size, 3u);
  EXPECT_EQ(page->objects[0].etag, "e1");
  EXPECT_EQ(page->objects[0].mtime, 1577934245);
  EXPECT_EQ(page->prefixes, std::vector<std::string>{"d/"});
  EXPECT_EQ(page->next_token, "t&1=");
  requests = fake.requests();
  EXPECT_EQ(requests.back(), "GET /bkt?delimiter=%2F&list-type=2&max-keys=2&prefix=pre%2F");
  fake.Push(FakeHttpServer::Response(200, "OK", "", "<html>not xml</html>"));
  EXPECT_EQ(store->List("", "", "").error().code(), Code::kCorruption);
}

TEST_F(S3ObjectStoreTest, BadConfigurationIsInvalid) {
  auto bad = OpenS3ObjectStore("bad bucket!/p", StoreOptions{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalid);

  ::setenv("AWS_ENDPOINT_URL", "ftp://example", 1);
  bad = OpenS3ObjectStore(kBucket, StoreOptions{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalid);
  ::setenv("AWS_ENDPOINT_URL", "http://user:hunter2@127.0.0.1:1", 1);
  bad = OpenS3ObjectStore(kBucket, StoreOptions{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().find("hunter2"), std::string::npos);

  // No credentials anywhere.
  PointEnvAt(server_->endpoint());
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_SESSION_TOKEN");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", Tmp("no-such-credentials").c_str(), 1);
  bad = OpenS3ObjectStore(kBucket, StoreOptions{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalid);
  EXPECT_NE(bad.error().message().find("credentials"), std::string::npos);

  // A credentials file profile works.
  WriteFile(Tmp("credentials"),
            "[default]\naws_access_key_id = WRONG\n\n[profile cairn]\n"
            "aws_access_key_id = S3RVER\naws_secret_access_key = " +
                std::string(kSecret) + "\n");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", Tmp("credentials").c_str(), 1);
  ::setenv("AWS_PROFILE", "cairn", 1);
  auto good = OpenS3ObjectStore(std::string(kBucket) + "/profile", StoreOptions{});
  ASSERT_TRUE(good) << good.error().ToString();
  EXPECT_TRUE((*good)->Put("k", "v").ok());
  ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  ::unsetenv("AWS_PROFILE");
}

}  // namespace
}  // namespace cairn::tier
