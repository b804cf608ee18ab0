#include "fs/snapshots.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/coding.h"
#include "common/file.h"
#include "common/logging.h"
#include "fs/inode_cache.h"
#include "kv/read_cache.h"
#include "kv/rocksdb_kv_store.h"
#include "meta/meta_store.h"
#include "snap/manifest.h"

namespace cairn::fs {
namespace {

Result<uint64_t> NextSnapshotIndex(kv::KvStore& kv) {
  auto v = kv.Get(meta::CounterKey("next_snapshot"));
  if (!v) {
    if (v.error().code() == Code::kNotFound) return 1;
    return Err(v.error());
  }
  if (v->size() != 8) return Err(Code::kCorruption, "bad counter next_snapshot");
  return DecodeFixed64(v->data());
}

// What a listing shows of a snapshot: its files and bytes are the totals as it holds them.
SnapshotInfo InfoOf(SnapshotView& view) {
  const meta::SnapshotRecord& r = view.record();
  SnapshotInfo info{r.name, r.index, r.created, 0, 0, view.PushedTo()};
  auto meta = view.Meta();
  if (meta) {
    auto files = (*meta)->ReadTotal(meta::kTotalFiles);
    auto bytes = (*meta)->ReadTotal(meta::kTotalBytes);
    if (files && bytes) {
      info.files = static_cast<uint64_t>(std::max<int64_t>(0, *files));
      info.bytes = static_cast<uint64_t>(std::max<int64_t>(0, *bytes));
      return info;
    }
    meta = Err(files ? bytes.error() : files.error());
  }
  log::Warn("snapshot '{}': reading its totals: {}", r.name, meta.error().ToString());
  return info;
}

}  // namespace

Snapshots::Snapshots(kv::KvStore* kv, Options options, Host host)
    : kv_(kv), options_(std::move(options)), host_(std::move(host)) {}

Status Snapshots::Load() {
  const std::string root = options_.dir;
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("create " + root);
  {
    std::lock_guard lock(mu_);
    CAIRN_RETURN_IF_ERROR(RefreshLocked());
  }
  std::set<std::string> keep;
  {
    std::shared_lock views(views_mu_);
    for (const auto& [index, view] : views_) keep.insert(std::to_string(index));
  }
  // Snapshots of the store without a record: a creation cut short by a crash before its record
  // (a single node writes it just after the checkpoint), or a deletion after its record went.
  CAIRN_ASSIGN_OR_RETURN(auto ids, kv_->ListSnapshots());
  for (uint64_t id : ids) {
    if (keep.count(std::to_string(id))) continue;
    log::Info("dropping metadata snapshot {}, which no snapshot record names", id);
    CAIRN_RETURN_IF_ERROR(kv_->DropSnapshot(id));
  }
  {
    std::shared_lock views(views_mu_);
    for (const auto& [index, view] : views_) {
      if (!std::binary_search(ids.begin(), ids.end(), index)) {
        // Reads of it report the loss; its segments stay (they may be what is left of it).
        log::Error("snapshot '{}': its metadata snapshot {} is missing", view->record().name,
                   index);
      }
    }
  }
  // Other leftovers in DATA_DIR/snapshots: on a cluster, the exports of snapshots deleted since
  // (fs/snapshot_push.cc); on a single node the store keeps its own files there.
  if (options_.shared) {
    DIR* d = ::opendir(root.c_str());
    if (!d) return ErrnoStatus("open " + root);
    std::vector<std::string> stray;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && !keep.count(n)) stray.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : stray) {
      log::Info("removing leftover snapshot export {}/{}", root, n);
      CAIRN_RETURN_IF_ERROR(RemoveTree(root + "/" + n));
    }
  }
  return Status::Ok();
}

void Snapshots::RecomputePinsLocked() {
  std::set<uint64_t> pins;
  for (const auto& [index, view] : views_) {
    pins.insert(view->record().pins.begin(), view->record().pins.end());
  }
  pinned_ = std::move(pins);
}

Result<bool> Snapshots::Pinned(uint64_t segment_id) {
  std::lock_guard lock(mu_);
  if (pinned_.count(segment_id)) return true;  // a record of an older Cairn lists it
  return kv_->SnapshotsHold(meta::SegmentKey(segment_id));
}

