#include "fuse/request_stats.h"

namespace cairn::fuse {

OpCounter g_ops[kOpCount];

std::vector<RequestStat> RequestStats() {
  std::vector<RequestStat> out;
  for (int i = 0; i < kOpCount; ++i) {
    uint64_t n = g_ops[i].count.load(std::memory_order_relaxed);
    if (n > 0) out.push_back({kOpNames[i], n, g_ops[i].nanos.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace cairn::fuse
