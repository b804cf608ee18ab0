#include "data/segment_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/checksum.h"
#include "common/coding.h"
#include "common/logging.h"

namespace cairn::data {

// Record header: magic u32, length u32, ino u64, file_offset u64, reserved u32, crc32c u32 of the
// first 28 bytes.
std::string EncodeRecordHeader(const RecordHeader& h) {
  std::string out(kRecordHeaderSize, '\0');
  EncodeFixed32(out.data(), kRecordMagic);
  EncodeFixed32(out.data() + 4, h.length);
  EncodeFixed64(out.data() + 8, h.ino);
  EncodeFixed64(out.data() + 16, h.file_offset);
  EncodeFixed32(out.data() + 28, Crc32c(out.data(), 28));
  return out;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view b) {
  if (b.size() < kRecordHeaderSize || DecodeFixed32(b.data()) != kRecordMagic ||
      DecodeFixed32(b.data() + 28) != Crc32c(b.data(), 28)) {
    return Err(Code::kCorruption, "bad segment record header");
  }
  RecordHeader h;
  h.length = DecodeFixed32(b.data() + 4);
  h.ino = DecodeFixed64(b.data() + 8);
  h.file_offset = DecodeFixed64(b.data() + 16);
  return h;
}

// Segment header: "CAIRNSEG", version u32, reserved u32, segment id u64, zeros, crc32c u32 of the
// first 60 bytes at offset 60.
std::string EncodeSegmentHeader(uint64_t segment_id) {
  std::string out(kSegmentHeaderSize, '\0');
  std::memcpy(out.data(), kSegmentMagic, 8);
  EncodeFixed32(out.data() + 8, kSegmentVersion);
  EncodeFixed64(out.data() + 16, segment_id);
  EncodeFixed32(out.data() + 60, Crc32c(out.data(), 60));
  return out;
}

Status CheckSegmentHeader(std::string_view b, uint64_t segment_id) {
  if (b.size() < kSegmentHeaderSize || std::memcmp(b.data(), kSegmentMagic, 8) != 0 ||
      DecodeFixed32(b.data() + 60) != Crc32c(b.data(), 60)) {
    return Status(Code::kCorruption, fmt::format("segment {} has a bad header", segment_id));
  }
  if (DecodeFixed32(b.data() + 8) != kSegmentVersion) {
    return Status(Code::kNotSupported, fmt::format("segment {} has unknown version {}", segment_id,
                                                   DecodeFixed32(b.data() + 8)));
  }
  if (DecodeFixed64(b.data() + 16) != segment_id) {
    return Status(Code::kCorruption, fmt::format("segment file {} names another id", segment_id));
  }
  return Status::Ok();
}

std::string SegmentStore::SegmentPath(const std::string& data_dir, uint64_t id) {
  return fmt::format("{}/segments/{:016x}.seg", data_dir, id);
}

SegmentStore::SegmentStore(std::string data_dir, kv::KvStore* kv, SegmentStoreOptions options)
    : dir_(std::move(data_dir)),
      kv_(kv),
      options_(options),
      backend_(options_.backend ? options_.backend : std::make_shared<LocalSegments>(dir_)),
      ids_(kv, "next_segment", 1),
      lanes_(std::max(1u, options_.lanes)) {}

SegmentStore::~SegmentStore() { (void)Close(); }

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<SegmentStore>> SegmentStore::Open(const std::string& data_dir,
                                                         kv::KvStore* kv,
                                                         const SegmentStoreOptions& options) {
  std::unique_ptr<SegmentStore> store(new SegmentStore(data_dir, kv, options));
  CAIRN_RETURN_IF_ERROR(store->ids_.Load());
  meta::MetaStore meta(kv);
  CAIRN_ASSIGN_OR_RETURN(auto records, meta.ListSegments());
  kv::WriteBatch fixups;
  const int64_t now = NowSeconds();
  SegmentBackend& backend = *store->backend_;
  for (auto& rec : records) {
    // Another node's segment: that node seals, tiers and compacts it; reads open it on demand.
    if (!options.read_only && rec.node != options.node) continue;
    auto seg = std::make_shared<Segment>();
    seg->state_since = now;
    seg->origin = rec.origin;
    seg->pushed = rec.pushed;
    store->segments_[rec.id] = seg;
    if (!options.read_only && backend.local()) {
      (void)::unlink(store->HydratePath(rec.id).c_str());  // a stale download
    }
    if (rec.state == meta::SegmentState::kEvicted) {
      // A crash between recording the eviction and deleting the file leaves the file behind.
      if (!options.read_only) (void)backend.Remove(rec.id);
      seg->state = rec.state;
      seg->size = rec.size;
      continue;
    }
    auto file = backend.Open(rec.id, false);
    if (!file) {
      seg->state = meta::SegmentState::kSealed;
      if (rec.state == meta::SegmentState::kUploaded) {
        // The object store holds it: read it from there.
        log::Warn("segment {} is missing on NVMe; it is read from the object store", rec.id);
        seg->state = meta::SegmentState::kEvicted;
        seg->size = rec.size;
        rec.state = meta::SegmentState::kEvicted;
        fixups.Put(meta::SegmentKey(rec.id), meta::EncodeSegment(rec));
        continue;
      }
      // Keep the entry so that reads of its extents report the loss instead of hiding it.
      log::Error("segment {} is missing: {}", rec.id, file.error().ToString());
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, (*file)->Size());
    seg->file = std::move(*file);
    seg->size = size;
    seg->state = rec.state == meta::SegmentState::kUploaded ? meta::SegmentState::kUploaded
                                                            : meta::SegmentState::kSealed;
    store->local_bytes_ += size;
    if (rec.state == meta::SegmentState::kOpen || rec.size != size) {
      // Left open by a crash: seal it where it stands. Bytes past the last committed extent are
      // garbage that compaction reclaims.
      rec.state = meta::SegmentState::kSealed;
      seg->state = rec.state;
      rec.size = size;
      fixups.Put(meta::SegmentKey(rec.id), meta::EncodeSegment(rec));
    }
  }
  if (!fixups.empty() && !options.read_only) CAIRN_RETURN_IF_ERROR(kv->Write(fixups, true));
  return store;
}

Status SegmentStore::PutRecord(const Segment& seg, uint64_t id, meta::SegmentState state,
                               uint64_t size, bool sync) {
  std::lock_guard lock(record_mu_);  // so that a concurrent SetPushed is never overwritten
  kv::WriteBatch batch;
  batch.Put(meta::SegmentKey(id),
            meta::EncodeSegment({id, state, size, seg.origin, seg.pushed.load(), options_.node}));
  return kv_->Write(batch, sync);
}

Status SegmentStore::Seal(const std::shared_ptr<Segment>& seg, uint64_t id) {
  // Appends that reserved space write outside the lock; the seal covers their bytes too.
  while (seg->inflight.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  CAIRN_RETURN_IF_ERROR(seg->file->DataSync());
  // The kernel's FUSE page cache holds what was just written for the mount's readers; a second
  // copy in the segment file's page cache only doubles the pages a large write allocates (and,
  // in a memory cgroup at its limit, reclaims first: BENCHMARKS.md, "Checkpoint writes after a
  // data set").
  seg->file->DropCleanPages();
  CAIRN_RETURN_IF_ERROR(PutRecord(*seg, id, meta::SegmentState::kSealed, seg->size.load(), false));
  std::unique_lock lock(map_mu_);
  seg->state = meta::SegmentState::kSealed;
  seg->state_since = NowSeconds();
  return Status::Ok();
}

Status SegmentStore::SealLocked(size_t lane) {
  Lane& l = lanes_[lane];
  if (!l.seg) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(Seal(l.seg, l.id));
  l.seg.reset();
  l.id = 0;
  return Status::Ok();
}

void SegmentStore::FinishSeal(std::shared_ptr<Segment> seg, uint64_t id) {
  Status st = Seal(seg, id);
  if (!st.ok()) log::Error("seal of segment {}: {}", id, st.ToString());
  {
    std::lock_guard lock(append_mu_);
    if (st.ok()) {
      sealing_.erase(id);
    } else {
      sealing_[id].failed = st;
    }
  }
  seals_cv_.notify_all();
}

Status SegmentStore::WaitForSeals() {
  std::unique_lock lock(append_mu_);
  const auto all_failed = [&] {
    return std::ranges::all_of(sealing_,
                               [](const auto& entry) { return entry.second.failed.has_value(); });
  };
  seals_cv_.wait(lock, all_failed);
  if (!sealing_.empty()) return *sealing_.begin()->second.failed;
  return Status::Ok();
}

Status SegmentStore::RollLocked(size_t lane) {
  Lane& l = lanes_[lane];
  if (closed_) {
    CAIRN_RETURN_IF_ERROR(SealLocked(lane));
  } else if (l.seg) {
    // The full segment seals in the background; until then SyncActive syncs it with the open one
    // and it stays kOpen (not uploaded, compacted or pushed).
    sealing_[l.id] = {l.seg, std::nullopt};
    sealer_->Submit([this, seg = l.seg, id = l.id] { FinishSeal(seg, id); });
    l.seg.reset();
    l.id = 0;
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, ids_.Next());
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<SegmentFile> file, backend_->Create(id));
  std::string header = EncodeSegmentHeader(id);
  iovec hiov{header.data(), header.size()};
  CAIRN_RETURN_IF_ERROR(file->WriteVAt(0, &hiov, 1, header.size()));
  auto seg = std::make_shared<Segment>();
  // The segment record commits before any extent can point into the segment.
  CAIRN_RETURN_IF_ERROR(PutRecord(*seg, id, meta::SegmentState::kOpen, 0, false));
  seg->file = std::move(file);
  seg->state = meta::SegmentState::kOpen;
  seg->size = kSegmentHeaderSize;
  seg->opened = seg->state_since = NowSeconds();
  local_bytes_ += kSegmentHeaderSize;
  {
    std::unique_lock lock(map_mu_);
    segments_[id] = seg;
  }
  l.seg = seg;
  l.id = id;
  return Status::Ok();
}

Result<meta::Extent> SegmentStore::Append(uint64_t ino, uint64_t file_offset, const char* data,
                                          size_t n, bool uncommitted) {
  if (n == 0 || n > kMaxBlob) return Err(Code::kInvalid, "blob size out of range");
  if (options_.read_only) return Err(Code::kPermission, "segment store is read-only");
  meta::Extent e;
  e.file_offset = file_offset;
  e.blob_length = static_cast<uint32_t>(n);
  e.length = static_cast<uint32_t>(n);
  e.crcs.reserve((n + meta::kChunkSize - 1) / meta::kChunkSize);
  for (size_t off = 0; off < n; off += meta::kChunkSize) {
    e.crcs.push_back(Crc32c(data + off, std::min<size_t>(meta::kChunkSize, n - off)));
  }
  std::string header = EncodeRecordHeader({static_cast<uint32_t>(n), ino, file_offset});

  std::shared_ptr<Segment> seg;
  uint64_t at;
  {
    std::lock_guard lock(append_mu_);
    const size_t lane = ino % lanes_.size();
    Lane& l = lanes_[lane];
    if (!l.seg || l.seg->size + kRecordHeaderSize + n > options_.segment_size) {
      CAIRN_RETURN_IF_ERROR(RollLocked(lane));
    }
    seg = l.seg;
    at = seg->size;
    seg->size = at + kRecordHeaderSize + n;
    seg->inflight.fetch_add(1, std::memory_order_acq_rel);
    if (uncommitted) seg->uncommitted.fetch_add(1, std::memory_order_acq_rel);
    local_bytes_ += kRecordHeaderSize + n;
    e.segment_id = l.id;
  }
  // Written outside the lock: writers copy into the page cache in parallel. A failed write leaves
  // a hole that no extent points at; the record walk of compaction stops at it.
  iovec iov[2] = {{header.data(), header.size()}, {const_cast<char*>(data), n}};
  Status st = seg->file->WriteVAt(at, iov, 2, kRecordHeaderSize + n);
  seg->inflight.fetch_sub(1, std::memory_order_acq_rel);
  CAIRN_RETURN_IF_ERROR(st);
  e.blob_offset = at + kRecordHeaderSize;
  return e;
}

void SegmentStore::Committed(uint64_t segment_id) {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  if (it != segments_.end()) it->second->uncommitted.fetch_sub(1, std::memory_order_acq_rel);
}

bool SegmentStore::HasUncommitted(uint64_t segment_id) const {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  return it != segments_.end() && it->second->uncommitted.load(std::memory_order_acquire) > 0;
}

SegmentStore::Source SegmentStore::Locate(uint64_t segment_id, bool refresh) const {
  {
    std::shared_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it != segments_.end()) {
      it->second->last_read.store(NowSeconds(), std::memory_order_relaxed);
      return {it->second->file, it->second->state == meta::SegmentState::kEvicted};
    }
  }
  if (options_.node != 0) return ForeignSource(segment_id, refresh);
  return {};
}

