// cairn snap create|list|delete|push|restore (see docs/ARCHITECTURE.md, "Snapshots").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "fs/options.h"

namespace cairn::cli {

class SnapCommands {
 public:
  // Adds the `snap` subcommand and its own subcommands to app.
  explicit SnapCommands(CLI::App& app);
  // Runs the snap subcommand given on the command line; -1 when none was.
  int Run();

 private:
  CLI::App* snap_;
  CLI::App *create_, *list_, *delete_, *push_, *restore_;
  std::string mountpoint_, name_, target_, url_, data_dir_;
  bool json_ = false, remote_ = false;
  fs::ClusterSettings cluster_;  // restore into a cluster
};

}  // namespace cairn::cli
