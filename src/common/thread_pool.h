// ThreadPool: a fixed set of worker threads running submitted tasks in FIFO order.
// Destruction (or Stop) finishes the tasks already queued, then joins the workers.
// Thread-safety: Submit and Pending may be called from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace cairn {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
  }
  ~ThreadPool() { Stop(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  // Tasks queued or running.
  size_t Pending() {
    std::lock_guard lock(mu_);
    return tasks_.size() + running_;
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
      lock.unlock();
      task();
      lock.lock();
      --running_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  size_t running_ = 0;                       // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

// Runs fn(i) for i in [0, n) on up to `threads` threads; the calling thread calls tick() about
// every 200 ms while they run, and once at the end. After one call fails, the items not started
// yet are skipped; the first error is returned.
inline Status RunParallel(size_t n, int threads, const std::function<Status(size_t)>& fn,
                          const std::function<void()>& tick = {}) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  std::atomic<bool> failed{false};
  std::atomic<int> running{0};
  std::vector<std::thread> workers;
  const int count =
      static_cast<int>(std::min<size_t>(n, static_cast<size_t>(std::max(1, threads))));
  running = count;
  for (int t = 0; t < count; ++t) {
    workers.emplace_back([&] {
      for (size_t i; !failed && (i = next++) < n;) {
        Status st = fn(i);
        if (!st.ok()) {
          std::lock_guard lock(mu);
          if (first.ok()) first = st;
          failed = true;
        }
      }
      --running;
    });
  }
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tick ? 200 : 5));
    if (tick) tick();
  }
  for (auto& w : workers) w.join();
  if (tick) tick();
  return first;
}

}  // namespace cairn
