// The `cairn` command: format, mount, unmount, status, fsck, compact, tier, import, snap.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "cli/cluster_commands.h"
#include "cli/snap_commands.h"
#include "common/units.h"
#include "fs/options.h"
#include "server/admin_client.h"
#include "server/daemon.h"
#include "server/mounts.h"
#include "tier/object_store.h"

namespace {

using namespace cairn;
using cli::EndProgress;
using cli::Fail;
using cli::ShowProgress;

struct TierFlags {
  std::string object_store, nvme_capacity = "0", high = "90%", low = "80%", delay = "10s",
                            seal_timeout = "5s", retention = "0";
};

int CmdFormat(const std::string& data_dir, const std::string& inline_max,
              const std::string& segment_size, const TierFlags& t,
              const fs::ClusterSettings& cluster) {
  fs::FormatOptions opts;
  opts.cluster = cluster;
  if (cluster.enabled() && cluster.ceph_conf.empty()) {
    return Fail("format", Status(Code::kInvalid, "--meta needs --ceph-conf (and --pool)"));
  }
  if (!cluster.enabled() && !cluster.ceph_conf.empty()) {
    return Fail("format", Status(Code::kInvalid, "--ceph-conf needs --meta"));
  }
  opts.tier.object_store = t.object_store;
  auto cap = ParseSize(t.nvme_capacity);
  if (!cap) return Fail("format", cap.error());
  opts.tier.nvme_capacity = *cap;
  for (auto [text, out] : {std::pair{&t.high, &opts.tier.high_watermark},
                           std::pair{&t.low, &opts.tier.low_watermark}}) {
    auto v = ParseFraction(*text);
    if (!v) return Fail("format", v.error());
    *out = *v;
  }
  for (auto [text, out] : {std::pair{&t.delay, &opts.tier.tiering_delay_s},
                           std::pair{&t.seal_timeout, &opts.tier.seal_timeout_s},
                           std::pair{&t.retention, &opts.tier.retention_s}}) {
    auto v = ParseDuration(*text);
    if (!v) return Fail("format", v.error());
    *out = *v;
  }
  if (!opts.tier.object_store.empty()) {
    // A clear error now rather than at mount: the URL must parse and the store must answer.
    auto store = tier::OpenObjectStore(opts.tier.object_store);
    if (!store) return Fail("format", store.error());
    tier::CallOptions call;
    call.deadline = std::chrono::milliseconds(15000);
    auto page = (*store)->List("", "/", "", 1, call);
    if (!page) {
      return Fail("format", Status(page.error().code(), "object store " + opts.tier.object_store +
                                                            ": " + page.error().message()));
    }
  }
  auto im = ParseSize(inline_max);
  if (!im) return Fail("format", im.error());
  auto ss = ParseSize(segment_size);
  if (!ss) return Fail("format", ss.error());
  opts.inline_max = *im;
  opts.segment_size = *ss;
  Status st = fs::Format(data_dir, opts);
  if (!st.ok()) return Fail("format", st);
  auto sb = fs::ReadSuperblock(data_dir);
  if (!sb) return Fail("format", sb.error());
  fmt::print("formatted {} (inline files up to {}, segments of {}, objects in {})\n", data_dir,
             FormatSize(opts.inline_max), FormatSize(opts.segment_size), sb->tier.object_store);
  if (sb->cluster.enabled()) {
    fmt::print("cluster file system {}: this is node {}; add nodes with 'cairn cluster join'\n",
               sb->uuid, sb->cluster.node);
  }
  return 0;
}

// Inode number of a path inside a Cairn mount, and the mount's data directory.
struct Target {
  std::string data_dir;
  uint64_t ino = 0;
};
Result<Target> ResolvePath(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string data_dir, server::DataDirOfPath(path));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Err(ErrnoStatus(path));
  return Target{data_dir, static_cast<uint64_t>(st.st_ino)};
}

