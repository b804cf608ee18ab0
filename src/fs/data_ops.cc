// The data path: open, read, write, truncate, fallocate, fsync, release, and segment compaction.
//
// A write appends its bytes to the open segment, then commits one batch with the new extents, the
// trimmed old ones and the inode. Files up to the inline size keep their bytes in the inode
// record instead. Reads hold the inode lock shared, so compaction (which takes it exclusive to
// move an extent) never pulls a segment from under a read.
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <sys/statvfs.h>

#include <cstring>
#include <map>

#include "common/logging.h"
#include "fs/file_system.h"
#include "fs/txn.h"

namespace cairn::fs {
namespace {
// Files may not grow past 2^62 bytes: keeps offset arithmetic far from overflow.
constexpr uint64_t kMaxFileSize = 1ull << 62;
}  // namespace

Status FileSystem::Open(uint64_t ino, int flags) {
  if (IsSnapIno(ino)) {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
      return Status(Code::kReadOnly, "snapshots are read-only");
    return SnapGetAttr(ino).has_value() ? Status::Ok() : Status(Code::kNotFound, "");
  }
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino, 0, 1));
  // Close-to-open: what another node wrote and closed before this open is what it reads.
  bool changed = false;
  Status st = Revalidate(*state, /*force=*/true, &changed);
  // The kernel's size and times of the file are stale: it asks again before it reads.
  if (changed && kernel_) kernel_->InvalidateAttributes(ino);
  if (st.ok() && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
    st = RunOp([&]() -> Status {
      std::unique_lock lock(state->lock);
      if (state->deleted) return Status(Code::kNotFound, "");
      if (!state->inode.IsReg() || state->inode.size == 0) return Status::Ok();
      meta::Inode copy = state->inode;
      kv::WriteBatch batch;
      LiveDeltas live;
      CAIRN_RETURN_IF_ERROR(TruncateLocked(copy, 0, &batch, &live));
      copy.mtime = copy.ctime = meta::Now();
      return CommitData(*state, copy, &batch, live);
    });
  } else if (st.ok()) {
    // Shared: an open of a file that others read or write does not wait for them.
    std::shared_lock lock(state->lock);
    if (state->deleted) st = Status(Code::kNotFound, "");
  }
  if (!st.ok()) {
    cache_->Drop(ino, 0, 1);
    MaybeReclaim(ino, state);
  }
  return st;
}

Result<struct stat> FileSystem::Create(const Context& ctx, uint64_t parent, std::string_view name,
                                       uint32_t mode, int /*flags*/) {
  CAIRN_ASSIGN_OR_RETURN(struct stat st,
                         MakeNode(ctx, parent, name, S_IFREG | (mode & 07777), 0, {}));
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(st.st_ino, 0, 1));
  (void)state;
  return st;
}

Status FileSystem::Release(uint64_t ino) {
  if (IsSnapIno(ino)) return Status::Ok();
  cache_->Drop(ino, 0, 1);
  if (auto state = cache_->Peek(ino)) MaybeReclaim(ino, state);
  return Status::Ok();
}

Status FileSystem::Fsync(uint64_t /*ino*/) {
  // The data went to the open segment (sealed segments are synced when sealed) and the metadata
  // to the KV log: syncing both, in this order, makes the file durable.
  CAIRN_RETURN_IF_ERROR(segments_->SyncActive());
  return kv_->SyncWal();
}

Result<size_t> FileSystem::Read(uint64_t ino, uint64_t offset, size_t size, char* out) {
  if (IsSnapIno(ino)) return SnapRead(ino, offset, size, out);
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
  std::shared_lock lock(state->lock);
  if (state->deleted) return Err(Code::kNotFound);
  if (state->inode.IsDir()) return Err(Code::kIsDir);
  auto n = ReadLocked(state->inode, offset, size, out, nullptr, 0, state.get());
  if (n) {
    io_.reads.Add();
    io_.read_bytes.Add(*n);
  }
  return n;
}