Status SegmentStore::Read(const meta::Extent& e, uint32_t from, uint32_t n, char* out) const {
  if (n == 0) return Status::Ok();
  if (static_cast<uint64_t>(from) + n > e.length) return Status(Code::kInvalid, "read past extent");
  Source src = Locate(e.segment_id, false);
  auto missing = [&] {
    return Status(Code::kCorruption, fmt::format("segment {} is missing", e.segment_id));
  };
  if (!src.file && !(src.evicted && remote_)) return missing();
  auto read_from = [&](uint64_t offset, char* buf, size_t len) -> Result<size_t> {
    if (src.file) return src.file->ReadAt(offset, buf, len);
    CAIRN_RETURN_IF_ERROR(remote_->ReadRemote(e.segment_id, offset, len, buf));
    remote_->OnRemoteRead(e.segment_id);
    return len;
  };
  return ReadExtentChecked(e, from, n, out, [&](uint64_t offset, char* buf, size_t len) {
    auto read = read_from(offset, buf, len);
    if (!read && read.error().code() == Code::kNotFound && src.file && !backend_->local()) {
      // The pool object went away under the read: its node evicted it after uploading it (the
      // eviction is recorded before the object is deleted), so the object store has it.
      src = Locate(e.segment_id, true);
      if (!src.file && !(src.evicted && remote_)) return Result<size_t>(Err(missing()));
      log::Info("segment {} left the pool under a read; it is read from the object store",
                e.segment_id);
      read = read_from(offset, buf, len);
    }
    return read;
  });
}

