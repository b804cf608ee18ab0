// FaultObjectStore: wraps an ObjectStore and injects faults, for tests: failed calls (as a 5xx or
// a reset would end after the store's retries: kUnavailable), added delays, and truncated read
// bodies (reported as kUnavailable, as the S3 store reports a short body). Faults are drawn at
// random with the configured probabilities, per call; `down` fails every call, as a stopped server
// would. Thread-safety: thread-safe; the settings may change while calls run.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>

#include "tier/object_store.h"

namespace cairn::tier {

struct FaultOptions {
  double error_rate = 0;     // fraction of calls that fail with kUnavailable
  double truncate_rate = 0;  // fraction of reads whose body comes back short
  std::chrono::milliseconds delay{0};
  bool down = false;  // every call fails
};

class FaultObjectStore final : public ObjectStore {
 public:
  FaultObjectStore(std::shared_ptr<ObjectStore> base, FaultOptions options);
  void Set(const FaultOptions& options);
  uint64_t injected() const { return injected_.load(); }

  Status Put(std::string_view key, std::string_view data, const CallOptions& o) override;
  Status PutFile(std::string_view key, const std::string& path, uint64_t offset, uint64_t length,
                 const CallOptions& o) override;
  Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                          std::string_view if_match, const CallOptions& o) override;
  Result<uint64_t> GetToFile(std::string_view key, const std::string& path,
                             std::string_view if_match, const CallOptions& o) override;
  Result<ObjectInfo> Head(std::string_view key, const CallOptions& o) override;
  Result<ListPage> List(std::string_view prefix, std::string_view delimiter, std::string_view token,
                        int max_keys, const CallOptions& o) override;
  Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after, int max_keys,
                             const CallOptions& o) override;
  Status Delete(std::string_view key, const CallOptions& o) override;
  std::string Describe() const override;

 private:
  // A fault for this call, or Ok; sleeps the configured delay first.
  Status Inject(std::string_view op, std::string_view key);
  bool Truncate();

  std::shared_ptr<ObjectStore> base_;
  std::mutex mu_;
  FaultOptions options_;  // GUARDED_BY(mu_)
  std::mt19937_64 rng_;   // GUARDED_BY(mu_)
  std::atomic<uint64_t> injected_{0};
};

}  // namespace cairn::tier