Result<std::vector<meta::Extent>> FileSystem::CachedExtents(InodeState& state, uint64_t begin,
                                                            uint64_t end) {
  constexpr size_t kMaxCachedExtents = 4096;
  const uint64_t ino = state.inode.ino;
  std::shared_ptr<const std::vector<meta::Extent>> all;
  {
    const std::string at = meta::EncodeInode(state.inode);
    std::lock_guard lock(state.extents_mu);
    if (state.extents && state.extents_at == at) {
      all = state.extents;
    } else {
      CAIRN_ASSIGN_OR_RETURN(auto read, meta_->GetExtents(ino, 0, UINT64_MAX));
      if (read.size() > kMaxCachedExtents) {
        state.extents.reset();
        return meta_->GetExtents(ino, begin, end);
      }
      state.extents = all = std::make_shared<const std::vector<meta::Extent>>(std::move(read));
      state.extents_at = at;
    }
  }
  std::vector<meta::Extent> out;
  // Extents are in file order and do not overlap: the first that ends past begin, onward.
  auto it = std::partition_point(all->begin(), all->end(),
                                 [begin](const meta::Extent& e) { return e.end() <= begin; });
  for (; it != all->end() && it->file_offset < end; ++it) out.push_back(*it);
  return out;
}

Result<size_t> FileSystem::ReadLocked(const meta::Inode& inode, uint64_t offset, size_t size,
                                      char* out, meta::MetaStore* meta, uint64_t cache_ino,
                                      InodeState* state) {
  if (!meta) meta = meta_.get();
  if (cache_ino == 0) cache_ino = inode.ino;
  if (offset >= inode.size || size == 0) return 0;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, inode.size - offset));
  if (inode.is_inline) {
    std::memcpy(out, inode.inline_data.data() + offset, n);
    return n;
  }
  if (inode.is_remote) {
    CAIRN_ASSIGN_OR_RETURN(meta::ObjectRef ref, meta->GetObjectRef(inode.ino));
    Status st = tier_->ReadObject({cache_ino, ref, inode.size}, offset, n, out);
    if (!st.ok()) {
      log::Error("read of imported inode {} (object {}) at {}: {}", inode.ino, ref.key, offset,
                 st.ToString());
      return Err(st);
    }
    return n;
  }
  const uint64_t end = offset + n;
  CAIRN_ASSIGN_OR_RETURN(auto extents, state ? CachedExtents(*state, offset, end)
                                             : meta->GetExtents(inode.ino, offset, end));
  uint64_t pos = offset;
  for (const auto& e : extents) {
    const uint64_t b = std::max(offset, e.file_offset);
    const uint64_t f = std::min(end, e.end());
    if (b >= f) continue;
    if (b > pos) std::memset(out + (pos - offset), 0, b - pos);  // a hole reads as zeros
    Status st = segments_->Read(e, static_cast<uint32_t>(b - e.file_offset),
                                static_cast<uint32_t>(f - b), out + (b - offset));
    if (!st.ok()) {
      log::Error("read of inode {} at {}: {}", inode.ino, b, st.ToString());
      return Err(st);
    }
    pos = f;
  }
  if (pos < end) std::memset(out + (pos - offset), 0, end - pos);
  return n;
}

Result<size_t> FileSystem::Write(uint64_t ino, uint64_t offset, const char* data, size_t size) {
  if (IsSnapIno(ino)) return Err(Code::kReadOnly, "snapshots are read-only");
  if (offset > kMaxFileSize || size > kMaxFileSize - offset) return Err(Code::kTooBig);
  tier_->WaitForSpace();  // backpressure while NVMe is full of data not yet uploaded
  auto written = RunOp([&]() -> Result<size_t> {
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    const auto check = [&]() -> Status {
      if (state->deleted) return Status(Code::kNotFound, "");
      if (state->inode.IsDir()) return Status(Code::kIsDir, "");
      if (!state->inode.IsReg()) return Status(Code::kInvalid, "");
      return Status::Ok();
    };
    const auto in_segments = [](const meta::Inode& inode) {
      return !inode.is_inline && !inode.is_remote;
    };
    // A file whose bytes are in segments takes the write's bytes under the shared lock, so that
    // the writes of one file (the kernel flushes its pages with many at once) copy and checksum in
    // parallel; only the commit of the extents is exclusive.
    std::vector<meta::Extent> appended;
    PendingAppends pending(segments_.get());
    {
      std::shared_lock lock(state->lock);
      CAIRN_RETURN_IF_ERROR(check());
      if (size == 0) return 0;
      if (in_segments(state->inode)) {
        CAIRN_RETURN_IF_ERROR(AppendPending(ino, offset, data, size, &appended, &pending));
      }
    }
    std::unique_lock lock(state->lock);
    CAIRN_RETURN_IF_ERROR(check());
    meta::Inode copy = state->inode;
    kv::WriteBatch batch;
    LiveDeltas live;
    if (!appended.empty() && in_segments(copy)) {
      // Whatever changed in between (other writes, a truncate, compaction) is in the committed
      // extents that the punch reads now.
      CAIRN_RETURN_IF_ERROR(PunchLocked(ino, offset, offset + size, &batch, &live));
      for (const meta::Extent& e : appended) {
        batch.Put(meta::ExtentKey(ino, e.file_offset), meta::EncodeExtent(e));
        live.emplace_back(e.segment_id, static_cast<int64_t>(e.length));
      }
      copy.size = std::max(copy.size, offset + size);
    } else {
      // Inline or imported (or it became so while unlocked): the appended bytes, if any, are
      // garbage that compaction reclaims.
      CAIRN_RETURN_IF_ERROR(WriteLocked(copy, offset, data, size, &batch, &live));
    }
    copy.mtime = copy.ctime = meta::Now();
    CAIRN_RETURN_IF_ERROR(CommitData(*state, copy, &batch, live));
    return size;
  });
  if (written) {
    io_.writes.Add();
    io_.written_bytes.Add(*written);
  }
  return written;
}

