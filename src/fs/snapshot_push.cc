// FileSystem: pushing a snapshot to an object store, and deleting a pushed one (Snap-to-Object).
//
// Push order: segments, then metadata files, then the manifest, so a manifest never names an
// object that is not there yet. Segments are named by (file system, id) and metadata files by
// their SHA-256, so what is already in the store is skipped: a later push after small changes
// uploads only the new segments and changed metadata files, and a push cut short by a crash
// resumes where it stopped.
//
// Deletion of a pushed snapshot removes its manifest first, then only objects under this file
// system's prefix that nothing else references: no other manifest in the store, no refs/<uuid>.json
// of a restored file system, and (in this file system's own store) no live or pinned segment.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "common/logging.h"
#include "common/thread_pool.h"
#include "fs/file_system.h"
#include "snap/manifest.h"

namespace cairn::fs {
namespace {

using Clock = std::chrono::steady_clock;

// The files of a checkpoint that a restore needs (RocksDB's LOG and LOCK are not).
Result<std::vector<std::string>> CheckpointFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Err(ErrnoStatus("open " + dir));
  std::vector<std::string> files;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n == "LOCK" || n.starts_with("LOG")) continue;
    struct stat sb;
    if (::stat((dir + "/" + n).c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) files.push_back(n);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<FileSystem::Destination> FileSystem::OpenDestination(const std::string& url) {
  Destination d;
  d.own = url.empty() || url == super_.tier.object_store;
  d.url = d.own ? super_.tier.object_store : url;
  d.store = &tier_->store();
  if (!d.own) {
    auto o = tier::OpenObjectStore(url);
    if (!o) return Err(o.error().code(), "object store " + url + ": " + o.error().message());
    d.opened = std::move(*o);
    d.store = d.opened.get();
  }
  return d;
}

// Single node: every segment the snapshot references, in dest (see the file comment).
Status FileSystem::PushSegments(std::string_view name, const std::set<uint64_t>& ids, bool own,
                                tier::ObjectStore* dest, std::vector<snap::SegmentRef>* segs_out,
                                PushReport* report_out, const PushProgress& progress) {
  std::vector<snap::SegmentRef>& segs = *segs_out;
  PushReport& report = *report_out;
  // Segments are immutable once sealed: the open ones seal now if the snapshot points into one.
  if (std::ranges::any_of(ids, [&](uint64_t id) { return segments_->IsActive(id); })) {
    CAIRN_ASSIGN_OR_RETURN(bool sealed, segments_->SealIfOlderThan(0));
    (void)sealed;
  }
  // Segments that filled up seal in the background: wait for them.
  CAIRN_RETURN_IF_ERROR(segments_->WaitForSeals());
  std::map<uint64_t, data::SegmentInfo> info;
  for (const auto& seg : segments_->List()) info[seg.id] = seg;
  uint64_t seg_bytes = 0;
  for (uint64_t id : ids) {
    auto it = info.find(id);
    if (it == info.end()) {
      return Err(Code::kCorruption,
                 fmt::format("snapshot '{}' references segment {}, which is missing", name, id));
    }
    if (it->second.state == meta::SegmentState::kOpen) {
      return Err(Code::kBusy, fmt::format("segment {} is still open; retry", id));
    }
    segs.push_back({id, tier_->KeyOf(id), it->second.size});
    seg_bytes += it->second.size;
  }
  report.segments = segs.size();

  // Phase 1: segments.
  std::atomic<uint64_t> done_bytes{0};
  auto tick = [&] {
    if (progress) progress("segments", done_bytes.load(), seg_bytes);
  };
  if (own) {
    // The tier uploads them (it owns their state); the push waits and counts.
    std::set<uint64_t> waiting;
    for (const auto& s : segs) {
      auto st = info[s.id].state;
      if (st == meta::SegmentState::kUploaded || st == meta::SegmentState::kEvicted) {
        report.bytes_present += s.size;
        ++report.objects_present;
        done_bytes += s.size;
      } else {
        waiting.insert(s.id);
        report.bytes_uploaded += s.size;
        ++report.objects_uploaded;
      }
    }
    auto last_progress = Clock::now();
    for (int round = 0; !waiting.empty(); ++round) {
      if (round % 25 == 0) tier_->UploadNow(waiting);  // at once, then every 5 s (retries)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      for (const auto& seg : segments_->List()) {
        if (waiting.count(seg.id) && (seg.state == meta::SegmentState::kUploaded ||
                                      seg.state == meta::SegmentState::kEvicted)) {
          waiting.erase(seg.id);
          done_bytes += seg.size;
          last_progress = Clock::now();
        }
      }
      tick();
      if (Clock::now() - last_progress > std::chrono::minutes(10)) {
        return Err(Code::kUnavailable,
                   fmt::format("uploads to {} made no progress for 10 minutes (object store "
                               "down?); rerun the push to resume",
                               report.url));
      }
    }
    // Their objects now outlive the segments: only a remote delete may remove them.
    std::vector<uint64_t> mine;
    for (const auto& s : segs) {
      if (segments_->Origin(s.id).empty()) mine.push_back(s.id);
    }
    CAIRN_RETURN_IF_ERROR(segments_->SetPushed(mine, true));
  } else {
    std::atomic<uint64_t> up_objects{0}, up_bytes{0}, have_objects{0}, have_bytes{0};
    CAIRN_RETURN_IF_ERROR(RunParallel(
        segs.size(), 4,
        [&](size_t i) -> Status {
          const auto& s = segs[i];
          auto head = dest->Head(s.key);
          if (head && head->size == s.size) {
            ++have_objects;
            have_bytes += s.size;
            done_bytes += s.size;
            return Status::Ok();
          }
          if (!head && head.error().code() != Code::kNotFound) return head.error();
          tier::CallOptions call;
          call.deadline = std::chrono::milliseconds(600000);
          std::string path = data::SegmentStore::SegmentPath(data_dir_, s.id);
          std::string tmp;
          if (!segments_->IsLocal(s.id)) {
            // Only in this file system's store: copied through NVMe.
            tmp = segments_->HydratePath(s.id) + ".push";
            auto got = tier_->store().GetToFile(s.key, tmp, {}, call);
            if (!got) {
              ::unlink(tmp.c_str());
              return got.error();
            }
            path = tmp;
          }
          Status st = dest->PutFile(s.key, path, 0, s.size, call);
          if (!tmp.empty()) ::unlink(tmp.c_str());
          if (!st.ok()) return st;
          ++up_objects;
          up_bytes += s.size;
          done_bytes += s.size;
          return Status::Ok();
        },
        tick));
    report.objects_uploaded += up_objects;
    report.bytes_uploaded += up_bytes;
    report.objects_present += have_objects;
    report.bytes_present += have_bytes;
  }

  return Status::Ok();
}

// Cluster: the segments come from the pool (any node's, open ones too) or, once tiered, from
// the shared object store, and go to dest as they are. A segment object only ever grows (segments
// are append-only), so one in dest that holds at least the bytes this snapshot maps serves it:
// an earlier push may have copied a segment that was still open then.
Status FileSystem::CopyClusterSegments(const std::map<uint64_t, uint64_t>& need,
                                       tier::ObjectStore* dest, std::vector<snap::SegmentRef>* segs,
                                       PushReport* report, const PushProgress& progress) {
  const std::vector<std::pair<uint64_t, uint64_t>> todo(need.begin(), need.end());
  segs->assign(todo.size(), {});
  uint64_t total = 0;
  for (const auto& [id, n] : todo) total += n;
  std::atomic<uint64_t> done{0}, up_objects{0}, up_bytes{0}, have_objects{0}, have_bytes{0};
  // The whole segment in memory (segment_size, 64 MiB by default, per worker), as a cluster
  // node's upload does.
  auto read = [&](uint64_t id) -> Result<std::string> {
    for (int attempt = 0;; ++attempt) {
      auto value = kv_->Get(meta::SegmentKey(id));
      if (!value) {
        if (value.error().code() != Code::kNotFound) return Err(value.error());
        return Err(Code::kCorruption,
                   fmt::format("segment {}, which the snapshot maps, has no record", id));
      }
      CAIRN_ASSIGN_OR_RETURN(meta::SegmentRecord rec, meta::DecodeSegment(id, *value));
      if (rec.state == meta::SegmentState::kUploaded || rec.state == meta::SegmentState::kEvicted) {
        return snap::GetObject(tier_->store(), tier_->KeyOf(id));
      }
      auto file = backend_->Open(id, false);
      if (!file && file.error().code() == Code::kNotFound && attempt == 0) {
        continue;  // evicted in the meantime: its record says so now
      }
      if (!file) return Err(file.error());
      CAIRN_ASSIGN_OR_RETURN(uint64_t size, (*file)->Size());
      std::string data(size, '\0');
      CAIRN_ASSIGN_OR_RETURN(size_t got, (*file)->ReadAt(0, data.data(), size));
      data.resize(got);
      return data;
    }
  };
  CAIRN_RETURN_IF_ERROR(RunParallel(
      todo.size(), 4,
      [&](size_t i) -> Status {
        const auto [id, needed] = todo[i];
        const std::string key = tier::TierEngine::SegmentKey(super_.uuid, id);
        auto head = dest->Head(key);
        if (head && head->size >= needed) {
          (*segs)[i] = {id, key, head->size};
          ++have_objects;
          have_bytes += head->size;
          done += needed;
          return Status::Ok();
        }
        if (!head && head.error().code() != Code::kNotFound) return head.error();
        CAIRN_ASSIGN_OR_RETURN(std::string data, read(id));
        if (data.size() < needed) {
          return Status(Code::kCorruption,
                        fmt::format("segment {} holds {} bytes; the snapshot maps up to byte {}",
                                    id, data.size(), needed));
        }
        CAIRN_RETURN_IF_ERROR(data::CheckSegmentHeader(
            std::string_view(data).substr(0, data::kSegmentHeaderSize), id));
        tier::CallOptions call;
        call.deadline = std::chrono::milliseconds(600000);
        CAIRN_RETURN_IF_ERROR(dest->Put(key, data, call));
        (*segs)[i] = {id, key, data.size()};
        ++up_objects;
        up_bytes += data.size();
        done += needed;
        return Status::Ok();
      },
      [&] {
        if (progress) progress("segments", done.load(), total);
      }));
  report->segments = segs->size();
  report->objects_uploaded += up_objects;
  report->bytes_uploaded += up_bytes;
  report->objects_present += have_objects;
  report->bytes_present += have_bytes;
  return Status::Ok();
}

Result<PushReport> FileSystem::PushSnapshot(std::string_view name, const std::string& url,
                                            const PushProgress& progress) {
  std::lock_guard remote(remote_mu_);
  const auto start = Clock::now();
  CAIRN_RETURN_IF_ERROR(snapshots_->Refresh());
  CAIRN_ASSIGN_OR_RETURN(auto view, snapshots_->ViewByName(name));
  CAIRN_ASSIGN_OR_RETURN(Destination d, OpenDestination(url));
  const bool own = d.own;
  if (cluster_ && own) {
    return Err(Code::kNotSupported,
               "a cluster pushes snapshots to another object store (cairn snap push MOUNTPOINT "
               "NAME --to URL): the segment objects in its own store belong to the nodes that "
               "tier them");
  }
  tier::ObjectStore* dest = d.store;
  PushReport report;
  report.url = d.url;
  report.manifest_key = snap::ManifestKey(name, super_.uuid);
  const auto& rec = view->record();

  // A manifest there already: this snapshot pushed before (nothing to do), or another one with
  // the same name (refused: it would orphan what that one references).
  auto existing = snap::GetObject(*dest, report.manifest_key);
  if (existing) {
    auto m = snap::DecodeManifest(*existing, report.manifest_key);
    if (m && m->created == rec.created.sec && m->created_nsec == rec.created.nsec) {
      report.segments = m->segments.size();
      report.metadata_files = m->metadata.size();
      report.objects_present = report.segments + report.metadata_files + 1;
      for (const auto& s : m->segments) report.bytes_present += s.size;
      for (const auto& f : m->metadata) report.bytes_present += f.size;
      report.files = m->files;
      report.file_bytes = m->file_bytes;
      return report;
    }
    return Err(Code::kExists,
               fmt::format("{} already holds a different snapshot named '{}' of this file system; "
                           "delete it first (cairn snap delete MOUNTPOINT {} --remote)",
                           report.url, name, name));
  }
  if (existing.error().code() != Code::kNotFound) return Err(existing.error());

  // What the snapshot references: the segments its extents point into.
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view->Meta());
  std::set<uint64_t> ids;
  std::map<uint64_t, uint64_t> need;  // segment -> the end of the last blob the snapshot maps
  {
    auto it = meta->kv().NewIterator();
    for (it->Seek("E"); it->Valid() && it->key()[0] == 'E'; it->Next()) {
      CAIRN_ASSIGN_OR_RETURN(meta::Extent e,
                             meta::DecodeExtent(meta::KeyU64(it->key(), true), it->value()));
      ids.insert(e.segment_id);
      uint64_t& end = need[e.segment_id];
      end = std::max(end, e.blob_offset + e.blob_length);
    }
    for (it->Seek("I"); it->Valid() && it->key()[0] == 'I'; it->Next()) {
      CAIRN_ASSIGN_OR_RETURN(meta::Inode inode,
                             meta::DecodeInode(meta::KeyU64(it->key()), it->value()));
      if (inode.IsReg()) {
        ++report.files;
        report.file_bytes += inode.size;
      }
    }
    CAIRN_RETURN_IF_ERROR(it->status());
  }
  std::vector<snap::SegmentRef> segs;
  if (cluster_) {
    CAIRN_RETURN_IF_ERROR(CopyClusterSegments(need, dest, &segs, &report, progress));
    CAIRN_RETURN_IF_ERROR(snapshots_->Export(*view));
  } else {
    CAIRN_RETURN_IF_ERROR(PushSegments(name, ids, own, dest, &segs, &report, progress));
  }

