#include "server/daemon.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/file.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/units.h"
#include "fs/cluster.h"
#include "server/admin_server.h"
#include "server/dataset_index.h"
#include "server/metrics_server.h"
#include "server/mounts.h"

namespace cairn::server {
namespace {

nlohmann::json StatsJson(fs::FileSystem& fs) {
  fs::Stats s = fs.GetStats();
  nlohmann::json requests = nlohmann::json::object();
  for (const auto& r : fuse::RequestStats()) {
    requests[r.name] = {{"count", r.count}, {"seconds", static_cast<double>(r.nanos) / 1e9}};
  }
  return {
      {"fuse_requests", requests},
      {"fuse_transport", fuse::TransportDescription()},
      {"ok", true},
      {"data_dir", fs.data_dir()},
      {"uuid", fs.superblock().uuid},
      {"pid", ::getpid()},
      {"files", s.files},
      {"directories", s.directories},
      {"symlinks", s.symlinks},
      {"bytes", s.bytes},
      {"inline_files", s.inline_files},
      {"inline_bytes", s.inline_bytes},
      {"segments", s.segments},
      {"space_used", s.space_used},
      {"space_live", s.space_live},
      {"compacted_segments", s.compacted_segments},
      {"cached_inodes", s.cached_inodes},
      {"inline_max", fs.superblock().inline_max},
      {"segment_size", fs.superblock().segment_size},
  };
}

nlohmann::json TierJson(fs::FileSystem& fs) {
  tier::TierStatus t = fs.tier().GetStatus();
  auto total = [](const tier::TierStatus::Total& x) {
    return nlohmann::json{{"segments", x.segments}, {"bytes", x.bytes}};
  };
  nlohmann::json ops = nlohmann::json::object();
  for (const auto& m : metrics::Snapshot()) {
    if (!m.name.starts_with("cairn_object_store_")) continue;
    // labels look like op="get"
    std::string op = m.labels.size() > 5 ? m.labels.substr(4, m.labels.size() - 5) : m.labels;
    std::string name = m.name.substr(std::strlen("cairn_object_store_"));
    if (m.histogram) {
      ops[op]["seconds_total"] = m.sum;
    } else {
      if (name.ends_with("_total")) name.resize(name.size() - 6);
      ops[op][name] = m.value;
    }
  }
  return {
      {"ok", true},
      {"object_store", t.object_store},
      {"segments",
       {{"open", total(t.open)},
        {"sealed", total(t.sealed)},
        {"uploaded", total(t.uploaded)},
        {"evicted", total(t.evicted)}}},
      {"cached_objects", {{"objects", t.cached_objects}, {"bytes", t.cached_object_bytes}}},
      {"nvme_used", t.nvme_used},
      {"nvme_capacity", t.nvme_capacity},
      {"upload_queue", t.upload_queue},
      {"download_queue", t.download_queue},
      {"upload_rate", t.upload_rate},
      {"download_rate", t.download_rate},
      {"uploaded_bytes", t.uploaded_bytes},
      {"downloaded_bytes", t.downloaded_bytes},
      {"upload_failures", t.upload_failures},
      {"waiting_for_space", t.waiting_for_space},
      {"operations", ops},
  };
}

// Gauges for /metrics, rendered at scrape time.
// Every member's state and rates as its last heartbeat gave them, and the pool (cluster mode).
std::string ClusterGauges(fs::FileSystem& fs) {
  auto c = fs.GetClusterStats();
  if (!c) {
    log::Warn("/metrics: cluster state: {}", c.error().ToString());
    return "";
  }
  size_t up = 0;
  for (const auto& m : c->nodes) up += m.state == "up";
  std::string out = fmt::format(
      "# TYPE cairn_cluster_members gauge\ncairn_cluster_members {}\n"
      "# TYPE cairn_cluster_members_up gauge\ncairn_cluster_members_up {}\n"
      "# TYPE cairn_cluster_pool_bytes gauge\ncairn_cluster_pool_bytes {}\n"
      "# TYPE cairn_cluster_pool_objects gauge\ncairn_cluster_pool_objects {}\n",
      c->members, up, c->pool_bytes, c->pool_objects);
  const std::pair<const char*, double fs::Member::*> series[] = {
      {"read_bytes_per_second", &fs::Member::read_bytes_per_s},
      {"write_bytes_per_second", &fs::Member::write_bytes_per_s},
      {"read_ops_per_second", &fs::Member::read_ops_per_s},
      {"write_ops_per_second", &fs::Member::write_ops_per_s}};
  out += "# TYPE cairn_cluster_node_up gauge\n";
  for (const auto& m : c->nodes) {
    out +=
        fmt::format("cairn_cluster_node_up{{node=\"{}\"}} {}\n", m.node, m.state == "up" ? 1 : 0);
  }
  for (const auto& [name, field] : series) {
    out += fmt::format("# TYPE cairn_cluster_node_{} gauge\n", name);
    for (const auto& m : c->nodes) {
      out += fmt::format("cairn_cluster_node_{}{{node=\"{}\"}} {:.1f}\n", name, m.node, m.*field);
    }
  }
  return out;
}

std::string TierGauges(fs::FileSystem& fs) {
  tier::TierStatus t = fs.tier().GetStatus();
  std::string out = "# TYPE cairn_segment_bytes gauge\n";
  for (auto [name, x] : {std::pair{"open", t.open}, std::pair{"sealed", t.sealed},
                         std::pair{"uploaded", t.uploaded}, std::pair{"evicted", t.evicted}}) {
    out += fmt::format("cairn_segment_bytes{{state=\"{}\"}} {}\n", name, x.bytes);
  }
  out += "# TYPE cairn_segments gauge\n";
  for (auto [name, x] : {std::pair{"open", t.open}, std::pair{"sealed", t.sealed},
                         std::pair{"uploaded", t.uploaded}, std::pair{"evicted", t.evicted}}) {
    out += fmt::format("cairn_segments{{state=\"{}\"}} {}\n", name, x.segments);
  }
  out += fmt::format(
      "# TYPE cairn_nvme_used_bytes gauge\ncairn_nvme_used_bytes {}\n"
      "# TYPE cairn_nvme_capacity_bytes gauge\ncairn_nvme_capacity_bytes {}\n"
      "# TYPE cairn_upload_queue gauge\ncairn_upload_queue {}\n"
      "# TYPE cairn_download_queue gauge\ncairn_download_queue {}\n"
      "# TYPE cairn_cached_object_bytes gauge\ncairn_cached_object_bytes {}\n",
      t.nvme_used, t.nvme_capacity, t.upload_queue, t.download_queue, t.cached_object_bytes);
  fs::Stats s = fs.GetStats();
  out += fmt::format(
      "# TYPE cairn_files gauge\ncairn_files {}\n# TYPE cairn_directories gauge\n"
      "cairn_directories {}\n# TYPE cairn_file_bytes gauge\ncairn_file_bytes {}\n",
      s.files, s.directories, s.bytes);
  if (fs.superblock().cluster.enabled()) out += ClusterGauges(fs);
  return out;
}

nlohmann::json Error(const Status& st) { return {{"ok", false}, {"error", st.ToString()}}; }

nlohmann::json Handle(fs::FileSystem& fs, const nlohmann::json& req, const AdminEmit& emit,
                      const std::string& metrics_url) {
  const std::string op = req.value("op", "");
  if (op == "status") {
    nlohmann::json j = StatsJson(fs);
    if (fs.superblock().cluster.enabled()) {
      auto c = fs.GetClusterStats();
      if (!c) return Error(c.error());
      j["cluster"] = {{"node", c->node},
                      {"members", c->members},
                      {"pool", c->pool},
                      {"pool_bytes", c->pool_bytes},
                      {"pool_objects", c->pool_objects},
                      {"conflict_retries", c->conflict_retries},
                      {"nodes", nlohmann::json::array()}};
      for (const auto& m : c->nodes) j["cluster"]["nodes"].push_back(fs::MemberJson(m));
    }
    j["metrics_url"] = metrics_url;
    j["tier"] = TierJson(fs);
    return j;
  }
  if (op == "tier_status") {
    nlohmann::json j = TierJson(fs);
    j["metrics_url"] = metrics_url;
    return j;
  }
  if (op == "dataset_fetch") {
    // The native client's hydration ahead of an epoch: several files in one parallel fetch.
    std::vector<uint64_t> inos;
    try {
      inos = req.at("inos").get<std::vector<uint64_t>>();
    } catch (const std::exception&) {
      return {{"ok", false}, {"error", "request needs a list of inode numbers"}};
    }
    auto missed = fs.TierFetch(inos, nullptr);
    if (!missed) return Error(missed.error());
    return {{"ok", true}, {"no_room_bytes", *missed}};
  }
  if (op == "tier_location" || op == "tier_fetch" || op == "tier_release" || op == "import") {
    if (!req.contains("ino") || !req["ino"].is_number_unsigned()) {
      return {{"ok", false}, {"error", "request needs an inode number"}};
    }
  }
  const uint64_t ino = req.value("ino", uint64_t{0});
  if (op == "tier_location") {
    auto loc = fs.TierLocation(ino);
    if (!loc) return Error(loc.error());
    return {{"ok", true},
            {"files", loc->files},
            {"local_bytes", loc->local_bytes},
            {"remote_bytes", loc->remote_bytes}};
  }
  if (op == "tier_fetch") {
    auto last = std::chrono::steady_clock::now();
    auto missed = fs.TierFetch(ino, [&](uint64_t done, uint64_t total) {
      auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(200) && done != total) return;
      last = now;
      emit({{"done", done}, {"total", total}});
    });
    if (!missed) return Error(missed.error());
    auto loc = fs.TierLocation(ino);
    if (!loc) return Error(loc.error());
    return {{"ok", true},
            {"no_room_bytes", *missed},
            {"local_bytes", loc->local_bytes},
            {"remote_bytes", loc->remote_bytes}};
  }
  if (op == "tier_release") {
    auto r = fs.TierRelease(ino);
    if (!r) return Error(r.error());
    return {{"ok", true}, {"released_bytes", r->first}, {"not_uploaded_bytes", r->second}};
  }
  if (op == "tier_flush") {
    Status st = fs.tier().Flush(std::chrono::milliseconds(req.value("timeout_ms", 600000)));
    if (!st.ok()) return Error(st);
    return {{"ok", true}};
  }
  if (op == "import") {
    fs::Context ctx{req.value("uid", 0u), req.value("gid", 0u)};
    auto last = std::chrono::steady_clock::now();
    auto report = fs.Import(ctx, ino, req.value("url", ""), req.value("refresh", false),
                            std::clamp(req.value("parallel", 8), 1, 64),
                            [&](std::string_view phase, uint64_t done) {
                              auto now = std::chrono::steady_clock::now();
                              if (now - last < std::chrono::milliseconds(200)) return;
                              last = now;
                              emit({{"phase", phase}, {"done", done}});
                            });
    if (!report) return Error(report.error());
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& [key, reason] : report->skipped) {
      skipped.push_back({{"key", key}, {"reason", reason}});
    }
    return {{"ok", true},
            {"import_id", report->import_id},
            {"listed", report->listed},
            {"files_created", report->files_created},
            {"files_updated", report->files_updated},
            {"files_deleted", report->files_deleted},
            {"files_unchanged", report->files_unchanged},
            {"dirs_created", report->dirs_created},
            {"bytes", report->bytes},
            {"skipped", skipped}};
  }
  if (op == "compact") {
    double threshold = req.value("threshold", 0.5);
    auto n = fs.CompactOnce(threshold);
    if (!n) return {{"ok", false}, {"error", n.error().ToString()}};
    return {{"ok", true}, {"compacted", *n}};
  }
  if (op == "snap_create") {
    auto info = fs.CreateSnapshot(req.value("name", ""));
    if (!info) return Error(info.error());
    return {{"ok", true},
            {"name", info->name},
            {"created", info->created.sec},
            {"files", info->files},
            {"bytes", info->bytes}};
  }
  if (op == "snap_list") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : fs.ListSnapshots()) {
      list.push_back({{"name", s.name},
                      {"created", s.created.sec},
                      {"files", s.files},
                      {"bytes", s.bytes},
                      {"pushed_to", s.pushed_to}});
    }
    return {{"ok", true}, {"snapshots", list}};
  }
  if (op == "snap_delete") {
    const std::string name = req.value("name", "");
    const bool remote = req.value("remote", false);
    nlohmann::json out = {{"ok", true}, {"local", false}};
    Status st = fs.DeleteSnapshot(name);
    if (st.ok()) {
      out["local"] = true;
    } else if (!remote || st.code() != Code::kNotFound) {
      return Error(st);
    }
    if (remote) {
      const std::string url = req.value("url", "");
      auto r = fs.DeleteRemoteSnapshot(name, url);
      if (!r) return Error(r.error());
      out["url"] = url.empty() ? fs.superblock().tier.object_store : url;
      out["objects_deleted"] = r->objects_deleted;
      out["bytes_deleted"] = r->bytes_deleted;
      out["objects_kept"] = r->objects_kept;
    }
    return out;
  }
  if (op == "snap_push") {
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    auto r = fs.PushSnapshot(req.value("name", ""), req.value("url", ""),
                             [&](std::string_view phase, uint64_t done, uint64_t total) {
                               auto now = std::chrono::steady_clock::now();
                               if (now - last < std::chrono::milliseconds(200) && done != total) {
                                 return;
                               }
                               last = now;
                               emit({{"phase", phase}, {"done", done}, {"total", total}});
                             });
    if (!r) return Error(r.error());
    return {{"ok", true},
            {"url", r->url},
            {"manifest_key", r->manifest_key},
            {"segments", r->segments},
            {"metadata_files", r->metadata_files},
            {"objects_uploaded", r->objects_uploaded},
            {"objects_present", r->objects_present},
            {"bytes_uploaded", r->bytes_uploaded},
            {"bytes_present", r->bytes_present},
            {"files", r->files},
            {"file_bytes", r->file_bytes},
            {"seconds", r->seconds}};
  }
  if (op == "dataset_index") {
    // The native client's index (include/cairn/client.h; entries: server/dataset_index.h).
    auto files = fs.IndexTree(req.value("dir", ""));
    if (!files) return Error(files.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : *files) list.push_back(EncodeIndexedFile(f));
    nlohmann::json reply = {{"ok", true}, {"files", std::move(list)}};
    const fs::ClusterSettings& c = fs.superblock().cluster;
    if (c.enabled()) {
      reply["pool"] = {{"conf", c.ceph_conf},
                       {"user", c.ceph_user},
                       {"name", c.pool},
                       {"uuid", fs.superblock().uuid}};
    }
    return reply;
  }
  if (op == "ping") return {{"ok", true}, {"pid", ::getpid()}};
  return {{"ok", false}, {"error", "unknown op '" + op + "'"}};
}