Status ReadExtentChecked(const meta::Extent& e, uint32_t from, uint32_t n, char* out,
                         const SegmentReader& read_at) {
  const uint64_t begin = static_cast<uint64_t>(e.skip) + from;  // within the blob
  const uint64_t end = begin + n;
  const uint64_t first_chunk = begin / meta::kChunkSize;
  const uint64_t last_chunk = (end - 1) / meta::kChunkSize;
  const uint64_t read_begin = first_chunk * meta::kChunkSize;
  const uint64_t read_end = std::min<uint64_t>(e.blob_length, (last_chunk + 1) * meta::kChunkSize);
  const size_t read_len = read_end - read_begin;

  // Read straight into the caller's buffer when the window is whole chunks.
  thread_local std::vector<char> scratch;
  char* buf = out;
  const bool direct = begin == read_begin && end == read_end;
  if (!direct) {
    if (scratch.size() < read_len) scratch.resize(read_len);
    buf = scratch.data();
  }
  CAIRN_ASSIGN_OR_RETURN(const size_t got, read_at(e.blob_offset + read_begin, buf, read_len));
  if (got != read_len) {
    return Status(Code::kCorruption, fmt::format("segment {} is truncated at offset {}",
                                                 e.segment_id, e.blob_offset + read_begin + got));
  }
  for (uint64_t c = first_chunk; c <= last_chunk; ++c) {
    const uint64_t off = c * meta::kChunkSize - read_begin;
    const size_t len = std::min<uint64_t>(meta::kChunkSize, e.blob_length - c * meta::kChunkSize);
    if (Crc32c(buf + off, len) != e.crcs[c]) {
      return Status(Code::kCorruption,
                    fmt::format("checksum mismatch in segment {} at offset {}", e.segment_id,
                                e.blob_offset + c * meta::kChunkSize));
    }
  }
  if (!direct) std::memcpy(out, buf + (begin - read_begin), n);
  return Status::Ok();
}

