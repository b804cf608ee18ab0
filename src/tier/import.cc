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
  std::vector<ObjectInfo> objects;  // GUARDED_BY(mu)
  Status error;                     // GUARDED_BY(mu)
  std::atomic<uint64_t> listed{0};
  auto add = [&](std::vector<ObjectInfo>& page) {
    listed += page.size();
    if (progress) progress(listed.load());
    std::lock_guard lock(mu);
    for (auto& o : page) objects.push_back(std::move(o));
  };
  // Every key starting with prefix, page after page.
  auto list_flat = [&](const std::string& prefix) -> Status {
    std::string token;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(ListPage page, store.List(prefix, "", token, 1000));
      add(page.objects);
      if (page.next_token.empty()) return Status::Ok();
      token = page.next_token;
    }
  };

  if (parallel <= 1) {
    CAIRN_RETURN_IF_ERROR(list_flat(""));
  } else {
    // The top-level prefixes split the key space: each is listed flat by a worker, while this
    // thread lists the rest, jumping over the ranges the workers cover. A prefix the server
    // fails to report is listed here, so the result is complete on any server.
    CAIRN_ASSIGN_OR_RETURN(ListPage top, store.List("", "/", "", 1000));
    std::set<std::string> known(top.prefixes.begin(), top.prefixes.end());
    ThreadPool pool(parallel);
    for (const auto& prefix : known) {
      pool.Submit([&, prefix] {
        Status st = list_flat(prefix);
        std::lock_guard lock(mu);
        if (!st.ok() && error.ok()) error = st;
      });
    }
    // U+10FFFF, the largest code point: prefix + this sorts after every key under prefix.
    constexpr std::string_view kAfterAll = "\xF4\x8F\xBF\xBF";
    std::string token, after;
    Status st;
    for (;;) {
      auto page = !token.empty()  ? store.List("", "", token, 1000)
                  : after.empty() ? store.List("", "", "", 1000)
                                  : store.ListAfter("", after, 1000);
      if (!page) {
        st = page.error();
        break;
      }
      std::vector<ObjectInfo> mine;
      std::string jump;
      for (auto& o : page->objects) {
        const size_t slash = o.key.find('/');
        if (slash != std::string::npos && known.count(o.key.substr(0, slash + 1))) {
          std::string target = o.key.substr(0, slash + 1) + std::string(kAfterAll);
          if (target > o.key) {
            jump = std::move(target);
            break;
          }
          continue;  // a worker lists it
        }
        mine.push_back(std::move(o));
      }
      add(mine);
      if (!jump.empty()) {
        after = std::move(jump);
        token.clear();
        continue;
      }
      if (page->next_token.empty()) break;
      token = page->next_token;
    }
    pool.Stop();
    CAIRN_RETURN_IF_ERROR(st);
    std::lock_guard lock(mu);
    CAIRN_RETURN_IF_ERROR(error);
  }

  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  ImportListing out;
  // A key listed twice (a worker and the main listing met at a range's edge) counts once.
  objects.erase(
      std::unique(objects.begin(), objects.end(),
                  [](const ObjectInfo& a, const ObjectInfo& b) { return a.key == b.key; }),
      objects.end());
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