Status FileSystem::AppendPending(uint64_t ino, uint64_t offset, const char* data, size_t size,
                                 std::vector<meta::Extent>* extents, PendingAppends* pending) {
  for (size_t done = 0; done < size;) {
    const size_t n = std::min<size_t>(data::kMaxBlob, size - done);
    CAIRN_ASSIGN_OR_RETURN(meta::Extent e,
                           segments_->Append(ino, offset + done, data + done, n, true));
    pending->Add(e.segment_id);
    extents->push_back(std::move(e));
    done += n;
  }
  return Status::Ok();
}

Status FileSystem::WriteLocked(meta::Inode& inode, uint64_t offset, const char* data, size_t size,
                               kv::WriteBatch* batch, LiveDeltas* live) {
  const uint64_t end = offset + size;
  if (inode.is_remote) CAIRN_RETURN_IF_ERROR(MaterializeLocked(inode, batch, live));
  if (inode.is_inline) {
    if (end <= super_.inline_max) {
      if (inode.inline_data.size() < end) inode.inline_data.resize(end, '\0');
      std::memcpy(inode.inline_data.data() + offset, data, size);
      inode.size = inode.inline_data.size();
      return Status::Ok();
    }
    // The file outgrows the inode record: its bytes move to a segment with this write.
    std::string head = std::move(inode.inline_data);
    inode.inline_data.clear();
    inode.is_inline = false;
    if (!head.empty() && offset <= head.size()) {
      head.resize(std::max<uint64_t>(head.size(), end), '\0');
      std::memcpy(head.data() + offset, data, size);
      CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, 0, head.data(), head.size(), batch, live));
      inode.size = std::max<uint64_t>(inode.size, head.size());
      return Status::Ok();
    }
    if (!head.empty()) {
      CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, 0, head.data(), head.size(), batch, live));
    }
  }
  CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, offset, data, size, batch, live));
  inode.size = std::max(inode.size, end);
  return Status::Ok();
}

Status FileSystem::AppendRange(uint64_t ino, uint64_t offset, const char* data, size_t size,
                               kv::WriteBatch* batch, LiveDeltas* live) {
  for (size_t done = 0; done < size;) {
    const size_t n = std::min<size_t>(data::kMaxBlob, size - done);
    const uint64_t at = offset + done;
    CAIRN_RETURN_IF_ERROR(PunchLocked(ino, at, at + n, batch, live));
    CAIRN_ASSIGN_OR_RETURN(meta::Extent e, segments_->Append(ino, at, data + done, n));
    batch->Put(meta::ExtentKey(ino, at), meta::EncodeExtent(e));
    live->emplace_back(e.segment_id, static_cast<int64_t>(n));
    done += n;
  }
  return Status::Ok();
}