Status SegmentStore::SyncActive() {
  std::lock_guard sync_lock(sync_mu_);
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::lock_guard lock(append_mu_);
    for (const auto& [id, sealing] : sealing_) segs.push_back(sealing.seg);
    for (const Lane& l : lanes_) {
      if (l.seg) segs.push_back(l.seg);
    }
  }
  // Appends that returned have written their bytes; those still in flight are not promised.
  for (const auto& seg : segs) CAIRN_RETURN_IF_ERROR(seg->file->DataSync());
  return Status::Ok();
}

Status SegmentStore::Close() {
  if (options_.read_only) return Status::Ok();
  sealer_->Stop();  // finishes the queued seals; they take append_mu_
  std::lock_guard lock(append_mu_);
  closed_ = true;
  // Seals that failed in the background get one more try.
  for (auto it = sealing_.begin(); it != sealing_.end();) {
    CAIRN_RETURN_IF_ERROR(Seal(it->second.seg, it->first));
    it = sealing_.erase(it);
  }
  for (size_t lane = 0; lane < lanes_.size(); ++lane) CAIRN_RETURN_IF_ERROR(SealLocked(lane));
  return Status::Ok();
}

void SegmentStore::AddLive(uint64_t segment_id, int64_t delta) {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  if (it != segments_.end()) it->second->live += delta;
}

