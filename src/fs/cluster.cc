// Cluster mode below FileSystem: opening the shared metadata and pool, the shared superblock,
// node numbers and member records (fs/cluster.h).
#include "fs/cluster.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "data/rados_segments.h"
#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "meta/meta_store.h"
#include "meta/schema.h"

namespace cairn::fs {
namespace {

const std::string kSharedSuperblockKey = "Csuperblock";
const std::string kNextNodeCounter = "next_node";

std::string MemberKey(uint32_t node) { return fmt::format("K{:08x}", node); }
std::string HeartbeatKey(uint32_t node) { return fmt::format("H{:08x}", node); }
// A node that missed this many heartbeats is down.
constexpr double kMissedBeats = 3;

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

std::string AbsPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

Result<std::unique_ptr<kv::PgKvStore>> OpenPg(const ClusterSettings& c, bool create) {
  kv::PgOptions o;
  o.create_if_missing = create;
  auto kv = kv::PgKvStore::Open(c.meta, o);
  if (!kv) return Err(kv.error().code(), "cluster metadata: " + kv.error().message());
  return kv;
}

Result<std::unique_ptr<data::RadosSegments>> OpenPool(const ClusterSettings& c,
                                                      const std::string& uuid) {
  data::RadosOptions o;
  o.conf = c.ceph_conf;
  o.user = c.ceph_user;
  o.pool = c.pool;
  auto pool = data::RadosSegments::Open(o, uuid);
  if (!pool) {
    std::string hint = pool.error().code() == Code::kNotFound
                           ? fmt::format(" (create it: ceph osd pool create {})", c.pool)
                           : "";
    return Err(pool.error().code(), "cluster pool: " + pool.error().message() + hint);
  }
  return pool;
}

void StageMember(kv::WriteBatch* batch, uint32_t node, const std::string& data_dir, int64_t joined,
                 int64_t last_mount) {
  nlohmann::json j = {{"host", Hostname()},
                      {"data_dir", AbsPath(data_dir)},
                      {"joined", joined},
                      {"last_mount", last_mount}};
  batch->Put(MemberKey(node), j.dump());
}

}  // namespace

namespace {

// The cluster's PostgreSQL store, checked to hold this file system.
Result<std::unique_ptr<kv::PgKvStore>> OpenSharedMetaStore(const std::string& data_dir,
                                                           const Superblock& super) {
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenPg(super.cluster, false));
  // The database must hold this file system, not another one formatted over it since.
  auto text = kv->Get(kSharedSuperblockKey);
  if (!text) {
    if (text.error().code() != Code::kNotFound) return Err(text.error());
    return Err(Code::kNotFound, "the cluster metadata database holds no Cairn file system");
  }
  CAIRN_ASSIGN_OR_RETURN(Superblock shared, ParseSuperblock(*text, "shared superblock", data_dir));
  if (shared.uuid != super.uuid) {
    return Err(Code::kInvalid,
               fmt::format("{} belongs to file system {}, but the cluster metadata database holds "
                           "file system {}",
                           data_dir, super.uuid, shared.uuid));
  }
  return kv;
}

Result<std::unique_ptr<kv::RocksDbKvStore>> OpenLocalMetaStore(const std::string& data_dir) {
  kv::RocksDbOptions o;
  o.snapshot_dir = data_dir + "/snapshots";
  return kv::RocksDbKvStore::Open(data_dir + "/meta", o);
}

}  // namespace

Result<Engines> OpenEngines(const std::string& data_dir, const Superblock& super) {
  Engines e;
  if (!super.cluster.enabled()) {
    CAIRN_ASSIGN_OR_RETURN(e.kv, OpenLocalMetaStore(data_dir));
    return e;
  }
  CAIRN_ASSIGN_OR_RETURN(auto pg, OpenSharedMetaStore(data_dir, super));
  e.pg = pg.get();
  e.kv = std::move(pg);
  CAIRN_ASSIGN_OR_RETURN(auto pool, OpenPool(super.cluster, super.uuid));
  e.rados = pool.get();
  e.segments = std::move(pool);
  return e;
}