Result<SnapshotInfo> Snapshots::Create(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(snap::CheckSnapshotName(name));
  std::lock_guard lock(mu_);
  for (int attempt = 0;; ++attempt) {
    CAIRN_RETURN_IF_ERROR(RefreshLocked());
    {
      std::shared_lock views(views_mu_);
      for (const auto& [i, view] : views_) {
        if (view->record().name == name) {
          return Err(Code::kExists, fmt::format("a snapshot named '{}' exists", name));
        }
      }
    }
    CAIRN_ASSIGN_OR_RETURN(const uint64_t index, NextSnapshotIndex(*kv_));
    if (index > meta::kMaxSnapshotIndex) {
      return Err(Code::kNoSpace, fmt::format("this file system has taken its {} snapshots",
                                             meta::kMaxSnapshotIndex));
    }
    // Everything the snapshot may point at is durable before it is.
    CAIRN_RETURN_IF_ERROR(host_.sync_data());
    meta::SnapshotRecord rec;
    rec.name = name;
    rec.index = static_cast<uint32_t>(index);
    rec.created = meta::Now();
    // The record and the next index, right after the snapshot's instant. On a cluster another
    // node may be taking one at the same moment: the batch expects the name free and the
    // counter as read, and the store refuses an index already taken.
    const std::string counter = meta::CounterKey("next_snapshot");
    auto seen = kv_->Get(counter);
    if (!seen && seen.error().code() != Code::kNotFound) return Err(seen.error());
    kv::WriteBatch then;
    then.Expect(meta::SnapshotKey(name), std::nullopt);
    then.Expect(counter, seen ? std::optional<std::string>(*seen) : std::nullopt);
    then.Put(meta::SnapshotKey(name), meta::EncodeSnapshot(rec));
    std::string next;
    PutFixed64(&next, index + 1);
    then.Put(counter, next);
    Status st = kv_->CreateSnapshot(index, then);
    if ((st.code() == Code::kConflict || st.code() == Code::kExists) && attempt < 10) {
      continue;  // another node took this index or name first: look again
    }
    CAIRN_RETURN_IF_ERROR(st);
    auto view = NewView(rec);
    {
      std::unique_lock views(views_mu_);
      views_[rec.index] = view;
    }
    log::Info("snapshot '{}' created (metadata snapshot {})", name, index);
    return InfoOf(*view);
  }
}

std::vector<SnapshotInfo> Snapshots::List() {
  if (Status st = Refresh(); !st.ok()) {
    log::Warn("reading the cluster's snapshots: {}", st.ToString());
  }
  std::vector<std::shared_ptr<SnapshotView>> views;
  {
    std::shared_lock lock(views_mu_);
    for (const auto& [index, view] : views_) views.push_back(view);
  }
  std::vector<SnapshotInfo> out;
  for (const auto& view : views) out.push_back(InfoOf(*view));
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return std::tie(a.created.sec, a.created.nsec, a.name) <
           std::tie(b.created.sec, b.created.nsec, b.name);
  });
  return out;
}

Status Snapshots::Delete(std::string_view name) {
  std::shared_ptr<SnapshotView> view;
  {
    std::lock_guard lock(mu_);
    CAIRN_RETURN_IF_ERROR(RefreshLocked());
    CAIRN_ASSIGN_OR_RETURN(view, ViewByName(name));
    // The record goes first: from there on no node shows it. A crash before the store's
    // snapshot is dropped leaves it without a record; the next mount drops it.
    kv::WriteBatch batch;
    batch.Delete(meta::SnapshotKey(name));
    CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
    view->MarkDeleted();  // an export of it goes when the last reader lets go of the view
    {
      std::unique_lock views(views_mu_);
      views_.erase(view->record().index);
      RecomputePinsLocked();
    }
    // What only this snapshot kept (history versions; a checkpoint once its last view closes)
    // is freed; segments it alone held go at the next compaction.
    CAIRN_RETURN_IF_ERROR(kv_->DropSnapshot(view->record().index));
  }
  host_.name_gone(std::string(name));
  log::Info("snapshot '{}' deleted", name);
  return Status::Ok();
}

std::shared_ptr<SnapshotView> Snapshots::NewView(const meta::SnapshotRecord& rec) {
  const std::string dir = fmt::format("{}/{}", options_.dir, rec.index);
  // A snapshot never changes: its view keeps what it read (kv::ReadCache).
  SnapshotOpener open = [kv = kv_, index = rec.index]() -> Result<std::unique_ptr<kv::KvStore>> {
    CAIRN_ASSIGN_OR_RETURN(auto view, kv->OpenSnapshot(index));
    return std::unique_ptr<kv::KvStore>(std::make_unique<kv::ReadCache>(std::move(view)));
  };
  return std::make_shared<SnapshotView>(rec, dir, std::move(open));
}

Status Snapshots::Refresh() {
  if (!options_.shared) return Status::Ok();
  std::lock_guard lock(mu_);
  return RefreshLocked();
}

Status Snapshots::RefreshForLookup() {
  if (!options_.shared || MonotonicNs() - read_at_.load() < options_.lease_ns) return Status::Ok();
  return Refresh();
}

