// MeteredObjectStore: wraps an ObjectStore and counts, per operation (put, get, head, list,
// delete), requests, bytes moved, errors and latency in the process-wide metrics registry:
//   cairn_object_store_requests_total{op}, cairn_object_store_errors_total{op},
//   cairn_object_store_bytes_total{op}, cairn_object_store_seconds{op} (histogram).
// Retries are counted by the store that retries (cairn_object_store_retries_total{op}).
// Thread-safety: thread-safe.
#pragma once

#include <memory>

#include "tier/object_store.h"

namespace cairn::tier {

std::unique_ptr<ObjectStore> NewMeteredObjectStore(std::shared_ptr<ObjectStore> base);

}  // namespace cairn::tier
