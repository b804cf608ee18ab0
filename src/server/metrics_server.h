// MetricsServer: serves GET /metrics in the Prometheus text format on a loopback TCP address, one
// short HTTP/1.0 exchange per connection. The body is the process-wide metrics registry
// (common/metrics.h) plus the gauges that `gauges` renders at request time.
// Thread-safety: Start/Stop from one thread; requests are served on the server's own thread.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "common/status.h"

namespace cairn::server {

class MetricsServer {
 public:
  MetricsServer(std::string address, std::function<std::string()> gauges);
  ~MetricsServer();
  // Binds "HOST:PORT" (port 0: any free port). Only loopback addresses (127.0.0.0/8) are taken.
  Status Start();
  void Stop();
  // "http://127.0.0.1:PORT/metrics" once started.
  const std::string& url() const { return url_; }

 private:
  void Loop();
  void Serve(int fd);
  std::string address_;
  std::function<std::string()> gauges_;
  std::string url_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace cairn::server
