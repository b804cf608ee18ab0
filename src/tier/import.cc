#include "tier/import.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "common/thread_pool.h"
#include "meta/schema.h"

namespace cairn::tier {

Result<std::vector<std::string>> SplitImportKey(std::string_view key) {
  std::vector<std::string> parts;
  if (key.empty()) return Err(Code::kInvalid, "empty key");
  size_t start = 0;
  for (;;) {
    const size_t slash = key.find('/', start);
    std::string_view part =
        key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return Err(Code::kInvalid, "empty path component");
    if (part == "." || part == "..") return Err(Code::kInvalid, "'.' or '..' path component");
    if (part.size() > meta::kMaxNameLength) {
      return Err(Code::kNameTooLong, "path component longer than 255 bytes");
    }
    if (part.find('\0') != std::string_view::npos) return Err(Code::kInvalid, "NUL in key");
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

Result<ImportListing> ListForImport(ObjectStore& store, int parallel,
                                    const std::function<void(uint64_t listed)>& progress) {
  std::mutex mu;
  std::condition_variable done_cv;
  std::vector<ObjectInfo> objects;  // GUARDED_BY(mu)
  Status error;                     // GUARDED_BY(mu)
  size_t pending = 0;               // GUARDED_BY(mu)
  std::atomic<uint64_t> listed{0};
  ThreadPool pool(std::max(1, parallel));

  // Lists one prefix with the delimiter: its objects, and a task per sub-prefix, so that a tree
  // of prefixes lists in parallel.
  const std::string delimiter = parallel > 1 ? "/" : "";
  std::function<void(std::string)> list_prefix = [&](std::string prefix) {
    std::string token;
    Status st;
    for (;;) {
      auto page = store.List(prefix, delimiter, token, 1000);
      if (!page) {
        st = page.error();
        break;
      }
      listed += page->objects.size();
      if (progress) progress(listed.load());
      {
        std::lock_guard lock(mu);
        for (auto& o : page->objects) objects.push_back(std::move(o));
        for (auto& p : page->prefixes) {
          ++pending;
          pool.Submit([&, p] { list_prefix(p); });
        }
      }
      if (page->next_token.empty()) break;
      token = page->next_token;
    }
    std::lock_guard lock(mu);
    if (!st.ok() && error.ok()) error = st;
    --pending;
    done_cv.notify_all();
  };
  {
    std::lock_guard lock(mu);
    ++pending;
  }
  pool.Submit([&] { list_prefix(""); });
  {
    std::unique_lock lock(mu);
    done_cv.wait(lock, [&] { return pending == 0; });
  }
  pool.Stop();
  if (!error.ok()) return Err(error);

  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  ImportListing out;
  out.listed = objects.size();
  // Every directory some key needs, to find keys that are both an object and a prefix.
  std::set<std::string> dirs;
  for (const auto& o : objects) {
    for (size_t pos = o.key.find('/'); pos != std::string::npos; pos = o.key.find('/', pos + 1)) {
      dirs.insert(o.key.substr(0, pos));
    }
  }
  for (auto& o : objects) {
    ImportEntry entry;
    std::string_view key = o.key;
    if (key.ends_with('/')) {
      if (o.size != 0) {
        out.skipped.emplace_back(o.key, "key ends in '/' but holds bytes");
        continue;
      }
      entry.dir_marker = true;
      key.remove_suffix(1);
    }
    auto parts = SplitImportKey(key);
    if (!parts) {
      out.skipped.emplace_back(o.key, parts.error().message());
      continue;
    }
    if (!entry.dir_marker && dirs.count(o.key)) {
      out.skipped.emplace_back(o.key, "both an object and a prefix of other keys");
      continue;
    }
    entry.parts = std::move(*parts);
    entry.info = std::move(o);
    out.entries.push_back(std::move(entry));
  }
  return out;
}

}  // namespace cairn::tier
