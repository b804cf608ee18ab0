#include "fuse/request_stats.h"

#include <mutex>

namespace cairn::fuse {

OpCounter g_ops[kOpCount];

namespace {
std::mutex g_transport_mu;
std::string g_transport;  // GUARDED_BY(g_transport_mu)
}  // namespace

void SetTransportDescription(std::string description) {
  std::lock_guard lock(g_transport_mu);
  g_transport = std::move(description);
}

std::string TransportDescription() {
  std::lock_guard lock(g_transport_mu);
  return g_transport;
}

std::vector<RequestStat> RequestStats() {
  std::vector<RequestStat> out;
  for (int i = 0; i < kOpCount; ++i) {
    uint64_t n = g_ops[i].count.load(std::memory_order_relaxed);
    if (n > 0) out.push_back({kOpNames[i], n, g_ops[i].nanos.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace cairn::fuse
