#include "cli/snap_commands.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "cli/cluster_commands.h"
#include "common/units.h"
#include "fs/restore.h"
#include "server/admin_client.h"
#include "snap/manifest.h"
#include "tier/object_store.h"

namespace cairn::cli {
namespace {

std::string When(int64_t sec) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(static_cast<std::time_t>(sec)));
}

Result<std::string> DataDir(const std::string& mountpoint) {
  return server::DataDirOfMount(mountpoint);
}

// The kernel's dirty pages reach the file system before the snapshot is taken.
void SyncMount(const std::string& mountpoint) {
  int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::syncfs(fd);
  ::close(fd);
}

int Create(const std::string& mountpoint, const std::string& name, bool json) {
  auto data_dir = DataDir(mountpoint);
  if (!data_dir) return Fail("snap create", data_dir.error());
  SyncMount(mountpoint);
  auto j = server::AdminCall(*data_dir, {{"op", "snap_create"}, {"name", name}});
  if (!j) return Fail("snap create", j.error());
  if (json) {
    j->erase("ok");
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  fmt::print("snapshot '{}' created; it is at {}/.snapshots/{}\n", name, mountpoint, name);
  return 0;
}

int ListUrl(const std::string& url, bool json) {
  auto store = tier::OpenObjectStore(url);
  if (!store) return Fail("snap list", store.error());
  auto listing = snap::ListSnapshots(**store);
  if (!listing) return Fail("snap list", listing.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : listing->manifests) {
    uint64_t bytes = m.manifest_bytes;
    for (const auto& s : m.segments) bytes += s.size;
    for (const auto& f : m.metadata) bytes += f.size;
    out.push_back({{"name", m.name},
                   {"fs_uuid", m.fs_uuid},
                   {"created", m.created},
                   {"pushed", m.pushed},
                   {"files", m.files},
                   {"file_bytes", m.file_bytes},
                   {"objects", m.segments.size() + m.metadata.size() + 1},
                   {"object_bytes", bytes}});
  }
  for (const auto& [key, why] : listing->damaged) {
    fmt::print(stderr, "cairn snap list: {}: {}\n", key, why);
  }
  if (json) {
    fmt::print("{}\n", nlohmann::json{{"snapshots", out}}.dump(2));
  } else if (out.empty()) {
    fmt::print("no snapshots in {}\n", url);
  } else {
    fmt::print("{:<24} {:<36} {:<23} {:>10} {:>10}\n", "NAME", "FILE SYSTEM", "CREATED", "FILES",
               "SIZE");
    for (const auto& s : out) {
      fmt::print("{:<24} {:<36} {:<23} {:>10} {:>10}\n", s["name"].get<std::string>(),
                 s["fs_uuid"].get<std::string>(), When(s["created"].get<int64_t>()),
                 s["files"].get<uint64_t>(), FormatSize(s["object_bytes"].get<uint64_t>()));
    }
  }
  return listing->damaged.empty() ? 0 : 1;
}

int List(const std::string& target, bool json) {
  if (target.find("://") != std::string::npos) return ListUrl(target, json);
  auto data_dir = DataDir(target);
  if (!data_dir) return Fail("snap list", data_dir.error());
  auto j = server::AdminCall(*data_dir, {{"op", "snap_list"}});
  if (!j) return Fail("snap list", j.error());
  if (json) {
    j->erase("ok");
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  const auto& snaps = (*j)["snapshots"];
  if (snaps.empty()) {
    fmt::print("no snapshots of {}\n", target);
    return 0;
  }
  fmt::print("{:<24} {:<23} {:>10} {:>10}  {}\n", "NAME", "CREATED", "FILES", "BYTES", "PUSHED TO");
  for (const auto& s : snaps) {
    std::string pushed;
    for (const auto& u : s["pushed_to"])
      pushed += (pushed.empty() ? "" : ", ") + u.get<std::string>();
    fmt::print("{:<24} {:<23} {:>10} {:>10}  {}\n", s["name"].get<std::string>(),
               When(s["created"].get<int64_t>()), s["files"].get<uint64_t>(),
               FormatSize(s["bytes"].get<uint64_t>()), pushed.empty() ? "-" : pushed);
  }
  return 0;
}

int Delete(const std::string& mountpoint, const std::string& name, bool remote,
           const std::string& url) {
  auto data_dir = DataDir(mountpoint);
  if (!data_dir) return Fail("snap delete", data_dir.error());
  auto j = server::AdminCall(
      *data_dir, {{"op", "snap_delete"}, {"name", name}, {"remote", remote}, {"url", url}});
  if (!j) return Fail("snap delete", j.error());
  if ((*j)["local"].get<bool>()) fmt::print("snapshot '{}' deleted\n", name);
  if (remote) {
    fmt::print(
        "pushed snapshot '{}' deleted from {}: {} objects ({}) deleted, {} kept because "
        "something else references them\n",
        name, (*j)["url"].get<std::string>(), (*j)["objects_deleted"].get<uint64_t>(),
        FormatSize((*j)["bytes_deleted"].get<uint64_t>()), (*j)["objects_kept"].get<uint64_t>());
  }
  return 0;
}

int Push(const std::string& mountpoint, const std::string& name, const std::string& url,
         bool json) {
  auto data_dir = DataDir(mountpoint);
  if (!data_dir) return Fail("snap push", data_dir.error());
  std::string phase;
  auto j = server::AdminCall(
      *data_dir, {{"op", "snap_push"}, {"name", name}, {"url", url}}, [&](const nlohmann::json& p) {
        std::string now = p.value("phase", std::string());
        if (now != phase && !phase.empty()) EndProgress();
        phase = now;
        ShowProgress(phase, p.value("done", uint64_t{0}), p.value("total", uint64_t{0}), true);
      });
  if (!phase.empty()) EndProgress();
  if (!j) return Fail("snap push", j.error());
  j->erase("ok");
  if (json) {
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  auto u = [&](const char* k) { return (*j)[k].get<uint64_t>(); };
  const double secs = (*j)["seconds"].get<double>();
  fmt::print("pushed snapshot '{}' to {} as {}\n", name, (*j)["url"].get<std::string>(),
             (*j)["manifest_key"].get<std::string>());
  fmt::print("  {} files, {}; {} segments, {} metadata files\n", u("files"),
             FormatSize(u("file_bytes")), u("segments"), u("metadata_files"));
  fmt::print("  uploaded {} in {} objects; already present {} in {} objects\n",
             FormatSize(u("bytes_uploaded")), u("objects_uploaded"), FormatSize(u("bytes_present")),
             u("objects_present"));
  fmt::print("  {:.1f} s ({}/s)\n", secs,
             FormatSize(secs > 0 ? static_cast<uint64_t>(u("bytes_uploaded") / secs) : 0));
  return 0;
}

int Restore(const std::string& url, const std::string& name, const std::string& data_dir,
            const fs::ClusterSettings& cluster, bool json) {
  if (cluster.enabled() != !cluster.ceph_conf.empty()) {
    return Fail(
        "snap restore",
        Status(Code::kInvalid, "a restore into a cluster needs both --meta and --ceph-conf"));
  }
  std::string phase;
  auto r = fs::RestoreSnapshot(
      url, name, data_dir,
      [&](std::string_view now, uint64_t done, uint64_t total) {
        if (now != phase && !phase.empty()) EndProgress();
        phase = now;
        ShowProgress(phase, done, total, now == "metadata");
      },
      cluster);
  if (!phase.empty()) EndProgress();
  if (!r) return Fail("snap restore", r.error());
  if (json) {
    fmt::print("{}\n", nlohmann::json{{"uuid", r->uuid},
                                      {"manifest_key", r->manifest_key},
                                      {"files", r->files},
                                      {"file_bytes", r->file_bytes},
                                      {"segments", r->segments},
                                      {"segment_bytes", r->segment_bytes},
                                      {"metadata_bytes", r->metadata_bytes},
                                      {"seconds", r->seconds}}
                           .dump(2));
    return 0;
  }
  fmt::print(
      "restored {} into {} in {:.1f} s: {} files, {} (all in the object store; reads "
      "fetch them, 'cairn tier fetch' warms them)\n",
      r->manifest_key, data_dir, r->seconds, r->files, FormatSize(r->file_bytes));
  fmt::print("new file system {}; mount it with: cairn mount {} MOUNTPOINT\n", r->uuid, data_dir);
  if (cluster.enabled()) {
    fmt::print("it is a cluster: {} is node 1; other nodes join with 'cairn cluster join'\n",
               data_dir);
  }
  return 0;
}

}  // namespace

SnapCommands::SnapCommands(CLI::App& app) {
  snap_ = app.add_subcommand("snap", "Snapshots: create, list, delete, push, restore");
  snap_->require_subcommand(1);
  create_ = snap_->add_subcommand("create", "Take a snapshot, shown at MOUNTPOINT/.snapshots/NAME");
  create_->add_option("MOUNTPOINT", mountpoint_, "A Cairn mount point")->required();
  create_->add_option("NAME", name_, "The snapshot's name")->required();
  create_->add_flag("--json", json_, "Machine-readable output");
  list_ = snap_->add_subcommand("list", "Snapshots of a mount, or pushed to an object store");
  list_->add_option("TARGET", target_, "A Cairn mount point, or an object store URL")->required();
  list_->add_flag("--json", json_, "Machine-readable output");
  delete_ = snap_->add_subcommand("delete", "Delete a snapshot (and with --remote its push)");
  delete_->add_option("MOUNTPOINT", mountpoint_, "A Cairn mount point")->required();
  delete_->add_option("NAME", name_, "The snapshot's name")->required();
  delete_->add_flag("--remote", remote_,
                    "Also delete the pushed snapshot and the objects nothing else references");
  delete_->add_option("--to", url_, "Where it was pushed (default: the file system's store)");
  push_ = snap_->add_subcommand("push", "Upload a snapshot to an object store (incremental)");
  push_->add_option("MOUNTPOINT", mountpoint_, "A Cairn mount point")->required();
  push_->add_option("NAME", name_, "The snapshot's name")->required();
  push_->add_option("--to", url_, "Object store URL (default: the file system's own)");
  push_->add_flag("--json", json_, "Machine-readable output");
  restore_ = snap_->add_subcommand("restore", "Create a file system from a pushed snapshot");
  restore_->add_option("URL", url_, "The object store it was pushed to")->required();
  restore_->add_option("NAME", name_, "NAME, or NAME@UUID when several file systems pushed one")
      ->required();
  restore_->add_option("DATA_DIR", data_dir_, "An empty or new directory on NVMe")->required();
  restore_->add_flag("--json", json_, "Machine-readable output");
  AddClusterFlags(restore_, &cluster_);
}

int SnapCommands::Run() {
  if (!*snap_) return -1;
  if (*create_) return Create(mountpoint_, name_, json_);
  if (*list_) return List(target_, json_);
  if (*delete_) return Delete(mountpoint_, name_, remote_, url_);
  if (*push_) return Push(mountpoint_, name_, url_, json_);
  if (*restore_) return Restore(url_, name_, data_dir_, cluster_, json_);
  return 1;
}

}  // namespace cairn::cli
