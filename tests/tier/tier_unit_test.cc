// Unit tests of the tier layer that need no server: the file object store, the fault and metered
// wrappers, import key validation and listing (over an in-memory store holding keys no real
// server here can store), and the metrics registry.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "common/metrics.h"
#include "tier/fault_object_store.h"
#include "tier/file_object_store.h"
#include "tier/import.h"
#include "tier/metered_object_store.h"

namespace cairn::tier {
namespace {

class TempDir {
 public:
  TempDir() {
    char buf[] = "/tmp/cairn-tier-XXXXXX";
    path_ = ::mkdtemp(buf);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An in-memory store: List is flat or with '/' rolled up, in key order.
class MemoryStore final : public ObjectStore {
 public:
  Status Put(std::string_view key, std::string_view data, const CallOptions&) override {
    std::lock_guard lock(mu_);
    objects_[std::string(key)] = std::string(data);
    return Status::Ok();
  }
  Status PutFile(std::string_view, const std::string&, uint64_t, uint64_t,
                 const CallOptions&) override {
    return Status(Code::kNotSupported, "");
  }
  Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                          std::string_view, const CallOptions&) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return Err(Code::kNotFound);
    if (offset >= it->second.size()) return 0;
    size_t n = std::min(length, it->second.size() - offset);
    std::memcpy(out, it->second.data() + offset, n);
    return n;
  }
  Result<uint64_t> GetToFile(std::string_view, const std::string&, std::string_view,
                             const CallOptions&) override {
    return Err(Code::kNotSupported);
  }
  Result<ObjectInfo> Head(std::string_view key, const CallOptions&) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return Err(Code::kNotFound);
    return ObjectInfo{it->first, it->second.size(), "etag", 0};
  }
  Result<ListPage> List(std::string_view prefix, std::string_view delimiter, std::string_view token,
                        int max_keys, const CallOptions&) override {
    std::lock_guard lock(mu_);
    ListPage page;
    std::string last;
    for (auto it = objects_.upper_bound(std::string(token)); it != objects_.end(); ++it) {
      if (!it->first.starts_with(prefix)) continue;
      std::string entry = it->first;
      bool is_prefix = false;
      if (!delimiter.empty()) {
        size_t pos = entry.find(delimiter, prefix.size());
        if (pos != std::string::npos) {
          entry = entry.substr(0, pos + 1);
          is_prefix = true;
        }
      }
      if (entry == last) continue;
      if (static_cast<int>(page.objects.size() + page.prefixes.size()) == max_keys) {
        page.next_token = last;
        break;
      }
      last = entry;
      if (is_prefix && hidden_prefixes.count(entry)) continue;  // a server that omits it
      if (is_prefix) {
        page.prefixes.push_back(entry);
      } else {
        page.objects.push_back({entry, it->second.size(), "etag", 0});
      }
    }
    // Keys rolled into a prefix sort after it; resume after the whole prefix.
    if (!page.next_token.empty() && page.next_token.ends_with("/")) page.next_token += "\xff";
    return page;
  }
  Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after, int max_keys,
                             const CallOptions& o) override {
    return List(prefix, "", start_after, max_keys, o);
  }
  Status Delete(std::string_view key, const CallOptions&) override {
    std::lock_guard lock(mu_);
    objects_.erase(std::string(key));
    return Status::Ok();
  }
  std::string Describe() const override { return "memory"; }

  std::set<std::string> hidden_prefixes;  // never reported as common prefixes

 private:
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
};