int CmdTierStatus(const std::string& mountpoint, bool json) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return Fail("tier status", data_dir.error());
  auto j = server::AdminCall(*data_dir, {{"op", "tier_status"}});
  if (!j) return Fail("tier status", j.error());
  j->erase("ok");
  if (json) {
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  auto& t = *j;
  fmt::print("Object tier of {}\n", mountpoint);
  fmt::print("  object store     {}\n", t["object_store"].get<std::string>());
  const uint64_t used = t["nvme_used"].get<uint64_t>(), cap = t["nvme_capacity"].get<uint64_t>();
  fmt::print("  NVMe             {} of {} ({:.1f}%){}\n", FormatSize(used), FormatSize(cap),
             cap ? 100.0 * static_cast<double>(used) / static_cast<double>(cap) : 0.0,
             t["waiting_for_space"].get<bool>() ? ", writes waiting for uploads" : "");
  for (const char* state : {"open", "sealed", "uploaded", "evicted"}) {
    const auto& x = t["segments"][state];
    fmt::print("  {:<16} {:>6} segments {:>12}\n", state, x["segments"].get<uint64_t>(),
               FormatSize(x["bytes"].get<uint64_t>()));
  }
  fmt::print("  cached objects   {:>6} objects  {:>12}\n",
             t["cached_objects"]["objects"].get<uint64_t>(),
             FormatSize(t["cached_objects"]["bytes"].get<uint64_t>()));
  fmt::print("  uploads          {} queued, {}/s, {} since mount, {} failures\n",
             t["upload_queue"].get<uint64_t>(),
             FormatSize(static_cast<uint64_t>(t["upload_rate"].get<double>())),
             FormatSize(t["uploaded_bytes"].get<uint64_t>()), t["upload_failures"].get<uint64_t>());
  fmt::print("  downloads        {} queued, {}/s, {} since mount\n",
             t["download_queue"].get<uint64_t>(),
             FormatSize(static_cast<uint64_t>(t["download_rate"].get<double>())),
             FormatSize(t["downloaded_bytes"].get<uint64_t>()));
  fmt::print(
      "  object store operations, this store and imported ones (requests, errors, retries, "
      "bytes, mean latency):\n");
  for (auto& [op, m] : t["operations"].items()) {
    const uint64_t n = m.value("requests", uint64_t{0});
    fmt::print("    {:<8} {:>10} {:>8} {:>8} {:>12} {:>9.2f} ms\n", op, n,
               m.value("errors", uint64_t{0}), m.value("retries", uint64_t{0}),
               FormatSize(m.value("bytes", uint64_t{0})),
               n ? m.value("seconds_total", 0.0) * 1000 / static_cast<double>(n) : 0.0);
  }
  if (t.contains("metrics_url") && !t["metrics_url"].get<std::string>().empty()) {
    fmt::print("  metrics          {}\n", t["metrics_url"].get<std::string>());
  }
  return 0;
}

int CmdTierFetch(const std::vector<std::string>& paths) {
  int rc = 0;
  for (const auto& path : paths) {
    auto t = ResolvePath(path);
    if (!t) {
      rc = Fail("tier fetch", t.error());
      continue;
    }
    auto j = server::AdminCall(t->data_dir, {{"op", "tier_fetch"}, {"ino", t->ino}},
                               [&](const nlohmann::json& p) {
                                 ShowProgress(path.c_str(), p.value("done", uint64_t{0}),
                                              p.value("total", uint64_t{0}), true);
                               });
    EndProgress();
    if (!j) {
      rc = Fail("tier fetch", Status(j.error().code(), path + ": " + j.error().message()));
      continue;
    }
    const uint64_t no_room = (*j)["no_room_bytes"].get<uint64_t>();
    fmt::print("{}: {} on NVMe, {} only in the object store{}\n", path,
               FormatSize((*j)["local_bytes"].get<uint64_t>()),
               FormatSize((*j)["remote_bytes"].get<uint64_t>()),
               no_room ? fmt::format(" ({} found no room on NVMe)", FormatSize(no_room)) : "");
    if (no_room) rc = 1;
  }
  return rc;
}