Status FileSystem::PunchLocked(uint64_t ino, uint64_t begin, uint64_t end, kv::WriteBatch* batch,
                               LiveDeltas* live) {
  CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(ino, begin, end));
  for (const auto& e : extents) {
    const uint64_t b = std::max(begin, e.file_offset);
    const uint64_t f = std::min(end, e.end());
    live->emplace_back(e.segment_id, -static_cast<int64_t>(f - b));
    batch->Delete(meta::ExtentKey(ino, e.file_offset));
    if (e.file_offset < begin) {  // keep the part before the hole
      meta::Extent left = e;
      left.length = static_cast<uint32_t>(begin - e.file_offset);
      batch->Put(meta::ExtentKey(ino, left.file_offset), meta::EncodeExtent(left));
    }
    if (e.end() > end) {  // and the part after it
      meta::Extent right = e;
      right.skip += static_cast<uint32_t>(end - e.file_offset);
      right.length = static_cast<uint32_t>(e.end() - end);
      right.file_offset = end;
      batch->Put(meta::ExtentKey(ino, right.file_offset), meta::EncodeExtent(right));
    }
  }
  return Status::Ok();
}

Status FileSystem::TruncateLocked(meta::Inode& inode, uint64_t size, kv::WriteBatch* batch,
                                  LiveDeltas* live) {
  if (size > kMaxFileSize) return Status(Code::kTooBig, "");
  if (inode.is_remote) {
    if (size == 0) {
      batch->Delete(meta::ObjectRefKey(inode.ino));
      inode.is_remote = false;
      tier_->DropObject(inode.ino);
    } else {
      CAIRN_RETURN_IF_ERROR(MaterializeLocked(inode, batch, live));
    }
  }
  if (size == 0) {
    // Back to an empty inline file: drop every extent.
    if (!inode.is_inline) CAIRN_RETURN_IF_ERROR(PunchLocked(inode.ino, 0, UINT64_MAX, batch, live));
    inode.is_inline = true;
    inode.inline_data.clear();
    inode.size = 0;
    return Status::Ok();
  }
  if (inode.is_inline) {
    if (size <= super_.inline_max) {
      inode.inline_data.resize(size, '\0');
      inode.size = size;
      return Status::Ok();
    }
    std::string head = std::move(inode.inline_data);
    inode.inline_data.clear();
    inode.is_inline = false;
    if (!head.empty()) {
      CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, 0, head.data(), head.size(), batch, live));
    }
    inode.size = size;  // the rest is a hole
    return Status::Ok();
  }
  if (size < inode.size)
    CAIRN_RETURN_IF_ERROR(PunchLocked(inode.ino, size, UINT64_MAX, batch, live));
  inode.size = size;
  return Status::Ok();
}

Status FileSystem::MaterializeLocked(meta::Inode& inode, kv::WriteBatch* batch, LiveDeltas* live) {
  CAIRN_ASSIGN_OR_RETURN(meta::ObjectRef ref, meta_->GetObjectRef(inode.ino));
  const tier::ObjectTarget target{inode.ino, ref, inode.size};
  std::vector<char> buf(data::kMaxBlob);
  for (uint64_t off = 0; off < inode.size; off += buf.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), inode.size - off));
    CAIRN_RETURN_IF_ERROR(tier_->ReadObject(target, off, n, buf.data()));
    CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, off, buf.data(), n, batch, live));
  }
  batch->Delete(meta::ObjectRefKey(inode.ino));
  inode.is_remote = false;
  // Committed on its own, before the change that follows: that change trims extents as the
  // metadata store holds them, so the copied extents must be there already.
  Accounting acc;
  acc.live = std::move(*live);
  live->clear();
  inode.stored = 0;
  for (auto [seg, delta] : acc.live) inode.stored += delta;
  Stage(acc, batch);
  batch->Put(meta::InodeKey(inode.ino), meta::EncodeInode(inode));
  CAIRN_RETURN_IF_ERROR(kv_->Write(*batch, false));
  Apply(acc);
  *batch = kv::WriteBatch();
  tier_->DropObject(inode.ino);
  return Status::Ok();
}

