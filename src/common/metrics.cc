#include "common/metrics.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

namespace cairn::metrics {
namespace {

struct Registry {
  std::mutex mu;
  // Keyed by (name, labels); std::map keeps the exposition grouped by name and stable.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Counter>> counters;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Histogram>> histograms;
};

Registry& Global() {
  static Registry* registry = new Registry();  // never destroyed: references outlive exit paths
  return *registry;
}

std::string WithLabels(const std::string& name, const std::string& labels,
                       std::string_view extra = {}) {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + std::string(extra);
  return all.empty() ? name : fmt::format("{}{{{}}}", name, all);
}

}  // namespace

void Histogram::Observe(double seconds) {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

double Histogram::Sum() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

Counter& GetCounter(std::string_view name, std::string_view labels) {
  Registry& r = Global();
  std::lock_guard lock(r.mu);
  auto& slot = r.counters[{std::string(name), std::string(labels)}];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& GetHistogram(std::string_view name, std::string_view labels) {
  Registry& r = Global();
  std::lock_guard lock(r.mu);
  auto& slot = r.histograms[{std::string(name), std::string(labels)}];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

std::string RenderPrometheus() {
  Registry& r = Global();
  std::lock_guard lock(r.mu);
  std::string out;
  std::string last;
  for (const auto& [key, c] : r.counters) {
    if (key.first != last) out += fmt::format("# TYPE {} counter\n", last = key.first);
    out += fmt::format("{} {}\n", WithLabels(key.first, key.second), c->Value());
  }
  last.clear();
  for (const auto& [key, h] : r.histograms) {
    if (key.first != last) out += fmt::format("# TYPE {} histogram\n", last = key.first);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      cumulative += h->Bucket(i);
      out += fmt::format("{} {}\n",
                         WithLabels(key.first + "_bucket", key.second,
                                    fmt::format("le=\"{}\"", Histogram::kBounds[i])),
                         cumulative);
    }
    out += fmt::format("{} {}\n", WithLabels(key.first + "_bucket", key.second, "le=\"+Inf\""),
                       h->Count());
    out += fmt::format("{} {}\n", WithLabels(key.first + "_sum", key.second), h->Sum());
    out += fmt::format("{} {}\n", WithLabels(key.first + "_count", key.second), h->Count());
  }
  return out;
}

std::vector<Sample> Snapshot() {
  Registry& r = Global();
  std::lock_guard lock(r.mu);
  std::vector<Sample> out;
  for (const auto& [key, c] : r.counters)
    out.push_back({key.first, key.second, c->Value(), 0, false});
  for (const auto& [key, h] : r.histograms) {
    out.push_back({key.first, key.second, h->Count(), h->Sum(), true});
  }
  return out;
}

}  // namespace cairn::metrics