int CmdTierRelease(const std::vector<std::string>& paths) {
  int rc = 0;
  for (const auto& path : paths) {
    auto t = ResolvePath(path);
    if (!t) {
      rc = Fail("tier release", t.error());
      continue;
    }
    auto j = server::AdminCall(t->data_dir, {{"op", "tier_release"}, {"ino", t->ino}});
    if (!j) {
      rc = Fail("tier release", Status(j.error().code(), path + ": " + j.error().message()));
      continue;
    }
    const uint64_t kept = (*j)["not_uploaded_bytes"].get<uint64_t>();
    fmt::print("{}: released {}{}\n", path, FormatSize((*j)["released_bytes"].get<uint64_t>()),
               kept ? fmt::format(" ({} not uploaded yet stays on NVMe)", FormatSize(kept)) : "");
  }
  return rc;
}

int CmdTierLocation(const std::string& path, bool json) {
  auto t = ResolvePath(path);
  if (!t) return Fail("tier location", t.error());
  auto j = server::AdminCall(t->data_dir, {{"op", "tier_location"}, {"ino", t->ino}});
  if (!j) return Fail("tier location", j.error());
  j->erase("ok");
  if (json) {
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  fmt::print("{}: {} files, {} on NVMe, {} only in the object store\n", path,
             (*j)["files"].get<uint64_t>(), FormatSize((*j)["local_bytes"].get<uint64_t>()),
             FormatSize((*j)["remote_bytes"].get<uint64_t>()));
  return 0;
}

int CmdTierFlush(const std::string& mountpoint, double timeout_s) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return Fail("tier flush", data_dir.error());
  auto j = server::AdminCall(
      *data_dir, {{"op", "tier_flush"}, {"timeout_ms", static_cast<int64_t>(timeout_s * 1000)}});
  if (!j) return Fail("tier flush", j.error());
  fmt::print("everything written is in the object store\n");
  return 0;
}

int CmdImport(const std::string& url, const std::string& dest, bool refresh, int parallel,
              bool json) {
  if (!refresh) {
    // DEST may not exist yet: create it (and its parents) through the mount.
    std::string partial;
    for (size_t pos = 0; pos != std::string::npos;) {
      pos = dest.find('/', pos + 1);
      partial = dest.substr(0, pos);
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return Fail("import", ErrnoStatus("create " + partial));
      }
    }
  }
  auto t = ResolvePath(dest);
  if (!t) return Fail("import", t.error());
  auto j =
      server::AdminCall(t->data_dir,
                        {{"op", "import"},
                         {"ino", t->ino},
                         {"url", url},
                         {"refresh", refresh},
                         {"parallel", parallel},
                         {"uid", ::getuid()},
                         {"gid", ::getgid()}},
                        [&](const nlohmann::json& p) {
                          if (!::isatty(2)) return;
                          fmt::print(stderr, "\r{} {} keys   ", p.value("phase", std::string()),
                                     p.value("done", uint64_t{0}));
                        });
  EndProgress();
  if (!j) return Fail("import", j.error());
  j->erase("ok");
  if (json) {
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  auto u = [&](const char* k) { return (*j)[k].get<uint64_t>(); };
  for (const auto& s : (*j)["skipped"]) {
    fmt::print(stderr, "skipped '{}': {}\n", s["key"].get<std::string>(),
               s["reason"].get<std::string>());
  }
  fmt::print(
      "{} -> {}: {} keys listed; {} files created, {} updated, {} deleted, {} unchanged, "
      "{} directories created, {} skipped ({})\n",
      url, dest, u("listed"), u("files_created"), u("files_updated"), u("files_deleted"),
      u("files_unchanged"), u("dirs_created"), (*j)["skipped"].size(), FormatSize(u("bytes")));
  return 0;
}

