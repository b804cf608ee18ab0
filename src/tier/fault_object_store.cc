#include "tier/fault_object_store.h"

#include <fmt/format.h>

#include <thread>

namespace cairn::tier {

FaultObjectStore::FaultObjectStore(std::shared_ptr<ObjectStore> base, FaultOptions options)
    : base_(std::move(base)), options_(options), rng_(0x5eed) {}

void FaultObjectStore::Set(const FaultOptions& options) {
  std::lock_guard lock(mu_);
  options_ = options;
}

Status FaultObjectStore::Inject(std::string_view op, std::string_view key) {
  std::chrono::milliseconds delay;
  bool fail;
  {
    std::lock_guard lock(mu_);
    delay = options_.delay;
    fail =
        options_.down || std::uniform_real_distribution<double>(0, 1)(rng_) < options_.error_rate;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  if (!fail) return Status::Ok();
  injected_.fetch_add(1);
  return Status(Code::kUnavailable, fmt::format("injected fault: {} {}", op, key));
}

bool FaultObjectStore::Truncate() {
  std::lock_guard lock(mu_);
  return std::uniform_real_distribution<double>(0, 1)(rng_) < options_.truncate_rate;
}

Status FaultObjectStore::Put(std::string_view key, std::string_view data, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("put", key));
  return base_->Put(key, data, o);
}

Status FaultObjectStore::PutFile(std::string_view key, const std::string& path, uint64_t offset,
                                 uint64_t length, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("put", key));
  return base_->PutFile(key, path, offset, length, o);
}

Result<size_t> FaultObjectStore::GetRange(std::string_view key, uint64_t offset, size_t length,
                                          char* out, std::string_view if_match,
                                          const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("get", key));
  CAIRN_ASSIGN_OR_RETURN(size_t n, base_->GetRange(key, offset, length, out, if_match, o));
  if (n > 0 && Truncate()) {
    injected_.fetch_add(1);
    return Err(Code::kUnavailable, fmt::format("injected fault: short body for {}", key));
  }
  return n;
}

Result<uint64_t> FaultObjectStore::GetToFile(std::string_view key, const std::string& path,
                                             std::string_view if_match, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("get", key));
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, base_->GetToFile(key, path, if_match, o));
  if (n > 0 && Truncate()) {
    injected_.fetch_add(1);
    return Err(Code::kUnavailable, fmt::format("injected fault: short body for {}", key));
  }
  return n;
}

Result<ObjectInfo> FaultObjectStore::Head(std::string_view key, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("head", key));
  return base_->Head(key, o);
}

Result<ListPage> FaultObjectStore::List(std::string_view prefix, std::string_view delimiter,
                                        std::string_view token, int max_keys,
                                        const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("list", prefix));
  return base_->List(prefix, delimiter, token, max_keys, o);
}

Result<ListPage> FaultObjectStore::ListAfter(std::string_view prefix, std::string_view start_after,
                                             int max_keys, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("list", prefix));
  return base_->ListAfter(prefix, start_after, max_keys, o);
}

Status FaultObjectStore::Delete(std::string_view key, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(Inject("delete", key));
  return base_->Delete(key, o);
}

std::string FaultObjectStore::Describe() const { return base_->Describe() + " (with faults)"; }

}  // namespace cairn::tier
