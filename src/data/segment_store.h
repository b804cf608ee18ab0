// SegmentStore: the append-only segment files that hold all file data on NVMe.
//
// Every blob of file data is appended to an open segment (64 MiB by default), shared by all
// files, so small files pack together. There is one open segment per writer lane: one lane on a
// single node (its appends are page-cache copies), several on a cluster, where an append is a
// replicated RADOS write and the OSD applies the writes to one object one after the other; a
// file's blobs go to lane ino % lanes, so concurrent writers of different files write to
// different objects in parallel. A segment is open while appended to, then sealed
// (fdatasync'd, immutable). Each blob is preceded by a record header (ino, file offset, length) so
// that compaction and fsck can walk a segment without the metadata. Formats: docs/FORMATS.md.
//
// Live bytes per segment (bytes that some extent still maps) are counted in memory; the file
// system recomputes them from the extent map at mount and keeps them current as extents change.
//
// Thread-safety: all methods are thread-safe. Append serializes on one mutex; Read runs in
// parallel.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/file.h"
#include "common/thread_pool.h"
#include "data/segment_file.h"
#include "kv/kv_store.h"
#include "meta/meta_store.h"
#include "meta/schema.h"

namespace cairn::data {

constexpr uint64_t kSegmentHeaderSize = 64;
constexpr uint64_t kRecordHeaderSize = 32;
constexpr uint32_t kRecordMagic = 0x43455243;  // "CREC"
constexpr char kSegmentMagic[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'E', 'G'};
constexpr uint32_t kSegmentVersion = 1;
// The largest blob one Append takes; callers split larger writes.
constexpr uint32_t kMaxBlob = 1 << 20;

struct SegmentStoreOptions {
  uint64_t segment_size = 64ull << 20;
  bool read_only = false;  // fsck: never append, never rewrite segment records
  // Where segment bytes live (null: LocalSegments in the data directory).
  std::shared_ptr<SegmentBackend> backend;
  // Cluster mode: this node's number. The store manages (seals after a crash, tiers, compacts)
  // only the segments it created; other nodes' segments it opens on first read, read-only.
  uint32_t node = 0;
  // Open segments appended to at once (writer lanes), at least 1.
  unsigned lanes = 1;
};

// A blob's record header as found in a segment file.
struct RecordHeader {
  uint32_t length = 0;
  uint64_t ino = 0;
  uint64_t file_offset = 0;
};
std::string EncodeRecordHeader(const RecordHeader& h);
// kCorruption when the bytes are not a valid header (torn tail, garbage, corruption).
Result<RecordHeader> DecodeRecordHeader(std::string_view bytes);
std::string EncodeSegmentHeader(uint64_t segment_id);
Status CheckSegmentHeader(std::string_view bytes, uint64_t segment_id);

struct SegmentInfo {
  uint64_t id = 0;
  meta::SegmentState state = meta::SegmentState::kOpen;
  uint64_t size = 0;        // bytes in the file
  int64_t live = 0;         // bytes mapped by extents
  int64_t last_read = 0;    // steady-clock seconds of the last read (0: never read)
  int64_t state_since = 0;  // steady-clock seconds when it entered its state (this process)
  std::string origin;       // see meta::SegmentRecord
};

// The object tier as the segment store sees it (implemented by tier::TierEngine): it serves
// reads of evicted segments and learns about segments that go away.
class RemoteSegments {
 public:
  virtual ~RemoteSegments() = default;
  // Reads exactly n bytes at offset of the object of segment id (bounded by the remote-read
  // timeout; kUnavailable when it passes).
  virtual Status ReadRemote(uint64_t segment_id, uint64_t offset, size_t n, char* out) = 0;
  // A read needed segment id from the object store (a hint to hydrate it).
  virtual void OnRemoteRead(uint64_t segment_id) = 0;
  // Segment id left the file system (compaction). delete_object: its object is this file
  // system's and nothing else needs it (false for another file system's segment, or one that a
  // pushed snapshot references).
  virtual void OnRemoved(uint64_t segment_id, bool delete_object) = 0;
};

// Steady-clock seconds, the time base of SegmentInfo.
int64_t NowSeconds();

// Reads segment bytes [offset, offset + len) into buf; returns how many it read (short: the
// segment ends there).
using SegmentReader = std::function<Result<size_t>(uint64_t offset, char* buf, size_t len)>;
// The checked read of an extent, shared by SegmentStore::Read and the native client: n bytes
// from byte `from` of e's window into out. It reads the whole chunks around them through
// read_at (straight into out when they are whole chunks) and checks each against its CRC32C:
// kCorruption, never data, on a mismatch or a short segment.
Status ReadExtentChecked(const meta::Extent& e, uint32_t from, uint32_t n, char* out,
                         const SegmentReader& read_at);

class SegmentStore {
 public:
  // Opens the segments listed in the metadata; segments left open by a crash are sealed at
  // their current file size. Appends always go to a new segment.
  static Result<std::unique_ptr<SegmentStore>> Open(const std::string& data_dir, kv::KvStore* kv,
                                                    const SegmentStoreOptions& options);
  ~SegmentStore();