std::vector<SegmentInfo> SegmentStore::List() const {
  std::shared_lock lock(map_mu_);
  std::vector<SegmentInfo> out;
  out.reserve(segments_.size());
  for (const auto& [id, seg] : segments_) {
    out.push_back({id, seg->state, seg->size.load(), seg->live.load(), seg->last_read.load(),
                   seg->state_since, seg->origin});
  }
  return out;
}

bool SegmentStore::IsActive(uint64_t segment_id) const {
  std::lock_guard lock(const_cast<std::mutex&>(append_mu_));
  for (const Lane& l : lanes_) {
    if (l.seg && l.id == segment_id) return true;
  }
  return false;
}

SegmentStore::Source SegmentStore::ForeignSource(uint64_t segment_id, bool refresh) const {
  {
    std::lock_guard lock(foreign_mu_);
    auto it = foreign_.find(segment_id);
    if (it != foreign_.end()) {
      if (!refresh) return it->second;
      foreign_.erase(it);
    }
  }
  // An extent points here, so the segment's record committed before it (Append's contract).
  auto record = [&]() -> std::optional<meta::SegmentRecord> {
    auto v = kv_->Get(meta::SegmentKey(segment_id));
    if (!v) return std::nullopt;
    auto rec = meta::DecodeSegment(segment_id, *v);
    if (!rec || rec->node == options_.node) return std::nullopt;
    return *rec;
  };
  auto rec = record();
  if (!rec) return {};
  Source src;
  src.origin = rec->origin;
  if (rec->state == meta::SegmentState::kEvicted) {
    src.evicted = true;  // in the object store only (cluster nodes do not hydrate)
  } else {
    auto file = backend_->Open(segment_id, false);
    if (file) {
      src.file = std::move(*file);
    } else if (file.error().code() == Code::kNotFound && (rec = record()) &&
               rec->state == meta::SegmentState::kEvicted) {
      src.evicted = true;  // evicted between the two looks
    } else {
      log::Error("segment {} of node {}: {}", segment_id, rec ? rec->node : 0,
                 file.error().ToString());
      return {};
    }
  }
  std::lock_guard lock(foreign_mu_);
  return foreign_.emplace(segment_id, std::move(src)).first->second;
}