Status FileSystem::CommitData(InodeState& state, const meta::Inode& updated, kv::WriteBatch* batch,
                              const LiveDeltas& live) {
  meta::Inode inode = updated;
  int64_t stored = inode.stored == UINT64_MAX ? 0 : static_cast<int64_t>(inode.stored);
  for (auto [seg, delta] : live) stored += delta;
  inode.stored = static_cast<uint64_t>(std::max<int64_t>(0, stored));
  Accounting acc;
  acc.Add(&state.inode, &inode);
  acc.live = live;
  Stage(acc, batch);
  // In a cluster another node may have changed the record since this one read it: the batch
  // applies only if it did not (the caller runs again from the stored record otherwise).
  if (cluster_) batch->Expect(meta::InodeKey(inode.ino), meta::EncodeInode(state.inode));
  batch->Put(meta::InodeKey(inode.ino), meta::EncodeInode(inode));
  const int64_t before_commit = MonotonicNs();  // see InodeState::changed_at
  Status st = kv_->Write(*batch, false);
  if (st.code() == Code::kConflict) Reload(state);
  CAIRN_RETURN_IF_ERROR(st);
  Apply(acc);
  state.inode = std::move(inode);
  state.read_at = before_commit;
  return Status::Ok();
}

Status FileSystem::Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  if (IsSnapIno(ino)) return Status(Code::kReadOnly, "snapshots are read-only");
  if (length == 0) return Status(Code::kInvalid, "zero length");
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) return Status(Code::kTooBig, "");
  const bool punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE && !punch) {
    return Status(Code::kNotSupported, "fallocate mode");
  }
  return RunOp([&]() -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    std::unique_lock lock(state->lock);
    if (state->deleted) return Status(Code::kNotFound, "");
    if (!state->inode.IsReg()) return Status(Code::kInvalid, "not a regular file");
    meta::Inode copy = state->inode;
    kv::WriteBatch batch;
    LiveDeltas live;
    const uint64_t end = offset + length;
    if (punch) {
      if (copy.is_inline) {
        if (offset < copy.inline_data.size()) {
          uint64_t f = std::min<uint64_t>(end, copy.inline_data.size());
          std::memset(copy.inline_data.data() + offset, 0, f - offset);
        }
      } else {
        if (copy.is_remote) CAIRN_RETURN_IF_ERROR(MaterializeLocked(copy, &batch, &live));
        CAIRN_RETURN_IF_ERROR(PunchLocked(ino, offset, end, &batch, &live));
      }
    } else {
      // Reserve: the holes of the range get zero-filled extents, so their space is taken now (and
      // counted in st_blocks), as on a local file system. With KEEP_SIZE only inside the file: an
      // extent past the end of the file is not allowed.
      const uint64_t reserve_end = mode == 0 ? end : std::min(end, copy.size);
      // Room first, before anything changes: ENOSPC leaves the file as it was.
      if (offset < reserve_end && !(copy.is_inline && reserve_end <= super_.inline_max)) {
        uint64_t mapped = 0;
        if (copy.is_inline) {
          const uint64_t inline_end = std::min<uint64_t>(reserve_end, copy.inline_data.size());
          if (inline_end > offset) mapped = inline_end - offset;
        } else if (!copy.is_remote) {
          CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(ino, offset, reserve_end));
          for (const auto& e : extents) {
            mapped += std::min(reserve_end, e.end()) - std::max(offset, e.file_offset);
          }
        }
        const uint64_t need = reserve_end - offset - mapped;
        struct statvfs vfs;
        if (need > 0 && ::statvfs(data_dir_.c_str(), &vfs) == 0 &&
            static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < need) {
          return Status(Code::kNoSpace,
                        fmt::format("fallocate needs {} bytes on the data disk", need));
        }
      }
      if (mode == 0 && end > copy.size) {
        // The new size commits first: the reservation reads the extents as the store holds them.
        CAIRN_RETURN_IF_ERROR(TruncateLocked(copy, end, &batch, &live));
        copy.ctime = meta::Now();
        CAIRN_RETURN_IF_ERROR(CommitData(*state, copy, &batch, live));
        batch = kv::WriteBatch();
        live.clear();
        copy = state->inode;
      }
      if (offset < reserve_end) {
        CAIRN_RETURN_IF_ERROR(ReserveLocked(copy, offset, reserve_end, &batch, &live));
      }
      if (batch.empty()) return Status::Ok();
    }
    copy.ctime = meta::Now();
    if (punch) copy.mtime = copy.ctime;
    return CommitData(*state, copy, &batch, live);
  });
}

