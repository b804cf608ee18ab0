#include "cli/cluster_commands.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "fs/cluster.h"

namespace cairn::cli {
void AddClusterFlags(CLI::App* cmd, fs::ClusterSettings* s) {
  cmd->add_option("--meta", s->meta,
                  "Cluster mode: the PostgreSQL database that holds the shared metadata "
                  "(libpq connection string, e.g. 'host=127.0.0.1 port=5432 dbname=cairn')");
  cmd->add_option("--ceph-conf", s->ceph_conf,
                  "Cluster mode: ceph.conf of the Ceph cluster whose pool holds the segments");
  cmd->add_option("--ceph-user", s->ceph_user, "Cluster mode: Ceph client name (default admin)");
  cmd->add_option("--pool", s->pool, "Cluster mode: the RADOS pool for segments (default cairn)");
}

ClusterCommands::ClusterCommands(CLI::App& app) {
  cluster_ = app.add_subcommand("cluster", "Cluster mode: add nodes, list members");
  cluster_->require_subcommand(1);
  join_ = cluster_->add_subcommand(
      "join", "Make DATA_DIR a new node of the cluster file system in --meta and --pool");
  join_->add_option("DATA_DIR", data_dir_, "An empty or absent directory on this node")->required();
  AddClusterFlags(join_, &settings_);
  members_ = cluster_->add_subcommand("members", "The nodes of the cluster DATA_DIR belongs to");
  members_->add_option("DATA_DIR", data_dir_, "The data directory of a member")->required();
  members_->add_flag("--json", json_, "Machine-readable output");
}

int ClusterCommands::Run() {
  if (!*cluster_) return -1;
  if (*join_) {
    if (settings_.meta.empty() || settings_.ceph_conf.empty()) {
      return Fail("cluster join", Status(Code::kInvalid, "--meta and --ceph-conf are required"));
    }
    auto sb = fs::JoinCluster(data_dir_, settings_);
    if (!sb) return Fail("cluster join", sb.error());
    fmt::print("{} joined file system {} as node {}; mount it with 'cairn mount {} MOUNTPOINT'\n",
               data_dir_, sb->uuid, sb->cluster.node, data_dir_);
    return 0;
  }
  auto members = fs::ListMembers(data_dir_);
  if (!members) return Fail("cluster members", members.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : *members) out.push_back(fs::MemberJson(m));
  if (json_) {
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  PrintMembers(out, "");
  return 0;
}

}  // namespace cairn::cli
