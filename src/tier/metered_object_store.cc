#include "tier/metered_object_store.h"

#include <chrono>

#include "common/metrics.h"

namespace cairn::tier {
namespace {

struct OpMetrics {
  explicit OpMetrics(std::string_view op)
      : labels("op=\"" + std::string(op) + "\""),
        requests(metrics::GetCounter("cairn_object_store_requests_total", labels)),
        errors(metrics::GetCounter("cairn_object_store_errors_total", labels)),
        bytes(metrics::GetCounter("cairn_object_store_bytes_total", labels)),
        seconds(metrics::GetHistogram("cairn_object_store_seconds", labels)) {
    // Registered up front so that /metrics shows every operation from the start.
    (void)metrics::GetCounter("cairn_object_store_retries_total", labels);
  }
  std::string labels;
  metrics::Counter& requests;
  metrics::Counter& errors;
  metrics::Counter& bytes;
  metrics::Histogram& seconds;
};

// Times one call and records its outcome.
template <typename F>
auto Measure(OpMetrics& m, F&& call) {
  auto start = std::chrono::steady_clock::now();
  auto result = call();
  m.seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  m.requests.Add();
  if (!internal::ToStatus(result).ok()) m.errors.Add();
  return result;
}

class MeteredObjectStore final : public ObjectStore {
 public:
  explicit MeteredObjectStore(std::shared_ptr<ObjectStore> base) : base_(std::move(base)) {}

  Status Put(std::string_view key, std::string_view data, const CallOptions& o) override {
    Status st = Measure(put_, [&] { return base_->Put(key, data, o); });
    if (st.ok()) put_.bytes.Add(data.size());
    return st;
  }
  Status PutFile(std::string_view key, const std::string& path, uint64_t offset, uint64_t length,
                 const CallOptions& o) override {
    Status st = Measure(put_, [&] { return base_->PutFile(key, path, offset, length, o); });
    if (st.ok()) put_.bytes.Add(length);
    return st;
  }
  Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                          std::string_view if_match, const CallOptions& o) override {
    auto r = Measure(get_, [&] { return base_->GetRange(key, offset, length, out, if_match, o); });
    if (r) get_.bytes.Add(*r);
    return r;
  }
  Result<uint64_t> GetToFile(std::string_view key, const std::string& path,
                             std::string_view if_match, const CallOptions& o) override {
    auto r = Measure(get_, [&] { return base_->GetToFile(key, path, if_match, o); });
    if (r) get_.bytes.Add(*r);
    return r;
  }
  Result<ObjectInfo> Head(std::string_view key, const CallOptions& o) override {
    return Measure(head_, [&] { return base_->Head(key, o); });
  }
  Result<ListPage> List(std::string_view prefix, std::string_view delimiter, std::string_view token,
                        int max_keys, const CallOptions& o) override {
    return Measure(list_, [&] { return base_->List(prefix, delimiter, token, max_keys, o); });
  }
  Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after, int max_keys,
                             const CallOptions& o) override {
    return Measure(list_, [&] { return base_->ListAfter(prefix, start_after, max_keys, o); });
  }
  Status Delete(std::string_view key, const CallOptions& o) override {
    return Measure(delete_, [&] { return base_->Delete(key, o); });
  }
  std::string Describe() const override { return base_->Describe(); }

 private:
  std::shared_ptr<ObjectStore> base_;
  OpMetrics put_{"put"}, get_{"get"}, head_{"head"}, list_{"list"}, delete_{"delete"};
};

}  // namespace

std::unique_ptr<ObjectStore> NewMeteredObjectStore(std::shared_ptr<ObjectStore> base) {
  return std::make_unique<MeteredObjectStore>(std::move(base));
}

}  // namespace cairn::tier