Status FileSystem::ReserveLocked(meta::Inode& inode, uint64_t begin, uint64_t end,
                                 kv::WriteBatch* batch, LiveDeltas* live) {
  if (inode.is_remote) CAIRN_RETURN_IF_ERROR(MaterializeLocked(inode, batch, live));
  uint64_t pos = begin;
  if (inode.is_inline) {
    // Inline bytes are stored in the record; reserving there is having the size (done).
    if (end <= super_.inline_max) return Status::Ok();
    // Past what a record holds: the bytes move to a segment, as with a write there.
    std::string head = std::move(inode.inline_data);
    inode.inline_data.clear();
    inode.is_inline = false;
    if (!head.empty()) {
      CAIRN_RETURN_IF_ERROR(AppendRange(inode.ino, 0, head.data(), head.size(), batch, live));
    }
    pos = std::max<uint64_t>(pos, head.size());  // mapped by this batch; the store has none
  }
  // The holes: ranges of [pos, end) that no extent maps.
  CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(inode.ino, pos, end));
  std::vector<std::pair<uint64_t, uint64_t>> holes;
  for (const auto& e : extents) {
    if (e.file_offset > pos) holes.emplace_back(pos, std::min(end, e.file_offset));
    pos = std::max(pos, e.end());
  }
  if (pos < end) holes.emplace_back(pos, end);
  uint64_t need = 0;
  for (auto [b, f] : holes) need += f - b;
  if (need == 0) return Status::Ok();
  struct statvfs vfs;
  if (::statvfs(data_dir_.c_str(), &vfs) == 0 &&
      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < need) {
    return Status(Code::kNoSpace, fmt::format("fallocate needs {} bytes on the data disk", need));
  }
  const std::string zeros(data::kMaxBlob, '\0');
  for (auto [b, f] : holes) {
    for (uint64_t at = b; at < f;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), f - at));
      CAIRN_ASSIGN_OR_RETURN(meta::Extent e, segments_->Append(inode.ino, at, zeros.data(), n));
      batch->Put(meta::ExtentKey(inode.ino, at), meta::EncodeExtent(e));
      live->emplace_back(e.segment_id, static_cast<int64_t>(n));
      at += n;
    }
  }
  return Status::Ok();
}

Result<size_t> FileSystem::CompactOnce(double live_threshold) {
  size_t done = 0;
  // Full segments seal in the background; wait, so that a compaction run sees them sealed.
  CAIRN_RETURN_IF_ERROR(segments_->WaitForSeals());
  // Cluster mode: every segment's live bytes as stored, in one scan, read before any snapshot is
  // asked about a segment (fs/snapshot_ops.cc says why that order makes removal safe).
  std::map<std::string, std::string> shared_live;
  if (cluster_) {
    CAIRN_RETURN_IF_ERROR(snapshots_->Refresh());
    CAIRN_ASSIGN_OR_RETURN(
        auto rows, kv::ScanRange(*kv_, meta::LivePrefix(), meta::PrefixEnd(meta::LivePrefix())));
    shared_live.insert(rows.begin(), rows.end());
  }
  for (const auto& seg : segments_->List()) {
    if (seg.state == meta::SegmentState::kOpen || segments_->IsActive(seg.id)) continue;
    // A write still has to commit the extent of a blob here (it would look like garbage); the
    // segment was sealed, so no new such blob comes: a later run takes it.
    if (segments_->HasUncommitted(seg.id)) continue;
    int64_t live = seg.live;
    if (cluster_) {
      // Other nodes' deletes subtract from the live bytes in the shared metadata, not in this
      // node's memory: read them there. Moving blobs is not done in a cluster (its commit would
      // need the expectations of a write); a segment that nothing maps is removed.
      auto value = shared_live.find(meta::LiveKey(seg.id));
      live = 0;
      if (value != shared_live.end()) {
        CAIRN_ASSIGN_OR_RETURN(live, kv::DecodeCounter(value->second));
      }
    }
    // Only in the object store (evicted) or in a cluster: dropped once nothing maps it, never
    // downloaded or moved to compact.
    const bool remove_only = cluster_ || seg.state == meta::SegmentState::kEvicted;
    if (remove_only && live > 0) continue;
    if (!remove_only) {
      if (seg.size <= data::kSegmentHeaderSize) continue;
      const double live_fraction = static_cast<double>(std::max<int64_t>(0, live)) /
                                   static_cast<double>(seg.size - data::kSegmentHeaderSize);
      if (live_fraction >= live_threshold) continue;
    }
    CAIRN_ASSIGN_OR_RETURN(bool pinned, snapshots_->Pinned(seg.id));
    if (pinned) continue;  // a snapshot shows its bytes where they are
    CAIRN_RETURN_IF_ERROR(remove_only ? RemoveSegment(seg.id) : CompactSegment(seg.id));
    ++done;
  }
  return done;
}