Result<std::unique_ptr<kv::KvStore>> OpenMetaStore(const std::string& data_dir,
                                                   const Superblock& super) {
  if (!super.cluster.enabled()) {
    CAIRN_ASSIGN_OR_RETURN(auto kv, OpenLocalMetaStore(data_dir));
    return std::unique_ptr<kv::KvStore>(std::move(kv));
  }
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenSharedMetaStore(data_dir, super));
  return std::unique_ptr<kv::KvStore>(std::move(kv));
}

Result<bool> HasSharedObjectStore(kv::KvStore& kv) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, kv.Get(kSharedSuperblockKey));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("tier") || !j["tier"].is_object()) {
    return Err(Code::kCorruption, "the shared superblock has no tier section");
  }
  const auto& store = j["tier"].value("object_store", nlohmann::json());
  return store.is_string() && !store.get<std::string>().empty();
}

Result<std::shared_ptr<data::SegmentBackend>> OpenSegmentBackend(const Superblock& super) {
  if (!super.cluster.enabled()) return std::shared_ptr<data::SegmentBackend>();
  CAIRN_ASSIGN_OR_RETURN(auto pool, OpenPool(super.cluster, super.uuid));
  return std::shared_ptr<data::SegmentBackend>(std::move(pool));
}

// Copies a restored snapshot's metadata into the empty shared database in batches, all but the
// root directory, which is staged into *last (the batch that makes the file system exist).
Status CopyRestoredMetadata(kv::KvStore& kv, const std::string& dir, kv::WriteBatch* last) {
  {
    auto it = kv.NewIterator();
    it->Seek("");
    CAIRN_RETURN_IF_ERROR(it->status());
    if (it->Valid()) {
      return Status(Code::kNotEmpty,
                    "a restore into a cluster needs an empty metadata database (this one holds "
                    "keys, but no file system)");
    }
  }
  kv::RocksDbOptions o;
  o.read_only = true;
  o.block_cache_bytes = 8 << 20;
  CAIRN_ASSIGN_OR_RETURN(auto from, kv::RocksDbKvStore::Open(dir, o));
  const std::string root = meta::InodeKey(meta::kRootIno);
  const std::string next_node = meta::CounterKey(kNextNodeCounter);
  auto it = from->NewIterator();
  kv::WriteBatch batch;
  for (it->Seek(""); it->Valid(); it->Next()) {
    std::string key(it->key()), value(it->value());
    // The source cluster's own records (members, heartbeats, its superblock) stay behind.
    if (key[0] == 'C' || key[0] == 'K' || key[0] == 'H' || key == next_node) continue;
    if (key.starts_with(meta::SegmentPrefix())) {
      CAIRN_ASSIGN_OR_RETURN(meta::SegmentRecord rec,
                             meta::DecodeSegment(meta::KeyU64(key), value));
      rec.node = 1;
      value = meta::EncodeSegment(rec);
    } else if (key.starts_with(meta::OrphanPrefix())) {
      value = meta::OrphanValue(1);
    }
    if (key == root) {
      last->Put(std::move(key), std::move(value));
      continue;
    }
    batch.Put(std::move(key), std::move(value));
    if (batch.size() >= 4096) {
      CAIRN_RETURN_IF_ERROR(kv.Write(batch, false));
      batch = kv::WriteBatch();
    }
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return kv.Write(batch, false);
}

Status CreateClusterFileSystem(Superblock* super, const std::string& data_dir,
                               const std::string& restored_meta) {
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenPg(super->cluster, true));
  CAIRN_ASSIGN_OR_RETURN(auto pool, OpenPool(super->cluster, super->uuid));
  (void)pool;
  auto existing = kv->Get(kSharedSuperblockKey);
  if (existing || existing.error().code() != Code::kNotFound) {
    if (!existing) return existing.error();
    auto other = ParseSuperblock(*existing, "shared superblock", data_dir);
    return Status(Code::kExists,
                  fmt::format("the cluster metadata database already holds file system {} (add "
                              "this node with 'cairn cluster join')",
                              other ? other->uuid : "(damaged)"));
  }
  super->cluster.node = 1;
  kv::WriteBatch batch;
  // Two formats at once against one database: exactly one finds the keys absent.
  batch.Expect(kSharedSuperblockKey, std::nullopt);
  batch.Expect(meta::InodeKey(meta::kRootIno), std::nullopt);
  // A restore that fails leaves nothing half-copied: the database was empty.
  auto wipe = [&] {
    kv::WriteBatch all;
    all.DeleteRange(std::string(1, '\0'), std::string(1, '\xff'));
    (void)kv->Write(all, true);
  };
  if (restored_meta.empty()) {
    StageRootDirectory(&batch);
  } else if (Status st = CopyRestoredMetadata(*kv, restored_meta, &batch); !st.ok()) {
    if (st.code() != Code::kNotEmpty) wipe();
    return st;
  }
  batch.Put(kSharedSuperblockKey, SuperblockJson(*super, false));
  std::string next;
  PutFixed64(&next, 2);
  batch.Put(meta::CounterKey(kNextNodeCounter), next);
  StageMember(&batch, 1, data_dir, super->created, 0);
  Status st = kv->Write(batch, true);
  if (st.code() == Code::kConflict) {
    return Status(Code::kExists, "another format of this cluster metadata database won the race");
  }
  if (!st.ok() && !restored_meta.empty()) wipe();
  return st;
}

