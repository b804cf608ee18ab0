// cairn format, and reading the superblock that marks a data directory as Cairn's.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/coding.h"
#include "common/file.h"
#include "fs/cluster.h"
#include "fs/options.h"
#include "fs/snapshot_view.h"
#include "kv/rocksdb_kv_store.h"
#include "meta/schema.h"

namespace cairn::fs {
std::string NewUuid() {
  std::random_device rd;
  uint64_t a = (static_cast<uint64_t>(rd()) << 32) | rd();
  uint64_t b = (static_cast<uint64_t>(rd()) << 32) | rd();
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff,
                     (a & 0x0fff) | 0x4000, ((b >> 48) & 0x3fff) | 0x8000, b & 0xffffffffffff);
}

namespace {

Result<bool> DirIsEmptyOrAbsent(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT) return true;
    return Err(ErrnoStatus("open " + path));
  }
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

namespace {

Status CheckTier(const TierSettings& t) {
  if (!(t.low_watermark > 0 && t.low_watermark < t.high_watermark && t.high_watermark <= 1)) {
    return Status(Code::kInvalid, "watermarks must satisfy 0 < low < high <= 100%");
  }
  for (double v : {t.tiering_delay_s, t.seal_timeout_s, t.retention_s}) {
    if (!(v >= 0 && v <= 365.0 * 86400)) {
      return Status(Code::kInvalid, "tiering delay, seal timeout and retention must be 0s..365d");
    }
  }
  return Status::Ok();
}

nlohmann::json TierJson(const TierSettings& t) {
  return {{"object_store", t.object_store},       {"nvme_capacity", t.nvme_capacity},
          {"high_watermark", t.high_watermark},   {"low_watermark", t.low_watermark},
          {"tiering_delay_s", t.tiering_delay_s}, {"seal_timeout_s", t.seal_timeout_s},
          {"retention_s", t.retention_s}};
}

}  // namespace

std::string DefaultObjectStore(const std::string& data_dir) {
  char buf[PATH_MAX];
  std::string abs = ::realpath(data_dir.c_str(), buf) ? std::string(buf) : data_dir;
  return "file://" + abs + "/objects";
}

Status Format(const std::string& data_dir, const FormatOptions& options) {
  CAIRN_RETURN_IF_ERROR(CheckTier(options.tier));
  if (options.tier.nvme_capacity != 0 && options.tier.nvme_capacity < 4 * options.segment_size) {
    return Status(Code::kInvalid,
                  fmt::format("NVMe capacity must hold at least 4 segments ({} bytes)",
                              4 * options.segment_size));
  }
  if (options.inline_max > 64 * 1024) {
    return Status(Code::kInvalid, "inline size must be at most 64 KiB");
  }
  if (options.segment_size < (1 << 20) || options.segment_size > (4ull << 30)) {
    return Status(Code::kInvalid, "segment size must be between 1 MiB and 4 GiB");
  }
  if (ReadSuperblock(data_dir)) {
    return Status(Code::kExists, data_dir + " already holds a Cairn file system");
  }
  CAIRN_ASSIGN_OR_RETURN(bool empty, DirIsEmptyOrAbsent(data_dir));
  struct stat dir_stat;
  const bool existed = ::stat(data_dir.c_str(), &dir_stat) == 0;
  if (!empty)
    return Status(Code::kExists, data_dir + " is not empty; format needs an empty directory");
  Superblock sb;
  sb.uuid = options.uuid.empty() ? NewUuid() : options.uuid;
  sb.inline_max = options.inline_max;
  sb.segment_size = options.segment_size;
  sb.created = static_cast<int64_t>(::time(nullptr));
  sb.tier = options.tier;
  sb.restored_from = options.restored_from;
  sb.cluster = options.cluster;
  if (sb.cluster.enabled() && !options.fill_meta) {
    // The shared metadata and pool are checked (and the shared superblock written) before the
    // data directory exists: a bad endpoint leaves nothing behind.
    CAIRN_RETURN_IF_ERROR(CreateClusterFileSystem(&sb, data_dir, ""));
  }
  if (::mkdir(data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + data_dir);
  }
  if (::mkdir((data_dir + "/segments").c_str(), 0700) != 0) {
    return ErrnoStatus("create " + data_dir + "/segments");
  }
  if (options.fill_meta) {
    CAIRN_RETURN_IF_ERROR(options.fill_meta(data_dir));
    if (sb.cluster.enabled()) {
      // A restore into a cluster: the snapshot's metadata, fetched into DATA_DIR/meta, goes
      // into the shared database. A refusal there (a database that holds a file system) leaves
      // the directory as it was: empty or absent.
      Status st = CreateClusterFileSystem(&sb, data_dir, data_dir + "/meta");
      if (!st.ok()) {
        (void)RemoveTree(data_dir);
        if (existed) ::mkdir(data_dir.c_str(), 0700);
        return st;
      }
      CAIRN_RETURN_IF_ERROR(RemoveTree(data_dir + "/meta"));
    }
  } else if (!sb.cluster.enabled()) {
    kv::RocksDbOptions kv_opts;
    kv_opts.create_if_missing = true;
    CAIRN_ASSIGN_OR_RETURN(auto kv, kv::RocksDbKvStore::Open(data_dir + "/meta", kv_opts));
    kv::WriteBatch batch;
    StageRootDirectory(&batch);
    CAIRN_RETURN_IF_ERROR(kv->Write(batch, true));
    CAIRN_RETURN_IF_ERROR(kv->Flush());
  }
  if (sb.tier.object_store.empty()) sb.tier.object_store = DefaultObjectStore(data_dir);
  // The superblock is written last: a directory is a Cairn file system once it exists.
  return WriteSuperblock(data_dir, sb);
}