TEST(FileObjectStore, PutGetListDelete) {
  TempDir dir;
  auto store = OpenFileObjectStore(dir.path() + "/objects");
  ASSERT_TRUE(store) << store.error().ToString();
  ObjectStore& s = **store;
  ASSERT_TRUE(s.Put("a/b/c", "hello world").ok());
  ASSERT_TRUE(s.Put("a/d", "x").ok());
  ASSERT_TRUE(s.Put("z", "").ok());
  char buf[5];
  auto n = s.GetRange("a/b/c", 6, 5, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "world");
  auto info = s.Head("a/b/c");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 11u);
  // A conditional read of a replaced object fails instead of mixing versions.
  ASSERT_TRUE(s.Put("a/b/c", "HELLO WORLD!").ok());
  auto changed = s.GetRange("a/b/c", 0, 5, buf, info->etag);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code(), Code::kChanged);

  auto flat = s.List("", "", "", 2);
  ASSERT_TRUE(flat);
  ASSERT_EQ(flat->objects.size(), 2u);
  EXPECT_EQ(flat->objects[0].key, "a/b/c");
  EXPECT_EQ(flat->objects[1].key, "a/d");
  auto rest = s.List("", "", flat->next_token, 2);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->objects.size(), 1u);
  EXPECT_EQ(rest->objects[0].key, "z");
  EXPECT_TRUE(rest->next_token.empty());
  auto top = s.List("", "/", "", 100);
  ASSERT_TRUE(top);
  EXPECT_EQ(top->prefixes, std::vector<std::string>{"a/"});
  ASSERT_EQ(top->objects.size(), 1u);

  ASSERT_TRUE(s.Delete("a/d").ok());
  ASSERT_TRUE(s.Delete("a/d").ok());  // deleting a missing key is fine
  EXPECT_EQ(s.Head("a/d").error().code(), Code::kNotFound);
  EXPECT_FALSE(s.Put("/abs", "x").ok());
}

TEST(OpenObjectStore, RejectsBadUrls) {
  for (const char* url : {"", "file://relative", "s3://", "http://x/y", "s3:///bucket"}) {
    auto s = OpenObjectStore(url);
    EXPECT_FALSE(s) << url;
    if (!s) {
      EXPECT_EQ(s.error().code(), Code::kInvalid) << url;
    }
  }
}

TEST(FaultObjectStore, InjectsAtTheConfiguredRate) {
  auto base = std::make_shared<MemoryStore>();
  ASSERT_TRUE(base->Put("k", "v", {}).ok());
  FaultObjectStore faulty(base, {0.2, 0, std::chrono::milliseconds(0), false});
  int failed = 0;
  for (int i = 0; i < 1000; ++i) {
    if (!faulty.Head("k", {})) ++failed;
  }
  EXPECT_GT(failed, 120);
  EXPECT_LT(failed, 280);
  faulty.Set({0, 0, std::chrono::milliseconds(0), true});
  EXPECT_EQ(faulty.Head("k", {}).error().code(), Code::kUnavailable);
}