Result<std::shared_ptr<SegmentFile>> SegmentStore::GetFile(uint64_t segment_id) const {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  if (it == segments_.end() || !it->second->file) {
    return Err(Code::kNotFound, fmt::format("segment {}", segment_id));
  }
  return it->second->file;
}

Status SegmentStore::Remove(uint64_t segment_id) {
  bool remote = false;
  bool keep_object = false;
  {
    std::unique_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it == segments_.end()) return Status::Ok();
    if (it->second->state == meta::SegmentState::kOpen) {
      return Status(Code::kBusy, "cannot remove the open segment");
    }
    remote = it->second->state == meta::SegmentState::kUploaded ||
             it->second->state == meta::SegmentState::kEvicted;
    // Another file system's object, or part of a pushed snapshot: not this removal's to delete.
    keep_object = !it->second->origin.empty() || it->second->pushed.load();
    if (it->second->file) local_bytes_ -= it->second->size.load();
    segments_.erase(it);
  }
  kv::WriteBatch batch;
  batch.Delete(meta::SegmentKey(segment_id));
  batch.Delete(meta::LiveKey(segment_id));
  CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
  CAIRN_RETURN_IF_ERROR(backend_->Remove(segment_id));
  if (remote && remote_) remote_->OnRemoved(segment_id, !keep_object);
  return Status::Ok();
}

Result<bool> SegmentStore::SealIfOlderThan(int64_t age_seconds) {
  std::lock_guard lock(append_mu_);
  bool sealed = false;
  for (size_t lane = 0; lane < lanes_.size(); ++lane) {
    const Lane& l = lanes_[lane];
    if (!l.seg || l.seg->size.load() <= kSegmentHeaderSize) continue;
    if (NowSeconds() - l.seg->opened < age_seconds) continue;
    CAIRN_RETURN_IF_ERROR(SealLocked(lane));
    sealed = true;
  }
  return sealed;
}

Status SegmentStore::MarkUploaded(uint64_t segment_id) {
  std::shared_ptr<Segment> seg;
  {
    std::shared_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it == segments_.end()) return Status(Code::kNotFound, "segment");
    seg = it->second;
    if (seg->state != meta::SegmentState::kSealed) return Status::Ok();
  }
  CAIRN_RETURN_IF_ERROR(
      PutRecord(*seg, segment_id, meta::SegmentState::kUploaded, seg->size.load(), false));
  std::unique_lock lock(map_mu_);
  if (seg->state == meta::SegmentState::kSealed) {
    seg->state = meta::SegmentState::kUploaded;
    seg->state_since = NowSeconds();
  }
  return Status::Ok();
}

Result<uint64_t> SegmentStore::Evict(uint64_t segment_id) {
  if (options_.read_only) return Err(Code::kPermission, "segment store is read-only");
  std::shared_ptr<Segment> seg;
  {
    std::shared_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it == segments_.end() || it->second->state != meta::SegmentState::kUploaded) return 0;
    seg = it->second;
  }
  // Durable before the file goes: after a crash the segment is read from the object store.
  CAIRN_RETURN_IF_ERROR(
      PutRecord(*seg, segment_id, meta::SegmentState::kEvicted, seg->size.load(), true));
  {
    std::unique_lock lock(map_mu_);
    if (seg->state != meta::SegmentState::kUploaded || !seg->file) return 0;
    seg->state = meta::SegmentState::kEvicted;
    seg->state_since = NowSeconds();
    seg->file.reset();
  }
  CAIRN_RETURN_IF_ERROR(backend_->Remove(segment_id));
  local_bytes_ -= seg->size.load();
  return seg->size.load();
}

