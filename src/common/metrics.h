// Metrics: a process-wide registry of counters and latency histograms, rendered in the Prometheus
// text format for /metrics and read back as numbers for `cairn status` and `cairn tier status`.
//
// A metric is named like "cairn_object_store_requests_total" with an optional label set written
// in Prometheus syntax ("op=\"get\""). Get*() returns a reference that stays valid for the life
// of the process, so hot paths look a metric up once and keep the reference.
//
// Thread-safety: everything is thread-safe; updates are relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::metrics {

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Latency histogram with fixed bucket bounds in seconds (1 ms .. 60 s).
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  5.0,   60.0};
  void Observe(double seconds);
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const;
  uint64_t Bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size()> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

Counter& GetCounter(std::string_view name, std::string_view labels = {});
Histogram& GetHistogram(std::string_view name, std::string_view labels = {});

// Prometheus text exposition of every metric registered so far.
std::string RenderPrometheus();

struct Sample {
  std::string name;
  std::string labels;
  uint64_t value = 0;  // counters; for histograms, the count
  double sum = 0;      // histograms only: total seconds
  bool histogram = false;
};
std::vector<Sample> Snapshot();

}  // namespace cairn::metrics