Status Snapshots::RefreshLocked() {
  // A single node's records change only here; read once, at mount.
  if (!options_.shared && read_at_.load() > INT64_MIN / 2) return Status::Ok();
  read_at_ = MonotonicNs();
  CAIRN_ASSIGN_OR_RETURN(auto records, kv::ScanRange(*kv_, meta::SnapshotPrefix(),
                                                     meta::PrefixEnd(meta::SnapshotPrefix())));
  std::map<uint32_t, meta::SnapshotRecord> now;
  for (const auto& [key, value] : records) {
    CAIRN_ASSIGN_OR_RETURN(meta::SnapshotRecord rec,
                           meta::DecodeSnapshot(std::string_view(key).substr(1), value));
    now[rec.index] = std::move(rec);
  }
  std::vector<std::string> gone;
  {
    std::unique_lock views(views_mu_);
    for (auto it = views_.begin(); it != views_.end();) {
      if (now.count(it->first)) {
        ++it;
        continue;
      }
      gone.push_back(it->second->record().name);
      it->second->MarkDeleted();  // its export goes with the last reader
      it = views_.erase(it);
    }
    for (auto& [index, rec] : now) {
      auto it = views_.find(index);
      if (it == views_.end()) {
        views_[index] = NewView(rec);
      } else {
        it->second->SetPushedTo(rec.pushed_to);
      }
    }
    RecomputePinsLocked();
  }
  for (const auto& n : gone) host_.name_gone(n);
  return Status::Ok();
}

Result<std::shared_ptr<SnapshotView>> Snapshots::View(uint32_t index) {
  for (int attempt = 0;; ++attempt) {
    {
      std::shared_lock lock(views_mu_);
      auto it = views_.find(index);
      if (it != views_.end()) return it->second;
    }
    // Shared: another node may have taken it since this node last looked.
    if (!options_.shared || attempt > 0) return Err(Code::kNotFound);
    CAIRN_RETURN_IF_ERROR(Refresh());
  }
}

Result<std::shared_ptr<SnapshotView>> Snapshots::ViewByName(std::string_view name) {
  std::shared_lock lock(views_mu_);
  for (const auto& [index, view] : views_) {
    if (view->record().name == name) return view;
  }
  return Err(Code::kNotFound, "no snapshot named '" + std::string(name) + "'");
}

std::vector<std::shared_ptr<SnapshotView>> Snapshots::Views() {
  std::shared_lock lock(views_mu_);
  std::vector<std::shared_ptr<SnapshotView>> out;
  for (const auto& [index, view] : views_) out.push_back(view);
  return out;
}

Result<bool> Snapshots::RemoveUnlessHeld(uint64_t segment_id,
                                         const std::function<Status()>& remove) {
  std::lock_guard lock(mu_);
  if (pinned_.count(segment_id)) return false;  // a snapshot still shows its bytes
  CAIRN_ASSIGN_OR_RETURN(bool held, kv_->SnapshotsHold(meta::SegmentKey(segment_id)));
  if (held) return false;
  CAIRN_RETURN_IF_ERROR(remove());
  return true;
}

Status Snapshots::NotePushed(std::string_view name, const std::string& url, bool pushed) {
  std::lock_guard lock(mu_);
  auto view = ViewByName(name);
  if (!view) return Status::Ok();  // deleted meanwhile
  auto urls = (*view)->PushedTo();
  const bool there = std::find(urls.begin(), urls.end(), url) != urls.end();
  if (there == pushed) return Status::Ok();
  if (pushed) {
    urls.push_back(url);
  } else {
    std::erase(urls, url);
  }
  (*view)->SetPushedTo(urls);
  meta::SnapshotRecord updated = (*view)->record();
  updated.pushed_to = urls;
  kv::WriteBatch batch;
  batch.Put(meta::SnapshotKey(name), meta::EncodeSnapshot(updated));
  return kv_->Write(batch, true);
}

Status Snapshots::Export(SnapshotView& view) {
  struct stat sb;
  if (::stat((view.dir() + "/CURRENT").c_str(), &sb) == 0) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(meta::MetaStore * meta, view.Meta());
  const std::string tmp = view.dir() + ".export";
  CAIRN_RETURN_IF_ERROR(RemoveTree(tmp));
  {
    kv::RocksDbOptions o;
    o.create_if_missing = true;
    o.block_cache_bytes = 8 << 20;
    CAIRN_ASSIGN_OR_RETURN(auto out, kv::RocksDbKvStore::Open(tmp, o));
    auto it = meta->kv().NewIterator();
    kv::WriteBatch batch;
    size_t bytes = 0;
    for (it->Seek(""); it->Valid(); it->Next()) {
      batch.Put(std::string(it->key()), std::string(it->value()));
      bytes += it->key().size() + it->value().size();
      if (bytes >= (8 << 20)) {
        CAIRN_RETURN_IF_ERROR(out->Write(batch, false));
        batch = kv::WriteBatch();
        bytes = 0;
      }
    }
    CAIRN_RETURN_IF_ERROR(it->status());
    CAIRN_RETURN_IF_ERROR(out->Write(batch, false));
    CAIRN_RETURN_IF_ERROR(out->Flush());
  }
  if (::rename(tmp.c_str(), view.dir().c_str()) != 0) {
    return ErrnoStatus("rename " + view.dir());
  }
  return SyncDir(options_.dir);
}

}  // namespace cairn::fs