std::string SegmentStore::HydratePath(uint64_t segment_id) const {
  return SegmentPath(dir_, segment_id) + ".hydrate";
}

uint64_t SegmentStore::SegmentSize(uint64_t segment_id) const {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  return it == segments_.end() ? 0 : it->second->size.load();
}

bool SegmentStore::IsLocal(uint64_t segment_id) const {
  std::shared_lock lock(map_mu_);
  auto it = segments_.find(segment_id);
  return it != segments_.end() && it->second->state != meta::SegmentState::kEvicted;
}

std::string SegmentStore::Origin(uint64_t segment_id) const {
  {
    std::shared_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it != segments_.end()) return it->second->origin;
  }
  // Another node's segment, once read (a cluster restored from a snapshot reads the source's).
  std::lock_guard lock(foreign_mu_);
  auto it = foreign_.find(segment_id);
  return it == foreign_.end() ? std::string() : it->second.origin;
}

Status SegmentStore::SetPushed(const std::vector<uint64_t>& segment_ids, bool pushed) {
  std::lock_guard record_lock(record_mu_);
  kv::WriteBatch batch;
  {
    std::shared_lock lock(map_mu_);
    for (uint64_t id : segment_ids) {
      auto it = segments_.find(id);
      if (it == segments_.end() || it->second->pushed.load() == pushed) continue;
      Segment& seg = *it->second;
      if (seg.state == meta::SegmentState::kOpen) {
        return Status(Code::kBusy, fmt::format("segment {} is still open", id));
      }
      seg.pushed = pushed;
      batch.Put(meta::SegmentKey(id), meta::EncodeSegment({id, seg.state, seg.size.load(),
                                                           seg.origin, pushed, options_.node}));
    }
  }
  if (batch.empty()) return Status::Ok();
  return kv_->Write(batch, true);
}

Status SegmentStore::InstallHydrated(uint64_t segment_id, const std::string& path) {
  if (!backend_->local()) return Status(Code::kNotSupported, "hydration needs local segments");
  std::shared_ptr<Segment> seg;
  {
    std::shared_lock lock(map_mu_);
    auto it = segments_.find(segment_id);
    if (it == segments_.end() || it->second->state != meta::SegmentState::kEvicted) {
      ::unlink(path.c_str());
      return Status::Ok();  // removed or hydrated meanwhile
    }
    seg = it->second;
  }
  CAIRN_ASSIGN_OR_RETURN(File file, File::Open(path, O_RDONLY));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  std::string header(kSegmentHeaderSize, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t got, file.ReadAt(0, header.data(), header.size()));
  header.resize(got);
  Status st = CheckSegmentHeader(header, segment_id);
  if (st.ok() && size != seg->size.load()) {
    st = Status(Code::kCorruption, fmt::format("object of segment {} has {} bytes, expected {}",
                                               segment_id, size, seg->size.load()));
  }
  if (!st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  CAIRN_RETURN_IF_ERROR(file.DataSync());
  std::string final_path = SegmentPath(dir_, segment_id);
  if (::rename(path.c_str(), final_path.c_str()) != 0) return ErrnoStatus("rename " + final_path);
  CAIRN_RETURN_IF_ERROR(PutRecord(*seg, segment_id, meta::SegmentState::kUploaded, size, false));
  std::unique_lock lock(map_mu_);
  if (seg->state != meta::SegmentState::kEvicted) return Status::Ok();
  seg->file = std::make_shared<LocalSegmentFile>(std::move(file));
  seg->state = meta::SegmentState::kUploaded;
  seg->state_since = NowSeconds();
  local_bytes_ += size;
  return Status::Ok();
}

}  // namespace cairn::data
