// The `cairn` command: format, mount, unmount, status, fsck, compact.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/units.h"
#include "fs/options.h"
#include "server/admin_client.h"
#include "server/daemon.h"

namespace {

using namespace cairn;

int Fail(std::string_view command, const Status& st) {
  fmt::print(stderr, "cairn {}: {}\n", command,
             st.message().empty() ? st.ToString() : st.message());
  return 1;
}

int CmdFormat(const std::string& data_dir, const std::string& inline_max,
              const std::string& segment_size) {
  fs::FormatOptions opts;
  auto im = ParseSize(inline_max);
  if (!im) return Fail("format", im.error());
  auto ss = ParseSize(segment_size);
  if (!ss) return Fail("format", ss.error());
  opts.inline_max = *im;
  opts.segment_size = *ss;
  Status st = fs::Format(data_dir, opts);
  if (!st.ok()) return Fail("format", st);
  fmt::print("formatted {} (inline files up to {}, segments of {})\n", data_dir,
             FormatSize(opts.inline_max), FormatSize(opts.segment_size));
  return 0;
}

int RunProgram(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int CmdUnmount(const std::string& mountpoint, double timeout_s) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return Fail("unmount", data_dir.error());
  int r = ::geteuid() == 0 ? (::umount2(mountpoint.c_str(), 0) == 0 ? 0 : -1)
                           : RunProgram({"fusermount3", "-u", mountpoint});
  if (r != 0) {
    if (errno == EBUSY) {
      return Fail("unmount", Status(Code::kBusy, mountpoint + " is busy (a process has a file or "
                                                              "directory open in it)"));
    }
    return Fail("unmount", Status(Code::kIo, "could not unmount " + mountpoint));
  }
  // The daemon holds the data directory's lock until everything is flushed.
  std::string lock_path = *data_dir + "/lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::close(fd);
      return Fail("unmount", Status(Code::kBusy, "the daemon did not finish flushing in time"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fd);
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
                        {"bytes_verified", r->bytes_verified}};
    fmt::print("{}\n", j.dump(2));
  } else {
    for (const auto& n : r->notes) fmt::print("note: {}\n", n);
    for (const auto& p : r->problems) fmt::print("problem: {}\n", p);
    fmt::print("{}: {} inodes, {} entries, {} extents in {} segments, {} verified: {}\n", data_dir,
               r->inodes, r->dentries, r->extents, r->segments, FormatSize(r->bytes_verified),
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

  auto* mount = app.add_subcommand("mount", "Mount a file system; returns once it is ready");
  mount->add_option("DATA_DIR", data_dir, "A formatted data directory")->required();
  mount->add_option("MOUNTPOINT", mountpoint, "An existing directory")->required();
  mount->add_flag("--foreground", foreground, "Stay attached and log to stderr");
  mount->add_flag("--debug", debug, "Log every FUSE request (with --foreground)");
  mount->add_flag("--no-allow-other", no_allow_other, "Only the mounting user may use the mount");

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

  CLI11_PARSE(app, argc, argv);

  if (*format) return CmdFormat(data_dir, inline_max, segment_size);
  if (*mount) {
    server::DaemonOptions o;
    o.data_dir = data_dir;
    o.mountpoint = mountpoint;
    o.foreground = foreground;
    o.fuse.allow_other = !no_allow_other;
    o.fuse.debug = debug;
    return server::RunMount(o);
  }
  if (*unmount) return CmdUnmount(mountpoint, timeout_s);
  if (*status) return CmdStatus(mountpoint, json, requests);
  if (*fsck) return CmdFsck(data_dir, json);
  if (*compact) return CmdCompact(mountpoint, threshold);
  return 1;
}