Status FileSystem::MoveBlob(uint64_t segment_id, const data::RecordHeader& header,
                            uint64_t blob_offset, uint64_t* moved) {
  auto state = cache_->Get(header.ino);
  if (!state) return state.error().code() == Code::kNotFound ? Status::Ok() : state.error();
  Status st;
  {
    std::unique_lock lock((*state)->lock);
    if (!(*state)->deleted) st = MoveBlobLocked(segment_id, header, blob_offset, moved);
  }
  cache_->TryEvict(header.ino, &*state);
  return st;
}

Status FileSystem::MoveBlobLocked(uint64_t segment_id, const data::RecordHeader& header,
                                  uint64_t blob_offset, uint64_t* moved) {
  CAIRN_ASSIGN_OR_RETURN(auto extents, meta_->GetExtents(header.ino, header.file_offset,
                                                         header.file_offset + header.length));
  std::vector<meta::Extent> refs;
  for (auto& e : extents) {
    if (e.segment_id == segment_id && e.blob_offset == blob_offset) refs.push_back(e);
  }
  if (refs.empty()) return Status::Ok();  // garbage: nothing maps these bytes any more
  // Verify before copying: compaction must never launder corrupt bytes into a fresh checksum.
  meta::Extent whole = refs.front();
  whole.skip = 0;
  whole.length = whole.blob_length;
  std::string blob(whole.blob_length, '\0');
  CAIRN_RETURN_IF_ERROR(segments_->Read(whole, 0, whole.length, blob.data()));
  CAIRN_ASSIGN_OR_RETURN(meta::Extent fresh, segments_->Append(header.ino, header.file_offset,
                                                               blob.data(), blob.size()));
  kv::WriteBatch batch;
  Accounting acc;
  for (auto e : refs) {
    acc.live.emplace_back(segment_id, -static_cast<int64_t>(e.length));
    acc.live.emplace_back(fresh.segment_id, e.length);
    e.segment_id = fresh.segment_id;
    e.blob_offset = fresh.blob_offset;
    batch.Put(meta::ExtentKey(header.ino, e.file_offset), meta::EncodeExtent(e));
  }
  Stage(acc, &batch);
  {
    // The record stays as it is: the cached extents must go by hand.
    auto state = cache_->Peek(header.ino);
    if (state) {
      std::lock_guard lock(state->extents_mu);
      state->extents.reset();
    }
  }
  CAIRN_RETURN_IF_ERROR(kv_->Write(batch, false));
  Apply(acc);
  *moved += blob.size();
  return Status::Ok();
}

Status FileSystem::CompactSegment(uint64_t segment_id) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<data::SegmentFile> file, segments_->GetFile(segment_id));
  CAIRN_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  std::string buf(data::kRecordHeaderSize, '\0');
  uint64_t pos = data::kSegmentHeaderSize;
  uint64_t moved = 0;
  while (pos + data::kRecordHeaderSize <= file_size) {
    CAIRN_ASSIGN_OR_RETURN(size_t got, file->ReadAt(pos, buf.data(), buf.size()));
    if (got != buf.size()) break;
    auto header = data::DecodeRecordHeader(buf);
    if (!header) break;  // a torn tail left by a crash: nothing after it was ever referenced
    const uint64_t blob_offset = pos + data::kRecordHeaderSize;
    pos = blob_offset + header->length;
    if (pos > file_size) break;

    Status st = MoveBlob(segment_id, *header, blob_offset, &moved);
    if (!st.ok()) return st;
  }
  // The copies must be durable before the only other copy goes.
  CAIRN_RETURN_IF_ERROR(segments_->SyncActive());
  for (const auto& seg : segments_->List()) {
    if (seg.id == segment_id && seg.live > 0) {
      // A damaged record header hid live blobs behind it: keep the segment, let fsck report it.
      return Status(
          Code::kCorruption,
          fmt::format("segment {} still has {} live bytes after compaction", segment_id, seg.live));
    }
  }
  CAIRN_RETURN_IF_ERROR(kv_->SyncWal());
  CAIRN_RETURN_IF_ERROR(RemoveSegment(segment_id));
  compacted_++;
  log::Info("compacted segment {}: moved {} bytes", segment_id, moved);
  return Status::Ok();
}

}  // namespace cairn::fs