  // Appends one blob (n <= kMaxBlob) of file ino at file_offset. The returned extent maps the
  // whole blob (skip 0, length n). The data is in the OS page cache when this returns; it is
  // durable after SyncActive().
  // With uncommitted set, the segment counts the blob as not yet mapped by a committed extent
  // until Committed(e.segment_id): HasUncommitted then keeps compaction from taking it for
  // garbage. The count rises only while the segment is open, so once it is sealed and reads 0
  // it stays 0.
  Result<meta::Extent> Append(uint64_t ino, uint64_t file_offset, const char* data, size_t n,
                              bool uncommitted = false);
  void Committed(uint64_t segment_id);
  bool HasUncommitted(uint64_t segment_id) const;
  // Reads n bytes starting at byte `from` of the extent's window into out, verifying the checksum
  // of every chunk touched. kCorruption (never data) when a checksum fails.
  Status Read(const meta::Extent& e, uint32_t from, uint32_t n, char* out) const;
  // Makes everything appended so far durable: the open segment and any full one whose seal is
  // still in progress.
  Status SyncActive();
  // Waits until the segments that filled up are sealed (their seals run in the background, so
  // that the writer who fills a segment does not stall every other writer for its fdatasync).
  Status WaitForSeals();
  // Seals the open segment and waits for the background seals (clean shutdown).
  Status Close();

  void AddLive(uint64_t segment_id, int64_t delta);
  std::vector<SegmentInfo> List() const;
  // Whether segment id is open for appends now.
  bool IsActive(uint64_t segment_id) const;

  // Tiering (see tier/tier_engine.h). The remote must outlive the store; set before use.
  void SetRemote(RemoteSegments* remote) { remote_ = remote; }
  // Seals each open segment that has data and was opened at least `age` seconds ago, so that a
  // small or idle segment still reaches the object store. Returns whether it sealed one.
  Result<bool> SealIfOlderThan(int64_t age_seconds);
  // sealed -> uploaded, once the object holds the segment's bytes.
  Status MarkUploaded(uint64_t segment_id);
  // uploaded -> evicted: records the state durably, then deletes the local file (reads in flight
  // keep their descriptor). Returns the bytes freed (0 when the segment is not uploaded).
  Result<uint64_t> Evict(uint64_t segment_id);
  // evicted -> uploaded: installs a downloaded copy (path on the same file system) after checking
  // its header and size.
  Status InstallHydrated(uint64_t segment_id, const std::string& path);
  // Where a download of segment id is staged before InstallHydrated.
  std::string HydratePath(uint64_t segment_id) const;
  // Bytes of segment files on NVMe.
  uint64_t LocalBytes() const { return local_bytes_.load(std::memory_order_relaxed); }
  // The size recorded for a segment (0 when unknown).
  uint64_t SegmentSize(uint64_t segment_id) const;
  // Whether the segment exists and is not evicted (its bytes are on NVMe).
  bool IsLocal(uint64_t segment_id) const;
  // The file system whose object-store prefix holds the segment ("" for this one).
  std::string Origin(uint64_t segment_id) const;
  // Records (durably) whether a pushed snapshot references each segment. kBusy for an open one.
  Status SetPushed(const std::vector<uint64_t>& segment_ids, bool pushed);