// Tells the waiting parent how the mount went, then closes the pipe.
void Report(int fd, const std::string& message) {
  if (fd < 0) return;
  (void)!::write(fd, message.data(), message.size());
  ::close(fd);
}

int Serve(const DaemonOptions& o, int ready_fd) {
  auto fs = fs::FileSystem::Open(o.data_dir, o.mount);
  if (!fs) {
    Report(ready_fd, "cannot open " + o.data_dir + ": " + fs.error().ToString());
    return 1;
  }
  std::string pid_path = o.data_dir + "/cairn.pid";
  (void)WriteFileAtomic(pid_path, fmt::format("{}\n", ::getpid()));
  MetricsServer metrics(o.mount.metrics_address, [&] { return TierGauges(**fs); });
  if (!o.mount.metrics_address.empty()) {
    Status mst = metrics.Start();
    if (!mst.ok()) {
      Report(ready_fd, "cannot serve /metrics: " + mst.ToString());
      return 1;
    }
    log::Info("metrics at {}", metrics.url());
  }
  AdminServer admin(AdminSocketPath(o.data_dir),
                    [&](const nlohmann::json& r, const AdminEmit& emit) {
                      return Handle(**fs, r, emit, metrics.url());
                    });
  Status st = admin.Start();
  if (!st.ok()) {
    Report(ready_fd, "cannot start the admin socket: " + st.ToString());
    return 1;
  }
  fuse::FuseOptions fuse_options = o.fuse;
  if ((*fs)->superblock().cluster.enabled()) {
    // Other nodes change the namespace: the kernel keeps names and attributes for the lease, or
    // longer while their changes are heard (FileSystem::KernelTimeout), and drops a file's pages
    // at open.
    fuse_options.entry_timeout_s = std::min(fuse_options.entry_timeout_s, o.mount.lease_s);
    fuse_options.attr_timeout_s = std::min(fuse_options.attr_timeout_s, o.mount.lease_s);
    fuse_options.keep_cache = false;
    fuse_options.writeback_cache = false;
    log::Info("cluster node {}: lease {}s, other nodes' changes {}",
              (*fs)->superblock().cluster.node, o.mount.lease_s,
              o.mount.notify ? "heard at once (NOTIFY)" : "seen within the lease");
  }
  auto mount = fuse::FuseMount::Mount(fs->get(), o.mountpoint, fuse_options);
  if (!mount) {
    Report(ready_fd, mount.error().ToString());
    return 1;
  }
  (*fs)->SetKernelCache(mount->get());
  log::Info("mounted {} at {} (pid {})", o.data_dir, o.mountpoint, ::getpid());
  // The mount is ready once it answers: a stat of its root waits for the kernel's INIT to be
  // served by the loop below. Only then may the read-ahead window grow, since the INIT reply
  // sets it to at most the kernel's default.
  std::thread ready([&o, ready_fd] {
    struct stat root;
    if (::stat(o.mountpoint.c_str(), &root) != 0) {
      const std::string why = fmt::format("the new mount at {} does not answer: {}", o.mountpoint,
                                          std::strerror(errno));
      log::Error("{}", why);
      return Report(ready_fd, why);
    }
    if (o.fuse.read_ahead_bytes > 0) {
      Status ra = fuse::SetReadAhead(root.st_dev, o.fuse.read_ahead_bytes);
      if (ra.ok()) {
        log::Info("read-ahead {}", FormatSize(o.fuse.read_ahead_bytes));
      } else {
        log::Warn("read-ahead stays at the kernel's default (only root may set it): {}",
                  ra.ToString());
      }
    }
    Report(ready_fd, "OK");
  });
  st = (*mount)->Run();
  if (!st.ok()) log::Error("{}", st.ToString());
  admin.Stop();  // waits for admin requests in progress (they may use the kernel cache)
  (*fs)->SetKernelCache(nullptr);
  mount->reset();  // unmount (if still mounted) before flushing; a waiting stat then returns
  ready.join();
  metrics.Stop();
  st = (*fs)->Shutdown();
  if (!st.ok()) {
    log::Error("flush at unmount failed: {}", st.ToString());
    return 1;
  }
  fs->reset();
  ::unlink(pid_path.c_str());
  log::Info("unmounted {}; everything is durable", o.data_dir);
  return 0;
}