TEST(MeteredObjectStore, CountsRequestsBytesAndErrors) {
  auto base = std::make_shared<MemoryStore>();
  auto metered = NewMeteredObjectStore(base);
  auto& puts = metrics::GetCounter("cairn_object_store_requests_total", "op=\"put\"");
  auto& bytes = metrics::GetCounter("cairn_object_store_bytes_total", "op=\"put\"");
  auto& errors = metrics::GetCounter("cairn_object_store_errors_total", "op=\"head\"");
  const uint64_t p0 = puts.Value(), b0 = bytes.Value(), e0 = errors.Value();
  ASSERT_TRUE(metered->Put("k", "12345").ok());
  EXPECT_FALSE(metered->Head("missing"));
  EXPECT_EQ(puts.Value() - p0, 1u);
  EXPECT_EQ(bytes.Value() - b0, 5u);
  EXPECT_EQ(errors.Value() - e0, 1u);
  std::string text = metrics::RenderPrometheus();
  EXPECT_NE(text.find("# TYPE cairn_object_store_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("cairn_object_store_seconds_bucket{op=\"put\",le=\"+Inf\"}"),
            std::string::npos);
}

TEST(ImportKeys, SplitRejectsUnsafeKeys) {
  EXPECT_EQ(*SplitImportKey("a/b/c.jpg"), (std::vector<std::string>{"a", "b", "c.jpg"}));
  EXPECT_EQ(*SplitImportKey("with space/\xC3\xA4"),
            (std::vector<std::string>{"with space", "\xC3\xA4"}));
  for (const std::string& bad :
       std::vector<std::string>{"", "/a", "a//b", "a/", "./a", "a/./b", "../a", "a/..",
                                std::string(256, 'x'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(SplitImportKey(bad)) << bad;
  }
  EXPECT_TRUE(SplitImportKey(std::string(255, 'x')));
}

TEST(ImportKeys, ListingSkipsUnsafeKeysAndKeepsDirectories) {
  for (int parallel : {1, 8}) {
    MemoryStore memory;
    ObjectStore& store = memory;
    for (std::string key : {"a/b/c.jpg", "a/empty", "x/../escape", "double//slash", "./dot", "p/q",
                            "p/q/r", "marker/", "top"}) {
      ASSERT_TRUE(store.Put(key, key == "marker/" || key == "a/empty" ? "" : "data").ok());
    }
    ASSERT_TRUE(store.Put(std::string(256, 'n'), "long").ok());
    for (int i = 0; i < 2500; ++i) {
      ASSERT_TRUE(store.Put("many/" + std::to_string(i), "m").ok());
    }
    uint64_t last_progress = 0;
    auto listing = ListForImport(store, parallel, [&](uint64_t n) { last_progress = n; });
    ASSERT_TRUE(listing) << listing.error().ToString();
    EXPECT_EQ(listing->listed, 2510u);
    EXPECT_EQ(last_progress, 2510u);
    std::map<std::string, std::string> skipped(listing->skipped.begin(), listing->skipped.end());
    EXPECT_EQ(skipped.size(), 5u) << parallel;
    for (const std::string& key : std::vector<std::string>{"x/../escape", "double//slash", "./dot",
                                                           "p/q", std::string(256, 'n')}) {
      EXPECT_TRUE(skipped.count(key)) << key;
    }
    size_t files = 0, markers = 0;
    for (const auto& e : listing->entries) (e.dir_marker ? markers : files)++;
    EXPECT_EQ(markers, 1u);
    EXPECT_EQ(files, 2500u + 4u);  // a/b/c.jpg, a/empty, p/q/r, top
    EXPECT_TRUE(std::is_sorted(
        listing->entries.begin(), listing->entries.end(),
        [](const ImportEntry& a, const ImportEntry& b) { return a.info.key < b.info.key; }));
  }
}

TEST(ImportKeys, ParallelListingIsCompleteWhenTheServerOmitsPrefixes) {
  MemoryStore memory;
  ObjectStore& store = memory;
  std::set<std::string> keys;
  for (int d = 0; d < 5; ++d) {
    for (int i = 0; i < 700; ++i)
      keys.insert("d" + std::to_string(d) + "/sub/" + std::to_string(i));
  }
  for (std::string k : {"a.txt", "d1.txt", "e2", "z/z", "\xC3\xA4/x"}) keys.insert(k);
  for (const auto& k : keys) ASSERT_TRUE(store.Put(k, "x").ok());
  memory.hidden_prefixes = {"d1/", "d3/", "z/"};
  for (int parallel : {1, 3, 8}) {
    auto listing = ListForImport(store, parallel, nullptr);
    ASSERT_TRUE(listing) << listing.error().ToString();
    std::set<std::string> got;
    for (const auto& e : listing->entries) got.insert(e.info.key);
    std::vector<std::string> missing, extra;
    std::set_difference(keys.begin(), keys.end(), got.begin(), got.end(),
                        std::back_inserter(missing));
    std::set_difference(got.begin(), got.end(), keys.begin(), keys.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty()) << "parallel " << parallel << ": " << missing.size()
                                 << " missing, first " << missing.front();
    EXPECT_TRUE(extra.empty()) << "parallel " << parallel;
    EXPECT_EQ(listing->listed, keys.size());
  }
}

}  // namespace
}  // namespace cairn::tier
