// cairn cluster join|members, and the flags that name a cluster's engines (docs/ARCHITECTURE.md,
// "Cluster").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "fs/options.h"

namespace cairn::cli {

// --meta, --ceph-conf, --ceph-user, --pool on cmd, into *settings.
void AddClusterFlags(CLI::App* cmd, fs::ClusterSettings* settings);

class ClusterCommands {
 public:
  explicit ClusterCommands(CLI::App& app);
  // Runs the cluster subcommand given on the command line; -1 when none was.
  int Run();

 private:
  CLI::App* cluster_;
  CLI::App *join_, *members_;
  std::string data_dir_;
  fs::ClusterSettings settings_;
  bool json_ = false;
};

}  // namespace cairn::cli