int CmdUnmount(const std::string& mountpoint, double timeout_s) {
  auto abs = server::AbsolutePath(mountpoint);
  if (!abs) return Fail("unmount", abs.error());
  auto at = server::MountsAt(*abs);
  if (at.empty() || at.back().fstype != server::kCairnFsType) {
    return Fail("unmount", Status(Code::kInvalid, mountpoint + " is not a Cairn mount point"));
  }
  const std::string data_dir = at.back().source;
  if (server::IsDeadMount(*abs)) {
    // The daemon is gone (kill -9, out of memory): detach every dead Cairn mount stacked here.
    auto detached = server::DetachDeadMounts(*abs);
    if (!detached) return Fail("unmount", detached.error());
    fmt::print(stderr,
               "cairn unmount: the daemon of {} was gone; detached {} dead mount{} (what was "
               "fsync'd is on disk: 'cairn mount {} {}' brings it back)\n",
               *abs, *detached, *detached == 1 ? "" : "s", data_dir, *abs);
    return 0;
  }
  int r = ::geteuid() == 0 ? (::umount2(abs->c_str(), UMOUNT_NOFOLLOW) == 0 ? 0 : -1)
                           : server::RunProgram({"fusermount3", "-u", *abs});
  if (r != 0) {
    if (errno == EBUSY) {
      return Fail("unmount", Status(Code::kBusy, mountpoint + " is busy (a process has a file or "
                                                              "directory open in it)"));
    }
    return Fail("unmount", Status(Code::kIo, "could not unmount " + mountpoint));
  }
  // The daemon holds the data directory's lock until everything is flushed.
  Status flushed = server::WaitForDataDir(
      data_dir, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (!flushed.ok()) {
    return Fail("unmount", Status(Code::kBusy, "the daemon did not finish flushing in time"));
  }
  return 0;
}

int CmdStatus(const std::string& mountpoint, bool json, bool requests) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return Fail("status", data_dir.error());
  auto j = server::AdminCall(*data_dir, {{"op", "status"}});
  if (!j) return Fail("status", j.error());
  if (json) {
    j->erase("ok");
    fmt::print("{}\n", j->dump(2));
    return 0;
  }
  auto u = [&](const char* k) { return (*j)[k].get<uint64_t>(); };
  uint64_t used = u("space_used"), live = u("space_live");
  fmt::print("Cairn file system at {}\n", mountpoint);
  fmt::print("  data directory  {}\n", (*j)["data_dir"].get<std::string>());
  fmt::print("  files           {} ({} inline, {} in segments)\n", u("files"), u("inline_files"),
             u("files") - u("inline_files"));
  fmt::print("  directories     {}\n", u("directories"));
  fmt::print("  symlinks        {}\n", u("symlinks"));
  fmt::print("  bytes           {} ({} inline)\n", FormatSize(u("bytes")),
             FormatSize(u("inline_bytes")));
  fmt::print("  segments        {} of up to {}\n", u("segments"), FormatSize(u("segment_size")));
  fmt::print("  space used      {} in segments, {} live ({:.1f}%)\n", FormatSize(used),
             FormatSize(live),
             used ? 100.0 * static_cast<double>(live) / static_cast<double>(used) : 100.0);
  fmt::print("  compacted       {} segments since mount\n", u("compacted_segments"));
  if (j->contains("fuse_transport")) {
    fmt::print("  FUSE transport  {}\n", (*j)["fuse_transport"].get<std::string>());
  }
  if (j->contains("cluster")) {
    const auto& c = (*j)["cluster"];
    fmt::print("  cluster         node {} of {} members; pool {}: {} in {} objects (all nodes)\n",
               c["node"].get<uint32_t>(), c["members"].get<uint64_t>(),
               c["pool"].get<std::string>(), FormatSize(c["pool_bytes"].get<uint64_t>()),
               c["pool_objects"].get<uint64_t>());
    fmt::print("                  {} changes rerun after another node's\n",
               c["conflict_retries"].get<uint64_t>());
    if (c.contains("nodes")) cli::PrintMembers(c["nodes"], "    ");
  }
  if (requests && j->contains("fuse_requests")) {
    fmt::print("  FUSE requests since mount (time spent in Cairn):\n");
    for (auto& [name, r] : (*j)["fuse_requests"].items()) {
      uint64_t n = r["count"].get<uint64_t>();
      double s = r["seconds"].get<double>();
      fmt::print("    {:<12} {:>12} {:>10.3f} s {:>8.1f} us/request\n", name, n, s,
                 n ? s * 1e6 / static_cast<double>(n) : 0.0);
    }
  }
  return 0;
}

