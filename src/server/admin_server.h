// AdminServer: the running mount's control channel, a Unix stream socket DATA_DIR/admin.sock with
// mode 0600 (only the owner, normally root, may talk to it). One JSON request per line, one JSON
// reply per line: {"op":"status"} -> {"ok":true,...}. The CLI is its client (admin_client.h).
// Thread-safety: Start/Stop from one thread; requests are served on the server's own thread.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/status.h"

namespace cairn::server {

using AdminHandler = std::function<nlohmann::json(const nlohmann::json& request)>;

class AdminServer {
 public:
  AdminServer(std::string socket_path, AdminHandler handler);
  ~AdminServer();
  Status Start();
  void Stop();

 private:
  void Loop();
  void Serve(int fd);
  std::string path_;
  AdminHandler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// The admin socket of a data directory.
std::string AdminSocketPath(const std::string& data_dir);

}  // namespace cairn::server
