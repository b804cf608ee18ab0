// AdminServer: the running mount's control channel, a Unix stream socket DATA_DIR/admin.sock with
// mode 0600 (only the owner, normally root, may talk to it). One JSON request per line, one JSON
// reply per line: {"op":"status"} -> {"ok":true,...}. Long operations may first send progress
// lines ({"progress":true,...}) before the reply. The CLI is its client (admin_client.h).
// Thread-safety: Start/Stop from one thread; each connection is served on its own thread, so a
// long fetch does not hold up `cairn status`; Stop waits for connections in progress.
#pragma once

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace cairn::server {

// Sends one progress line to the client.
using AdminEmit = std::function<void(const nlohmann::json& progress)>;
using AdminHandler =
    std::function<nlohmann::json(const nlohmann::json& request, const AdminEmit& emit)>;

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
  std::mutex conns_mu_;
  std::vector<std::thread> conns_;  // GUARDED_BY(conns_mu_)
};

// The admin socket of a data directory.
std::string AdminSocketPath(const std::string& data_dir);

}  // namespace cairn::server