int CmdFsck(const std::string& data_dir, bool json) {
  auto r = fs::Fsck(data_dir);
  if (!r) return Fail("fsck", r.error());
  if (json) {
    nlohmann::json j = {{"clean", r->problems.empty()},
                        {"problems", r->problems},
                        {"notes", r->notes},
                        {"inodes", r->inodes},
                        {"entries", r->dentries},
                        {"extents", r->extents},
                        {"segments", r->segments},
                        {"bytes_verified", r->bytes_verified},
                        {"bytes_remote", r->bytes_remote}};
    fmt::print("{}\n", j.dump(2));
  } else {
    for (const auto& n : r->notes) fmt::print("note: {}\n", n);
    for (const auto& p : r->problems) fmt::print("problem: {}\n", p);
    fmt::print(
        "{}: {} inodes, {} entries, {} extents in {} segments, {} verified{}: {}\n", data_dir,
        r->inodes, r->dentries, r->extents, r->segments, FormatSize(r->bytes_verified),
        r->bytes_remote
            ? fmt::format(" ({} only in the object store, not read)", FormatSize(r->bytes_remote))
            : "",
        r->problems.empty() ? "clean" : fmt::format("{} problems", r->problems.size()));
  }
  return r->problems.empty() ? 0 : 2;
}

