// ObjectStore: a flat namespace of immutable objects under one root (a local directory or an S3
// bucket prefix). Keys are relative to that root, '/'-separated, never starting with '/'.
//
// Implementations: FileObjectStore (file:///path, the embedded default), S3ObjectStore
// (s3://bucket/prefix, libcurl + SigV4), and wrappers: FaultObjectStore (injects errors, delays,
// truncated bodies and resets for tests) and MeteredObjectStore (counts requests, bytes, errors
// and latency per operation for `cairn tier status` and /metrics).
//
// Errors: kNotFound (no such key), kChanged (if_match given and the object's ETag differs),
// kUnavailable (the store cannot be reached or kept failing after retries, or the deadline
// passed: retryable later), kCorruption (a reply that is malformed or shorter than announced),
// kInvalid (bad key or URL), kAccess (credentials refused). Messages never carry secrets.
//
// Thread-safety: every method of every implementation may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::tier {

struct ObjectInfo {
  std::string key;  // relative to the store's root
  uint64_t size = 0;
  std::string etag;   // opaque; without quotes
  int64_t mtime = 0;  // seconds since the epoch (Last-Modified)
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> prefixes;  // common prefixes when a delimiter was given (end in '/')
  std::string next_token;             // empty: no more pages
};

// Per-call limits. A zero deadline means the store's default (see StoreOptions).
struct CallOptions {
  std::chrono::milliseconds deadline{0};
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Stores data under key, replacing any object there. Large bodies use multipart upload.
  virtual Status Put(std::string_view key, std::string_view data, const CallOptions& o = {}) = 0;
  // Stores the bytes [offset, offset + length) of the local file at path under key.
  virtual Status PutFile(std::string_view key, const std::string& path, uint64_t offset,
                         uint64_t length, const CallOptions& o = {}) = 0;
  // Reads length bytes at offset of the object into out; returns the bytes read (less than
  // length only at the object's end). When if_match is not empty and the object's ETag differs:
  // kChanged.
  virtual Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                                  std::string_view if_match = {}, const CallOptions& o = {}) = 0;
  // The whole object written to the local file at path (created or truncated); returns its size.
  virtual Result<uint64_t> GetToFile(std::string_view key, const std::string& path,
                                     std::string_view if_match = {}, const CallOptions& o = {}) = 0;
  virtual Result<ObjectInfo> Head(std::string_view key, const CallOptions& o = {}) = 0;
  // One page (at most max_keys) of the keys starting with prefix, in key order, after token.
  // With a delimiter ("/"), keys containing it after the prefix are rolled up into prefixes.
  virtual Result<ListPage> List(std::string_view prefix, std::string_view delimiter,
                                std::string_view token, int max_keys = 1000,
                                const CallOptions& o = {}) = 0;
  // The first page of a flat listing of the keys starting with prefix that sort after
  // start_after (a full key relative to the root); later pages: List with the page's next_token.
  virtual Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after,
                                     int max_keys = 1000, const CallOptions& o = {}) = 0;
  // Deletes key; deleting a missing key is not an error.
  virtual Status Delete(std::string_view key, const CallOptions& o = {}) = 0;
  // The store's URL, without credentials, for messages.
  virtual std::string Describe() const = 0;
};

// Settings shared by the implementations.
struct StoreOptions {
  // Bounded parallelism: at most this many requests in flight per store.
  int max_parallel = 16;
  // Default deadline of one call, retries included.
  std::chrono::milliseconds deadline{30000};
  // Retries on 5xx, 429, timeouts and resets: exponential backoff with full jitter.
  int max_attempts = 6;
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{5000};
  // Bodies larger than this upload as multipart, in parts of part_size.
  uint64_t multipart_threshold = 32ull << 20;
  uint64_t part_size = 16ull << 20;
};

// Opens "file:///abs/path" (the directory is created if missing) or "s3://bucket[/prefix]".
// S3 endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL, AWS_REGION or
// AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or from
// ~/.aws/credentials (AWS_PROFILE or "default"). kInvalid with a clear message for a bad URL.
Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const std::string& url,
                                                     const StoreOptions& options = {});

// Checks that a key is safe to use: not empty, no leading '/', no NUL.
Status CheckKey(std::string_view key);

}  // namespace cairn::tier