void StageRootDirectory(kv::WriteBatch* batch) {
  meta::Inode root;
  root.ino = meta::kRootIno;
  root.mode = S_IFDIR | 0755;
  root.uid = ::getuid();
  root.gid = ::getgid();
  root.nlink = 2;
  root.parent = meta::kRootIno;
  root.no_xattrs = true;
  root.atime = root.mtime = root.ctime = meta::Now();
  batch->Put(meta::InodeKey(root.ino), meta::EncodeInode(root));
  batch->Put(meta::CounterKey(meta::kTotalDirectories), kv::EncodeCounter(1));
  std::string version;
  PutFixed64(&version, meta::kAccountingVersion);
  batch->Put(meta::CounterKey(meta::kAccountingVersionKey), version);
}

std::string SuperblockJson(const Superblock& sb, bool with_cluster) {
  nlohmann::json j = {
      {"tier", TierJson(sb.tier)},   {"format_version", kFormatVersion}, {"uuid", sb.uuid},
      {"inline_max", sb.inline_max}, {"segment_size", sb.segment_size},  {"created", sb.created},
  };
  if (!sb.restored_from.empty()) j["restored_from"] = sb.restored_from;
  if (with_cluster && sb.cluster.enabled()) {
    j["cluster"] = {{"meta", sb.cluster.meta},
                    {"ceph_conf", sb.cluster.ceph_conf},
                    {"ceph_user", sb.cluster.ceph_user},
                    {"pool", sb.cluster.pool},
                    {"node", sb.cluster.node}};
  }
  return j.dump(2) + "\n";
}

Status WriteSuperblock(const std::string& data_dir, const Superblock& sb) {
  return WriteFileAtomic(data_dir + "/" + kSuperblockFile, SuperblockJson(sb, true));
}

Result<int> LockDataDir(const std::string& data_dir) {
  std::string path = data_dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Err(ErrnoStatus("open " + path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Status st = errno == EWOULDBLOCK
                    ? Status(Code::kBusy, data_dir +
                                              " is in use by another cairn process "
                                              "(mounted? unmount it first)")
                    : ErrnoStatus("lock " + path);
    ::close(fd);
    return Err(st);
  }
  return fd;
}

Result<Superblock> ReadSuperblock(const std::string& data_dir) {
  struct stat st;
  if (::stat(data_dir.c_str(), &st) != 0) return Err(ErrnoStatus(data_dir));
  if (!S_ISDIR(st.st_mode)) return Err(Code::kNotDir, data_dir + " is not a directory");
  auto text = ReadWholeFile(data_dir + "/" + kSuperblockFile);
  if (!text) {
    if (text.error().code() == Code::kNotFound) {
      return Err(Code::kInvalid, data_dir + " is not a Cairn file system (no " + kSuperblockFile +
                                     "; create one with 'cairn format')");
    }
    return Err(text.error());
  }
  return ParseSuperblock(*text, data_dir + "/" + kSuperblockFile, data_dir);
}

Result<Superblock> ParseSuperblock(std::string_view text, const std::string& where,
                                   const std::string& data_dir) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  Superblock sb;
  if (j.is_discarded() || !j.is_object() || !j.contains("format_version") ||
      !j["format_version"].is_number_unsigned() || !j.contains("inline_max") ||
      !j["inline_max"].is_number_unsigned() || !j.contains("segment_size") ||
      !j["segment_size"].is_number_unsigned()) {
    return Err(Code::kCorruption, where + " is damaged");
  }
  sb.format_version = j["format_version"].get<uint32_t>();
  if (sb.format_version != kFormatVersion) {
    return Err(Code::kNotSupported,
               fmt::format("{} has format version {}; this cairn reads version {}", where,
                           sb.format_version, kFormatVersion));
  }
  sb.uuid = j.value("uuid", "");
  sb.inline_max = j["inline_max"].get<uint64_t>();
  sb.segment_size = j["segment_size"].get<uint64_t>();
  sb.created = j.value("created", int64_t{0});
  if (j.contains("restored_from") && j["restored_from"].is_string()) {
    sb.restored_from = j["restored_from"].get<std::string>();
  }
  sb.tier.object_store = DefaultObjectStore(data_dir);
  if (j.contains("tier") && j["tier"].is_object()) try {
      const auto& t = j["tier"];
      sb.tier.object_store = t.value("object_store", sb.tier.object_store);
      sb.tier.nvme_capacity = t.value("nvme_capacity", uint64_t{0});
      sb.tier.high_watermark = t.value("high_watermark", 0.90);
      sb.tier.low_watermark = t.value("low_watermark", 0.80);
      sb.tier.tiering_delay_s = t.value("tiering_delay_s", 10.0);
      sb.tier.seal_timeout_s = t.value("seal_timeout_s", 5.0);
      sb.tier.retention_s = t.value("retention_s", 0.0);
    } catch (const nlohmann::json::exception&) {
      return Err(Code::kCorruption, where + " has a damaged tier section");
    }
  if (j.contains("cluster")) try {
      const auto& c = j["cluster"];
      sb.cluster.meta = c.at("meta").get<std::string>();
      sb.cluster.ceph_conf = c.at("ceph_conf").get<std::string>();
      sb.cluster.ceph_user = c.at("ceph_user").get<std::string>();
      sb.cluster.pool = c.at("pool").get<std::string>();
      sb.cluster.node = c.at("node").get<uint32_t>();
      if (!sb.cluster.enabled() || sb.cluster.node == 0) throw std::invalid_argument("empty");
    } catch (const std::exception&) {
      return Err(Code::kCorruption, where + " has a damaged cluster section");
    }
  return sb;
}

}  // namespace cairn::fs