Status RecordMount(kv::KvStore* kv, const Superblock& super, const std::string& data_dir) {
  int64_t joined = 0;
  if (auto v = kv->Get(MemberKey(super.cluster.node))) {
    auto j = nlohmann::json::parse(*v, nullptr, false);
    if (j.is_object()) joined = j.value("joined", int64_t{0});
  }
  kv::WriteBatch batch;
  StageMember(&batch, super.cluster.node, data_dir, joined, static_cast<int64_t>(::time(nullptr)));
  return kv->Write(batch, false);
}

Result<Superblock> JoinCluster(const std::string& data_dir, ClusterSettings settings) {
  if (!settings.enabled()) return Err(Code::kInvalid, "join needs the cluster metadata (--meta)");
  if (auto mine = ReadSuperblock(data_dir)) {
    return Err(
        Code::kExists,
        fmt::format("{} already holds file system {}{}", data_dir, mine->uuid,
                    mine->cluster.enabled() ? fmt::format(" as node {}", mine->cluster.node) : ""));
  }
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenPg(settings, false));
  auto text = kv->Get(kSharedSuperblockKey);
  if (!text) {
    if (text.error().code() != Code::kNotFound) return Err(text.error());
    return Err(Code::kNotFound,
               "the cluster metadata database holds no Cairn file system (create one with "
               "'cairn format DATA_DIR --meta ...')");
  }
  CAIRN_ASSIGN_OR_RETURN(Superblock sb, ParseSuperblock(*text, "shared superblock", data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto pool, OpenPool(settings, sb.uuid));
  (void)pool;
  // Checked before a node number is spent on it.
  if (::mkdir(data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Err(ErrnoStatus("create " + data_dir));
  }
  if (::mkdir((data_dir + "/segments").c_str(), 0700) != 0 && errno != EEXIST) {
    return Err(ErrnoStatus("create " + data_dir + "/segments"));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t node,
                         meta::ReserveIds(kv.get(), meta::CounterKey(kNextNodeCounter), 2, 1));
  if (node > UINT32_MAX) return Err(Code::kNoSpace, "no node numbers left");
  settings.node = static_cast<uint32_t>(node);
  sb.cluster = settings;
  // Formatted without an object store: each node's own, as in a single-node file system.
  if (sb.tier.object_store.empty()) sb.tier.object_store = DefaultObjectStore(data_dir);
  kv::WriteBatch batch;
  StageMember(&batch, settings.node, data_dir, static_cast<int64_t>(::time(nullptr)), 0);
  CAIRN_RETURN_IF_ERROR(kv->Write(batch, true));
  CAIRN_RETURN_IF_ERROR(WriteSuperblock(data_dir, sb));
  return sb;
}

Status WriteHeartbeat(kv::KvStore* kv, uint32_t node, const Heartbeat& beat) {
  nlohmann::json j = {{"state", beat.mounted ? "mounted" : "unmounted"},
                      {"seen", static_cast<int64_t>(::time(nullptr))},
                      {"interval", beat.interval_s},
                      {"read_bytes_per_s", beat.read_bytes_per_s},
                      {"write_bytes_per_s", beat.write_bytes_per_s},
                      {"read_ops_per_s", beat.read_ops_per_s},
                      {"write_ops_per_s", beat.write_ops_per_s}};
  kv::WriteBatch batch;
  batch.Put(HeartbeatKey(node), j.dump());
  return kv->Write(batch, false);
}

Result<std::vector<Member>> ReadMembers(kv::KvStore& kv, int64_t now) {
  CAIRN_ASSIGN_OR_RETURN(auto rows, kv::ScanRange(kv, "K", "L"));
  CAIRN_ASSIGN_OR_RETURN(auto beats, kv::ScanRange(kv, "H", "I"));
  std::map<std::string, nlohmann::json> beat_of;  // by node digits
  for (const auto& [key, value] : beats) {
    beat_of[key.substr(1)] = nlohmann::json::parse(value, nullptr, false);
  }
  std::vector<Member> out;
  for (const auto& [key, value] : rows) {
    Member m;
    m.node = static_cast<uint32_t>(std::strtoul(key.c_str() + 1, nullptr, 16));
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_object()) {
      m.host = j.value("host", "");
      m.data_dir = j.value("data_dir", "");
      m.joined = j.value("joined", int64_t{0});
      m.last_mount = j.value("last_mount", int64_t{0});
    }
    m.state = "never mounted";
    auto b = beat_of.find(key.substr(1));
    if (b != beat_of.end() && b->second.is_object()) {
      const nlohmann::json& h = b->second;
      m.last_seen = h.value("seen", int64_t{0});
      const double interval = h.value("interval", 0.0);
      if (h.value("state", "") != "mounted") {
        m.state = "unmounted";
      } else {
        m.state =
            static_cast<double>(now - m.last_seen) <= kMissedBeats * interval + 1 ? "up" : "down";
        m.read_bytes_per_s = h.value("read_bytes_per_s", 0.0);
        m.write_bytes_per_s = h.value("write_bytes_per_s", 0.0);
        m.read_ops_per_s = h.value("read_ops_per_s", 0.0);
        m.write_ops_per_s = h.value("write_ops_per_s", 0.0);
      }
    } else if (m.last_mount != 0) {
      m.state = "down";  // mounted once, never beat (a version without heartbeats, or a crash)
    }
    out.push_back(std::move(m));
  }
  return out;
}

nlohmann::json MemberJson(const Member& m) {
  return {{"node", m.node},
          {"host", m.host},
          {"data_dir", m.data_dir},
          {"joined", m.joined},
          {"last_mount", m.last_mount},
          {"state", m.state},
          {"last_seen", m.last_seen},
          {"read_bytes_per_s", m.read_bytes_per_s},
          {"write_bytes_per_s", m.write_bytes_per_s},
          {"read_ops_per_s", m.read_ops_per_s},
          {"write_ops_per_s", m.write_ops_per_s}};
}

Result<std::vector<Member>> ListMembers(const std::string& data_dir) {
  CAIRN_ASSIGN_OR_RETURN(Superblock super, ReadSuperblock(data_dir));
  if (!super.cluster.enabled()) {
    return Err(Code::kInvalid, data_dir + " is a single-node file system, not a cluster member");
  }
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenMetaStore(data_dir, super));
  return ReadMembers(*kv, static_cast<int64_t>(::time(nullptr)));
}

}  // namespace cairn::fs
