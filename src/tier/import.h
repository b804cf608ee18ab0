// Import listing: turns the keys under an object store's root into the files and directories of
// a tree, in parallel, rejecting keys that could not be a safe path.
//
// A key "a/b/c.jpg" becomes the path components {"a", "b", "c.jpg"}. A key ending in '/' with no
// bytes is a directory marker. Rejected, with a reason: empty components ("a//b", "/a"), "." and
// "..", components over 255 bytes or holding NUL, and a key that is both an object and a prefix
// of other keys ("a/b" beside "a/b/c"): the object is skipped, the directory kept.
// Thread-safety: ListForImport runs its own workers; the store must be thread-safe.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tier/object_store.h"

namespace cairn::tier {

struct ImportEntry {
  std::vector<std::string> parts;  // path components under the import's directory
  ObjectInfo info;
  bool dir_marker = false;
};

struct ImportListing {
  std::vector<ImportEntry> entries;                          // sorted by key
  std::vector<std::pair<std::string, std::string>> skipped;  // key, reason
  uint64_t listed = 0;
};

// The path components of key, or kInvalid with the reason it is unsafe.
Result<std::vector<std::string>> SplitImportKey(std::string_view key);

// Lists every key under the store's root; progress(listed) is called as pages arrive.
// parallel <= 1: one flat paged listing. parallel > 1: the top-level prefixes are listed by that
// many workers at once while one more listing covers the keys outside them (jumping over the
// workers' ranges with start-after), so the result is complete even on a server that does not
// report every common prefix (s3rver omits prefixes that hold only sub-prefixes).
Result<ImportListing> ListForImport(ObjectStore& store, int parallel,
                                    const std::function<void(uint64_t listed)>& progress);

}  // namespace cairn::tier