// Makes mountpoint ready for a mount of data_dir: a dead mount of the same data directory left by
// a crashed daemon is detached (all of them, when crashes stacked several); anything else that is
// mounted there is refused.
Status PrepareMountPoint(const std::string& data_dir, const std::string& mountpoint) {
  for (const auto& m : ListMounts()) {
    if (m.fstype == kCairnFsType && m.source == data_dir && m.mountpoint != mountpoint &&
        !IsDeadMount(m.mountpoint)) {
      return Status(Code::kBusy,
                    fmt::format("{} is already mounted at {}", data_dir, m.mountpoint));
    }
  }
  CAIRN_ASSIGN_OR_RETURN(int detached, DetachDeadMounts(mountpoint, data_dir));
  if (detached > 0) {
    fmt::print(stderr, "cairn mount: detached {} dead mount{} of {} at {} (its daemon was gone)\n",
               detached, detached == 1 ? "" : "s", data_dir, mountpoint);
  }
  auto at = MountsAt(mountpoint);
  if (at.empty()) return Status::Ok();
  const MountEntry& top = at.back();
  if (top.fstype == kCairnFsType && top.source == data_dir) {
    return Status(Code::kBusy, fmt::format("{} is already mounted at {}", data_dir, mountpoint));
  }
  if (top.fstype == kCairnFsType && IsDeadMount(mountpoint)) {
    return Status(Code::kBusy, fmt::format("{} holds a dead Cairn mount of another file system "
                                           "({}); 'cairn unmount {}' detaches it",
                                           mountpoint, top.source, mountpoint));
  }
  return Status(Code::kBusy, fmt::format("{} is already a mount point ({} {}); unmount it first",
                                         mountpoint, top.fstype, top.source));
}

}  // namespace