  // Phase 2: the metadata checkpoint, file by file, named by content.
  CAIRN_ASSIGN_OR_RETURN(auto files, CheckpointFiles(view->dir()));
  std::vector<snap::MetaFile> metas(files.size());
  uint64_t meta_bytes = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat sb;
    const std::string path = view->dir() + "/" + files[i];
    if (::stat(path.c_str(), &sb) != 0) return Err(ErrnoStatus("stat " + path));
    metas[i].file = files[i];
    metas[i].size = static_cast<uint64_t>(sb.st_size);
    meta_bytes += metas[i].size;
  }
  report.metadata_files = metas.size();
  std::atomic<uint64_t> meta_done{0}, up_objects{0}, up_bytes{0}, have_objects{0}, have_bytes{0};
  CAIRN_RETURN_IF_ERROR(RunParallel(
      metas.size(), 4,
      [&](size_t i) -> Status {
        auto& f = metas[i];
        const std::string path = view->dir() + "/" + f.file;
        CAIRN_ASSIGN_OR_RETURN(f.sha256, snap::Sha256File(path));
        f.key = snap::MetaKey(super_.uuid, f.sha256);
        auto head = dest->Head(f.key);
        if (head && head->size == f.size) {
          ++have_objects;
          have_bytes += f.size;
        } else {
          if (!head && head.error().code() != Code::kNotFound) return head.error();
          CAIRN_RETURN_IF_ERROR(dest->PutFile(f.key, path, 0, f.size));
          ++up_objects;
          up_bytes += f.size;
        }
        meta_done += f.size;
        return Status::Ok();
      },
      [&] {
        if (progress) progress("metadata", meta_done.load(), meta_bytes);
      }));
  report.objects_uploaded += up_objects;
  report.bytes_uploaded += up_bytes;
  report.objects_present += have_objects;
  report.bytes_present += have_bytes;

  // Phase 3: the manifest, last.
  snap::Manifest m;
  m.name = name;
  m.fs_uuid = super_.uuid;
  m.created = rec.created.sec;
  m.created_nsec = rec.created.nsec;
  m.pushed = static_cast<int64_t>(::time(nullptr));
  m.inline_max = super_.inline_max;
  m.segment_size = super_.segment_size;
  m.files = report.files;
  m.file_bytes = report.file_bytes;
  m.metadata = std::move(metas);
  m.segments = std::move(segs);
  const std::string manifest = snap::EncodeManifest(m);
  CAIRN_RETURN_IF_ERROR(dest->Put(report.manifest_key, manifest));
  ++report.objects_uploaded;
  report.bytes_uploaded += manifest.size();

  // Remember where it went (cairn snap list).
  CAIRN_RETURN_IF_ERROR(snapshots_->NotePushed(name, report.url, /*pushed=*/true));
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  log::Info("snapshot '{}' pushed to {}: {} objects ({} bytes) uploaded, {} ({} bytes) present",
            name, report.url, report.objects_uploaded, report.bytes_uploaded,
            report.objects_present, report.bytes_present);
  return report;
}