int CmdCompact(const std::string& mountpoint, double threshold) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return Fail("compact", data_dir.error());
  auto j = server::AdminCall(*data_dir, {{"op", "compact"}, {"threshold", threshold}});
  if (!j) return Fail("compact", j.error());
  fmt::print("compacted {} segments\n", (*j)["compacted"].get<uint64_t>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cairn: a POSIX file system for AI training data on NVMe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cairn 0.1.0");

  std::string data_dir, mountpoint, inline_max = "4KiB", segment_size = "64MiB";
  bool json = false, requests = false, foreground = false, debug = false, no_allow_other = false;
  double timeout_s = 120, threshold = 0.5;

  auto* format = app.add_subcommand("format", "Create a file system in an empty directory");
  format->add_option("DATA_DIR", data_dir, "Directory on NVMe for metadata and segments")
      ->required();
  format->add_option("--inline-max", inline_max,
                     "Files up to this size live in metadata (default 4KiB)");
  format->add_option("--segment-size", segment_size, "Size of a segment file (default 64MiB)");
  TierFlags tf;
  format->add_option("--object-store", tf.object_store,
                     "file:///path or s3://bucket/prefix (default: file://DATA_DIR/objects)");
  format->add_option("--nvme-capacity", tf.nvme_capacity,
                     "NVMe bytes Cairn may fill, e.g. 200GiB (default: the whole file system)");
  format->add_option("--high-watermark", tf.high, "Evict above this share of capacity (90%)");
  format->add_option("--low-watermark", tf.low, "... down to this share (80%)");
  format->add_option("--tiering-delay", tf.delay, "Upload sealed segments after this long (10s)");
  format->add_option("--seal-timeout", tf.seal_timeout,
                     "Seal an open segment with data after this long (5s; 0: only when full)");
  format->add_option("--retention", tf.retention,
                     "Evict uploaded data unread this long, e.g. 7d (0: only when space runs out)");
  fs::ClusterSettings cluster_settings;
  cli::AddClusterFlags(format, &cluster_settings);
  cli::ClusterCommands cluster(app);

  auto* mount = app.add_subcommand("mount", "Mount a file system; returns once it is ready");
  mount->add_option("DATA_DIR", data_dir, "A formatted data directory")->required();
  mount->add_option("MOUNTPOINT", mountpoint, "An existing directory")->required();
  mount->add_flag("--foreground", foreground, "Stay attached and log to stderr");
  mount->add_flag("--debug", debug, "Log every FUSE request (with --foreground)");
  mount->add_flag("--no-allow-other", no_allow_other, "Only the mounting user may use the mount");
  std::string remote_timeout = "30s", metrics_address = "127.0.0.1:0";
  mount->add_option("--remote-timeout", remote_timeout,
                    "A read of data only in the object store fails (EIO) after this long (30s)");
  mount->add_option("--metrics-address", metrics_address,
                    "Serve Prometheus /metrics on this loopback HOST:PORT (port 0: any; '' off)");
  unsigned fuse_threads = fuse::FuseOptions{}.max_threads;
  mount
      ->add_option("--fuse-threads", fuse_threads,
                   "Threads serving FUSE requests (1-256, default 8; more than the readers of "
                   "a cold read epoch only adds context switches; with io_uring, this many "
                   "spread over the CPUs' queues, at least four a queue)")
      ->check(CLI::Range(1u, 256u));
  std::string fuse_transport = "uring";
  mount
      ->add_option("--fuse-transport", fuse_transport,
                   "How FUSE requests reach Cairn: uring (the default: FUSE-over-io_uring, a "
                   "queue per CPU; turns the fuse module's enable_uring on; /dev/fuse where the "
                   "kernel does not offer it) or dev (/dev/fuse, a descriptor per thread); "
                   "the environment's CAIRN_FUSE_TRANSPORT sets the default")
      ->envname("CAIRN_FUSE_TRANSPORT")
      ->check(CLI::IsMember({"dev", "uring"}));
  std::string lease = "1s";
  mount->add_option("--lease", lease,
                    "Cluster mode: how long names and attributes are trusted before they are "
                    "read again, so other nodes' changes show within it (default 1s)");
  bool no_notify = false;
  mount->add_flag("--no-notify", no_notify,
                  "Cluster mode: neither announce this node's changes to the others nor hear "
                  "theirs at once (PostgreSQL NOTIFY); they then show within the lease");
  std::string read_ahead = "16MiB";
  mount->add_option("--read-ahead", read_ahead,
                    "The kernel's read-ahead window for sequential reads (default 16MiB; 0 keeps "
                    "the kernel's 128KiB; needs root)");

  auto* unmount = app.add_subcommand("unmount", "Unmount; returns once everything is durable");
  unmount->alias("umount");
  unmount->add_option("MOUNTPOINT", mountpoint, "A Cairn mount point")->required();
  unmount->add_option("--timeout", timeout_s, "Seconds to wait for the daemon to finish");

  auto* status = app.add_subcommand("status", "Show files, bytes and space of a mount");
  status->add_option("MOUNTPOINT", mountpoint, "A Cairn mount point")->required();
  status->add_flag("--json", json, "Machine-readable output");
  status->add_flag("--requests", requests, "Also show FUSE request counts and time per request");

  auto* fsck =
      app.add_subcommand("fsck", "Check an unmounted file system (metadata and checksums)");
  fsck->add_option("DATA_DIR", data_dir, "A formatted data directory")->required();
  fsck->add_flag("--json", json, "Machine-readable output");

  auto* compact = app.add_subcommand("compact", "Reclaim dead space in segments now");
  compact->add_option("MOUNTPOINT", mountpoint, "A Cairn mount point")->required();
  compact->add_option("--threshold", threshold, "Compact segments less live than this (0..1)")
      ->check(CLI::Range(0.0, 1.0));

  auto* tier = app.add_subcommand("tier", "The object tier: status, fetch, release, location");
  tier->require_subcommand(1);
  std::vector<std::string> paths;
  std::string path;
  auto* tier_status = tier->add_subcommand("status", "Segments per state, queues, rates, NVMe use");
  tier_status->add_option("MOUNTPOINT", mountpoint, "A Cairn mount point")->required();
  tier_status->add_flag("--json", json, "Machine-readable output");
  auto* tier_fetch = tier->add_subcommand("fetch", "Warm trees onto NVMe; returns when done");
  tier_fetch->add_option("PATH", paths, "Files or directories in a Cairn mount")->required();
  auto* tier_release =
      tier->add_subcommand("release", "Evict what is uploaded (whole segments) from NVMe");
  tier_release->add_option("PATH", paths, "Files, directories or the mount point")->required();
  auto* tier_location =
      tier->add_subcommand("location", "Bytes on NVMe vs only in the object store");
  tier_location->add_option("PATH", path, "A file or directory in a Cairn mount")->required();
  tier_location->add_flag("--json", json, "Machine-readable output");
  auto* tier_flush =
      tier->add_subcommand("flush", "Upload everything written so far; returns when done");
  tier_flush->add_option("MOUNTPOINT", mountpoint, "A Cairn mount point")->required();
  tier_flush->add_option("--timeout", timeout_s, "Seconds to wait (default 120)");

  auto* import = app.add_subcommand("import", "Mirror an object store prefix as files, no copy");
  std::string url;
  bool refresh = false;
  import->add_option("URL", url, "s3://bucket/prefix or file:///path")->required();
  import->add_option("DEST", path, "A directory in a Cairn mount (created if missing)")->required();
  import->add_flag("--refresh", refresh, "Pick up new, changed and deleted objects");
  int parallel_listing = 1;
  import
      ->add_option("--parallel-listing", parallel_listing,
                   "Walk prefixes with N listings in flight (needs a server that reports every "
                   "common prefix; default 1: one flat listing)")
      ->check(CLI::Range(1, 64));
  import->add_flag("--json", json, "Machine-readable output");

  cli::SnapCommands snap(app);

  CLI11_PARSE(app, argc, argv);

  if (int r = snap.Run(); r >= 0) return r;
  if (int r = cluster.Run(); r >= 0) return r;
  if (*format) return CmdFormat(data_dir, inline_max, segment_size, tf, cluster_settings);
  if (*tier_status) return CmdTierStatus(mountpoint, json);
  if (*tier_fetch) return CmdTierFetch(paths);
  if (*tier_release) return CmdTierRelease(paths);
  if (*tier_location) return CmdTierLocation(path, json);
  if (*tier_flush) return CmdTierFlush(mountpoint, timeout_s);
  if (*import) return CmdImport(url, path, refresh, parallel_listing, json);
  if (*mount) {
    auto rt = ParseDuration(remote_timeout);
    if (!rt) return Fail("mount", rt.error());
    server::DaemonOptions o;
    o.mount.remote_timeout_s = *rt;
    auto ls = ParseDuration(lease);
    if (!ls) return Fail("mount", ls.error());
    if (*ls > 3600) return Fail("mount", Status(Code::kInvalid, "--lease must be at most 1h"));
    o.mount.lease_s = *ls;
    o.mount.notify = !no_notify;
    o.mount.metrics_address = metrics_address;
    o.data_dir = data_dir;
    o.mountpoint = mountpoint;
    o.foreground = foreground;
    o.fuse.allow_other = !no_allow_other;
    o.fuse.debug = debug;
    o.fuse.max_threads = fuse_threads;
    o.fuse.transport = fuse_transport == "dev" ? fuse::FuseOptions::Transport::kDev
                                               : fuse::FuseOptions::Transport::kUring;
    auto ra = ParseSize(read_ahead);
    if (!ra) return Fail("mount", ra.error());
    if (*ra > (uint64_t{1} << 30)) {
      return Fail("mount", Status(Code::kInvalid, "--read-ahead must be at most 1GiB"));
    }
    o.fuse.read_ahead_bytes = *ra;
    return server::RunMount(o);
  }
  if (*unmount) return CmdUnmount(mountpoint, timeout_s);
  if (*status) return CmdStatus(mountpoint, json, requests);
  if (*fsck) return CmdFsck(data_dir, json);
  if (*compact) return CmdCompact(mountpoint, threshold);
  return 1;
}