int RunMount(const DaemonOptions& options) {
  DaemonOptions o = options;
  char real[PATH_MAX];
  if (!::realpath(o.data_dir.c_str(), real)) {
    fmt::print(stderr, "cairn mount: {}: {}\n", o.data_dir, std::strerror(errno));
    return 1;
  }
  o.data_dir = real;
  auto super = fs::ReadSuperblock(o.data_dir);
  if (!super) {
    fmt::print(stderr, "cairn mount: {}\n", super.error().message());
    return 1;
  }
  auto abs = AbsolutePath(o.mountpoint);
  if (!abs) {
    fmt::print(stderr, "cairn mount: {}\n", abs.error().ToString());
    return 1;
  }
  Status prepared = PrepareMountPoint(o.data_dir, *abs);
  if (!prepared.ok()) {
    fmt::print(stderr, "cairn mount: {}\n", prepared.message());
    return 1;
  }
  struct stat st;
  if (::stat(abs->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fmt::print(stderr, "cairn mount: mount point {} is not an existing directory\n", o.mountpoint);
    return 1;
  }
  if (!::realpath(abs->c_str(), real)) {
    fmt::print(stderr, "cairn mount: {}: {}\n", o.mountpoint, std::strerror(errno));
    return 1;
  }
  o.mountpoint = real;
  // A plain `umount` returns before the daemon has flushed: wait for it rather than fail.
  Status free = WaitForDataDir(o.data_dir, std::chrono::seconds(60), [&] {
    fmt::print(stderr, "cairn mount: waiting for the previous daemon of {} to finish\n",
               o.data_dir);
  });
  if (!free.ok()) {
    fmt::print(stderr, "cairn mount: {}\n", free.message());
    return 1;
  }

  if (o.foreground) return Serve(o, -1);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    fmt::print(stderr, "cairn mount: pipe: {}\n", std::strerror(errno));
    return 1;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    fmt::print(stderr, "cairn mount: fork: {}\n", std::strerror(errno));
    return 1;
  }
  if (pid > 0) {
    ::close(pipe_fds[1]);
    std::string message;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0)
      message.append(buf, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    if (message == "OK") return 0;
    if (message.empty())
      message = "the daemon exited before the mount was ready; see " + o.data_dir + "/cairn.log";
    fmt::print(stderr, "cairn mount: {}\n", message);
    return 1;
  }
  // The daemon: its own session, no terminal, logs to DATA_DIR/cairn.log.
  ::close(pipe_fds[0]);
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  std::string log_path = o.data_dir + "/cairn.log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  if (log_fd >= 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
  }
  if (::chdir("/") != 0) {
    Report(pipe_fds[1], "chdir /");
    ::_exit(1);
  }
  int code = Serve(o, pipe_fds[1]);
  ::_exit(code);
}

}  // namespace cairn::server