Result<RemoteDeleteReport> FileSystem::DeleteRemoteSnapshot(std::string_view name,
                                                            const std::string& url) {
  std::lock_guard remote(remote_mu_);
  CAIRN_RETURN_IF_ERROR(snap::CheckSnapshotName(name));
  CAIRN_ASSIGN_OR_RETURN(Destination d, OpenDestination(url));
  const bool own = d.own;
  const std::string where = d.url;
  tier::ObjectStore* dest = d.store;
  RemoteDeleteReport report;
  report.manifest_key = snap::ManifestKey(name, super_.uuid);
  auto data = snap::GetObject(*dest, report.manifest_key);
  if (!data) {
    if (data.error().code() == Code::kNotFound) {
      return Err(Code::kNotFound,
                 fmt::format("{} holds no pushed snapshot '{}' of this file system", where, name));
    }
    return Err(data.error());
  }
  // What else references objects: every other manifest, every restored file system's refs.
  CAIRN_ASSIGN_OR_RETURN(snap::Listing listing, snap::ListSnapshots(*dest));
  std::set<std::string> referenced;
  for (const auto& [key, why] : listing.damaged) {
    if (key == report.manifest_key) continue;
    return Err(Code::kCorruption,
               fmt::format("cannot tell what {} references ({}); nothing was deleted", key, why));
  }
  for (const auto& other : listing.manifests) {
    if (snap::ManifestKey(other.name, other.fs_uuid) == report.manifest_key) continue;
    for (auto& k : other.Keys()) referenced.insert(std::move(k));
  }
  CAIRN_ASSIGN_OR_RETURN(auto ref_objects, snap::ListAll(*dest, "refs/"));
  for (const auto& o : ref_objects) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, snap::GetObject(*dest, o.key));
    auto refs = snap::DecodeRefs(text, o.key);
    if (!refs) {
      return Err(Code::kCorruption,
                 fmt::format("cannot tell what {} references ({}); nothing was deleted", o.key,
                             refs.error().message()));
    }
    for (auto& k : refs->keys) referenced.insert(std::move(k));
  }
  std::set<std::string> live;
  std::map<std::string, uint64_t> live_ids;
  if (own) {
    for (const auto& seg : segments_->List()) {
      std::string key = tier_->KeyOf(seg.id);
      live.insert(key);
      live_ids[key] = seg.id;
    }
  }
  auto m = snap::DecodeManifest(*data, report.manifest_key);
  // The manifest goes first: from here on the snapshot no longer exists in the store.
  CAIRN_RETURN_IF_ERROR(dest->Delete(report.manifest_key));
  if (!m) {
    log::Warn("deleted damaged manifest {}; the objects it named are left in place",
              report.manifest_key);
    return report;
  }
  std::map<std::string, uint64_t> sizes;
  for (const auto& f : m->metadata) sizes[f.key] = f.size;
  for (const auto& s : m->segments) sizes[s.key] = s.size;
  std::vector<uint64_t> unpush;
  for (const auto& [key, size] : sizes) {
    const bool mine = snap::KeyOwner(key) == super_.uuid;
    if (!mine || referenced.count(key)) {
      ++report.objects_kept;
      continue;
    }
    if (live.count(key)) {
      // Still part of the live tree: its segment's own life decides; no snapshot needs it now.
      ++report.objects_kept;
      unpush.push_back(live_ids[key]);
      continue;
    }
    Status st = dest->Delete(key);
    if (!st.ok()) return Err(st);
    ++report.objects_deleted;
    report.bytes_deleted += size;
  }
  if (own) CAIRN_RETURN_IF_ERROR(segments_->SetPushed(unpush, false));
  CAIRN_RETURN_IF_ERROR(snapshots_->NotePushed(name, where, /*pushed=*/false));
  log::Info("pushed snapshot '{}' deleted from {}: {} objects ({} bytes) deleted, {} kept", name,
            where, report.objects_deleted, report.bytes_deleted, report.objects_kept);
  return report;
}

}  // namespace cairn::fs