  // Compaction support: the file of a sealed segment, and its removal once nothing maps it.
  Result<std::shared_ptr<SegmentFile>> GetFile(uint64_t segment_id) const;
  // Whether segment files are local files (tiering, hydration and pushes need them).
  bool local() const { return backend_->local(); }
  Status Remove(uint64_t segment_id);
  static std::string SegmentPath(const std::string& data_dir, uint64_t id);

 private:
  struct Segment {
    std::shared_ptr<SegmentFile> file;  // null when evicted (or lost)
    meta::SegmentState state;
    std::atomic<int64_t> last_read{0};
    int64_t state_since = 0;  // GUARDED_BY(map_mu_)
    int64_t opened = 0;
    std::atomic<uint64_t> size{0};  // bytes reserved by appends (written once inflight is 0)
    std::atomic<int64_t> live{0};
    std::atomic<int> inflight{0};     // appends that reserved space but have not written it yet
    std::atomic<int> uncommitted{0};  // blobs whose extents are not committed yet (Append)
    std::string origin;               // fixed when the segment is loaded
    std::atomic<bool> pushed{false};
  };
  SegmentStore(std::string data_dir, kv::KvStore* kv, SegmentStoreOptions options);
  Status RollLocked(size_t lane);  // REQUIRES: append_mu_ held
  Status SealLocked(size_t lane);  // REQUIRES: append_mu_ held
  // Waits for the appends in flight, fdatasyncs and records the segment sealed.
  Status Seal(const std::shared_ptr<Segment>& seg, uint64_t id);
  // The background half of a roll: Seal, then drop the segment from sealing_.
  void FinishSeal(std::shared_ptr<Segment> seg, uint64_t id);
  Status PutRecord(const Segment& seg, uint64_t id, meta::SegmentState state, uint64_t size,
                   bool sync);

  // Where a segment's bytes are: its file, or (evicted) the object store. Neither when unknown.
  struct Source {
    std::shared_ptr<SegmentFile> file;
    bool evicted = false;
    std::string origin;  // see meta::SegmentRecord
  };
  // This node's segment, or another node's (ForeignSource). refresh: look again (the object
  // went away under a read).
  Source Locate(uint64_t segment_id, bool refresh) const;
  // Another node's segment (cluster mode): its record and object, looked up on first read.
  Source ForeignSource(uint64_t segment_id, bool refresh) const;

  const std::string dir_;
  kv::KvStore* const kv_;
  const SegmentStoreOptions options_;
  std::shared_ptr<SegmentBackend> backend_;
  mutable std::mutex foreign_mu_;
  mutable std::map<uint64_t, Source> foreign_;  // GUARDED_BY(foreign_mu_)
  meta::IdAllocator ids_;

  mutable std::shared_mutex map_mu_;
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;  // GUARDED_BY(map_mu_)

  std::mutex append_mu_;
  struct Lane {
    std::shared_ptr<Segment> seg;  // the open segment, or null
    uint64_t id = 0;
  };
  std::vector<Lane> lanes_;  // GUARDED_BY(append_mu_)
  // Full segments whose seal runs on sealer_, by id (still kOpen until it is done). An entry
  // whose seal failed stays, with the error, so that SyncActive retries and reports it.
  struct Sealing {
    std::shared_ptr<Segment> seg;
    std::optional<Status> failed;
  };
  std::map<uint64_t, Sealing> sealing_;  // GUARDED_BY(append_mu_)
  std::condition_variable seals_cv_;     // with append_mu_
  bool closed_ = false;  // GUARDED_BY(append_mu_): sealer_ stopped; rolls seal in place
  std::mutex sync_mu_;
  std::mutex record_mu_;  // serializes writes of segment records
  std::atomic<uint64_t> local_bytes_{0};
  RemoteSegments* remote_ = nullptr;
  // Last, so that it stops (finishing queued seals) before the members those seals use go.
  std::unique_ptr<ThreadPool> sealer_ = std::make_unique<ThreadPool>(1);
};

}  // namespace cairn::data
