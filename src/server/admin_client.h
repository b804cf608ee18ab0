// The CLI side of the admin socket, and finding the data directory behind a mount point.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace cairn::server {

// The data directory of the Cairn file system mounted at mountpoint (from /proc/self/mountinfo);
// a clear error when mountpoint is not a Cairn mount.
Result<std::string> DataDirOfMount(const std::string& mountpoint);
// The data directory of the Cairn mount that holds path (any file or directory inside it).
Result<std::string> DataDirOfPath(const std::string& path);
// Sends one request to the mount's daemon and returns its reply; progress lines sent before the
// reply go to on_progress.
Result<nlohmann::json> AdminCall(
    const std::string& data_dir, const nlohmann::json& request,
    const std::function<void(const nlohmann::json&)>& on_progress = nullptr);

}  // namespace cairn::server
