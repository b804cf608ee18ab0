#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include "common/logging.h"
#include "common/thread_pool.h"
#include "fs/options.h"
#include "fs/restore.h"
#include "fs/snapshot_view.h"
#include "kv/rocksdb_kv_store.h"
#include "snap/manifest.h"
#include "tier/tier_engine.h"

namespace cairn::fs {
namespace {

// Downloads the checkpoint files into dir/meta, each checked against the manifest.
Status FetchMetadata(tier::ObjectStore& store, const snap::Manifest& m, const std::string& dir,
                     const RestoreProgress& progress) {
  const std::string meta_dir = dir + "/meta";
  if (::mkdir(meta_dir.c_str(), 0700) != 0) return ErrnoStatus("create " + meta_dir);
  uint64_t total = 0;
  for (const auto& f : m.metadata) total += f.size;
  std::atomic<uint64_t> done{0};
  return RunParallel(
      m.metadata.size(), 8,
      [&](size_t i) -> Status {
        const auto& f = m.metadata[i];
        const std::string path = meta_dir + "/" + f.file;
        auto got = store.GetToFile(f.key, path);
        if (!got) {
          return Status(got.error().code(),
                        fmt::format("metadata object {}: {}", f.key, got.error().message()));
        }
        CAIRN_ASSIGN_OR_RETURN(std::string sha, snap::Sha256File(path));
        if (*got != f.size || sha != f.sha256) {
          return Status(Code::kCorruption,
                        fmt::format("metadata object {} is damaged: {} bytes with SHA-256 {}, "
                                    "the manifest says {} bytes with {}",
                                    f.key, *got, sha, f.size, f.sha256));
        }
        done += f.size;
        return Status::Ok();
      },
      [&] {
        if (progress) progress("metadata", done.load(), total);
      });
}

// Every segment object exists at the size the manifest records (a truncated one is caught here;
// damaged bytes are caught by the extent checksums on first read).
Status CheckSegments(tier::ObjectStore& store, const snap::Manifest& m,
                     const RestoreProgress& progress) {
  std::atomic<uint64_t> done{0};
  return RunParallel(
      m.segments.size(), 16,
      [&](size_t i) -> Status {
        const auto& s = m.segments[i];
        const std::string owner = snap::KeyOwner(s.key);
        if (owner.empty() || tier::TierEngine::SegmentKey(owner, s.id) != s.key) {
          return Status(
              Code::kCorruption,
              fmt::format("manifest names segment {} at an unexpected key {}", s.id, s.key));
        }
        auto head = store.Head(s.key);
        if (!head) {
          if (head.error().code() == Code::kNotFound) {
            return Status(Code::kCorruption,
                          fmt::format("segment object {} is missing from the store", s.key));
          }
          return head.error();
        }
        // A segment object only grows (a cluster's push may copy a segment that is still
        // open, and a later push the longer one): what the manifest recorded must be there.
        if (head->size < s.size) {
          return Status(Code::kCorruption,
                        fmt::format("segment object {} has {} bytes; the manifest says {} "
                                    "(truncated)",
                                    s.key, head->size, s.size));
        }
        ++done;
        return Status::Ok();
      },
      [&] {
        if (progress) progress("segments", done.load(), m.segments.size());
      });
}

// The downloaded checkpoint becomes this file system's metadata: its segment records say where
// each segment's object is (evicted, under its writer's prefix), and the source's own snapshot
// records, which refer to checkpoints that did not come along, go.
Status AdoptMetadata(const std::string& dir, const snap::Manifest& m) {
  CAIRN_ASSIGN_OR_RETURN(auto kv, kv::RocksDbKvStore::Open(dir + "/meta", {}));
  kv::WriteBatch batch;
  batch.DeleteRange(meta::SegmentPrefix(), meta::PrefixEnd(meta::SegmentPrefix()));
  batch.DeleteRange(meta::SnapshotPrefix(), meta::PrefixEnd(meta::SnapshotPrefix()));
  // A cluster's own records (fs/cluster.h): the shared superblock, members, heartbeats. The
  // restored file system is a single node; its totals' per-node shards still add up.
  for (const char* prefix : {"C", "H", "K"}) {
    batch.DeleteRange(prefix, meta::PrefixEnd(prefix));
  }
  for (const auto& s : m.segments) {
    meta::SegmentRecord rec;
    rec.id = s.id;
    rec.state = meta::SegmentState::kEvicted;
    rec.size = s.size;
    rec.origin = snap::KeyOwner(s.key);
    batch.Put(meta::SegmentKey(s.id), meta::EncodeSegment(rec));
  }
  CAIRN_RETURN_IF_ERROR(kv->Write(batch, true));
  return kv->Flush();
}

}  // namespace

Result<RestoreReport> RestoreSnapshot(const std::string& url, std::string_view name,
                                      const std::string& data_dir, const RestoreProgress& progress,
                                      const ClusterSettings& cluster) {
  const auto start = std::chrono::steady_clock::now();
  struct stat sb;
  const bool existed = ::stat(data_dir.c_str(), &sb) == 0;
  if (existed && ReadSuperblock(data_dir)) {
    return Err(Code::kExists, data_dir + " already holds a Cairn file system");
  }
  auto opened = tier::OpenObjectStore(url);
  if (!opened) {
    return Err(opened.error().code(), "object store " + url + ": " + opened.error().message());
  }
  tier::ObjectStore& store = **opened;
  CAIRN_ASSIGN_OR_RETURN(snap::Manifest m, snap::FindSnapshot(store, name));
  RestoreReport report;
  report.uuid = NewUuid();
  report.manifest_key = snap::ManifestKey(m.name, m.fs_uuid);
  report.files = m.files;
  report.file_bytes = m.file_bytes;
  report.segments = m.segments.size();
  for (const auto& s : m.segments) report.segment_bytes += s.size;
  for (const auto& f : m.metadata) report.metadata_bytes += f.size;

  // Registered first: from now on no delete elsewhere removes what this file system will read.
  snap::Refs refs{report.uuid, report.manifest_key, {}};
  for (const auto& s : m.segments) refs.keys.push_back(s.key);
  const std::string refs_key = snap::RefsKey(report.uuid);
  CAIRN_RETURN_IF_ERROR(store.Put(refs_key, snap::EncodeRefs(refs)));

  FormatOptions fo;
  fo.uuid = report.uuid;
  fo.restored_from = report.manifest_key;
  fo.inline_max = m.inline_max;
  fo.segment_size = m.segment_size;
  fo.tier.object_store = url;
  fo.cluster = cluster;
  fo.fill_meta = [&](const std::string& dir) -> Status {
    CAIRN_RETURN_IF_ERROR(CheckSegments(store, m, progress));
    CAIRN_RETURN_IF_ERROR(FetchMetadata(store, m, dir, progress));
    return AdoptMetadata(dir, m);
  };
  Status st = Format(data_dir, fo);
  if (!st.ok()) {
    // Nothing half-made stays behind: the directory (when this created it, or its contents when
    // it was empty) and the registration.
    if (st.code() != Code::kExists) {
      Status rm = RemoveTree(data_dir);
      if (rm.ok() && existed) ::mkdir(data_dir.c_str(), 0700);
    }
    (void)store.Delete(refs_key);
    return Err(st);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace cairn::fs
