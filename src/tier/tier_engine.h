// TierEngine: moves segments between NVMe and the object store, and caches imported objects.
//
// Segment life: open -> sealed -> uploaded -> evicted (-> uploaded again when hydrated).
//  - The open segment seals once it has data and is seal_timeout old (SegmentStore seals it at
//    segment_size anyway). A sealed segment uploads tiering_delay after sealing, at once when
//    NVMe is above the high watermark, or on Flush. The object key is "<uuid>/segments/<id>.seg".
//  - Above the high watermark, uploaded segments and cached imported objects are evicted, least
//    recently read first, down to the low watermark; with a retention period, those unread for
//    that long go too.
//  - A read of an evicted segment fetches the chunks it needs at once (SegmentStore verifies
//    their checksums), then the segment and the next prefetch_segments ones hydrate in the
//    background: files written together (a directory, a large file) are read ahead.
//  - Writes wait (WaitForSpace) while NVMe is full, until uploads and evictions make room.
//  - Cluster mode (segments in a RADOS pool, SegmentStore::local() false): uploads read the
//    segment from the pool, evictions delete its object there, and "NVMe" is this node's share
//    of the pool (capacity_source). Evicted segments are read from the object store with ranged
//    GETs on every node; they do not hydrate back into the pool.
// Imported files (meta::ObjectRef) read ranges of their object with If-Match on the ETag; an
// object is cached whole on NVMe (DATA_DIR/objcache, with CRC32C per 64 KiB chunk, docs/FORMATS.md)
// and evicted like a segment.
//
// Ownership: the engine does not own the SegmentStore; both live in FileSystem, which stops the
// engine before closing the store. Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/thread_pool.h"
#include "data/segment_store.h"
#include "meta/schema.h"
#include "tier/object_cache_file.h"
#include "tier/object_store.h"

namespace cairn::tier {

struct TierOptions {
  std::string data_dir;
  std::string uuid;       // the file system's; prefixes its objects
  uint64_t capacity = 0;  // bytes of NVMe for segments and cached objects
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  double tiering_delay_s = 10;
  double seal_timeout_s = 5;  // 0: seal only when full
  double retention_s = 0;     // 0: evict only for space
  bool upload = true;         // false: segments stay where they are (a cluster without a shared
                              // object store)
  // Cluster mode: the node's share of the pool, asked again every capacity_refresh_s (an error
  // keeps the last figure). Replaces capacity once it answers.
  std::function<Result<uint64_t>()> capacity_source;
  double capacity_refresh_s = 30;
  std::chrono::milliseconds remote_timeout{30000};
  int upload_parallel = 4;
  int hydrate_parallel = 4;
  int prefetch_segments = 1;
};

struct TierStatus {
  struct Total {
    uint64_t segments = 0;
    uint64_t bytes = 0;
  };
  Total open, sealed, uploaded, evicted;
  uint64_t cached_objects = 0, cached_object_bytes = 0;
  uint64_t nvme_used = 0, nvme_capacity = 0;
  size_t upload_queue = 0, download_queue = 0;
  double upload_rate = 0, download_rate = 0;          // bytes/s over the last few seconds
  uint64_t uploaded_bytes = 0, downloaded_bytes = 0;  // since mount
  uint64_t upload_failures = 0;
  bool waiting_for_space = false;
  std::string object_store;
};

// One imported file to warm or release.
struct ObjectTarget {
  uint64_t ino = 0;
  meta::ObjectRef ref;
  uint64_t size = 0;
};

class TierEngine final : public data::RemoteSegments {
 public:
  // store: the file system's own object store (already metered).
  TierEngine(TierOptions options, std::unique_ptr<ObjectStore> store, data::SegmentStore* segments);
  ~TierEngine() override;

  Status Start();
  // Stops the background work; uploads in flight end (they resume at the next mount).
  void Stop();

  static std::string SegmentKey(const std::string& uuid, uint64_t segment_id);
  // The object key of a segment of this file system (under its origin's prefix when it came
  // with a restored snapshot).
  std::string KeyOf(uint64_t segment_id) const;
  ObjectStore& store() { return *store_; }

  // data::RemoteSegments
  Status ReadRemote(uint64_t segment_id, uint64_t offset, size_t n, char* out) override;
  void OnRemoteRead(uint64_t segment_id) override;
  void OnRemoved(uint64_t segment_id, bool delete_object) override;

  // Blocks while NVMe is full of data not yet uploaded (backpressure on writes).
  void WaitForSpace();

  // Imports: the URL of each import, so that its objects can be read.
  void AddImport(uint64_t import_id, const std::string& url);
  Result<std::shared_ptr<ObjectStore>> ImportStore(uint64_t import_id);
  // Reads bytes [offset, offset + n) of an imported file (n within size).
  Status ReadObject(const ObjectTarget& target, uint64_t offset, size_t n, char* out);
  bool ObjectCached(uint64_t ino, const std::string& etag);
  // Drops the cached copy of an imported file (deleted, refreshed or copied into segments).
  void DropObject(uint64_t ino);

  // cairn tier fetch: hydrates the segments and objects; progress(done_bytes, total_bytes).
  // Returns the bytes that could not be fetched (no room) or an error.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;
  Result<uint64_t> Fetch(const std::set<uint64_t>& segment_ids,
                         const std::vector<ObjectTarget>& objects, const Progress& progress);
  // cairn tier release: evicts what is uploaded; returns {bytes freed, bytes kept (not uploaded)}.
  std::pair<uint64_t, uint64_t> Release(const std::set<uint64_t>& segment_ids,
                                        const std::vector<uint64_t>& object_inos);
  // Seals the open segment and uploads every sealed one now; returns once all are uploaded or
  // the deadline passes (kUnavailable).
  Status Flush(std::chrono::milliseconds deadline);
  // Starts the upload of those of the segments that are sealed, now (retrying failed ones at
  // once), without waiting.
  void UploadNow(const std::set<uint64_t>& segment_ids);

  TierStatus GetStatus();
  bool IsLocal(uint64_t segment_id);

 private:
  struct CachedObject {
    uint64_t size = 0;
    std::string etag;
    uint64_t file_bytes = 0;
    int64_t last_read = 0;
  };

  void MainLoop();
  void Tick(bool flush);
  void StartUpload(uint64_t segment_id, uint64_t size);
  // Cluster mode: reads the sealed segment from the pool and puts it as one object.
  Status UploadFromPool(uint64_t segment_id, const std::string& key, uint64_t size,
                        const CallOptions& call);
  // Evicts least recently read segments and objects until local bytes <= target.
  void EvictDownTo(uint64_t target, const std::set<uint64_t>& keep);
  void Hydrate(uint64_t segment_id);
  Status HydrateObject(const ObjectTarget& target);
  Status RetryRemote(const std::function<Status(const CallOptions&)>& call);
  // Serves a remote read from the segment's download in progress when it has (or is about to
  // have) the bytes: one stream instead of a ranged GET per read.
  bool ReadFromDownload(uint64_t segment_id, uint64_t offset, size_t n, char* out);
  uint64_t LocalBytes() const;
  std::string ObjectCachePath(uint64_t ino) const {
    return ObjectCacheFile::Path(options_.data_dir, ino);
  }
  void LoadObjectCache();
  Status ReadCachedObject(uint64_t ino, uint64_t offset, size_t n, char* out);
  // Writes DATA_DIR/objcache/<ino>.obj from fill(offset, n, out), which supplies the object in
  // pieces, then publishes it by rename.
  Status CacheObject(uint64_t ino, const std::string& etag, uint64_t size,
                     const std::function<Status(uint64_t, size_t, char*)>& fill);

  const TierOptions options_;
  std::atomic<uint64_t> capacity_;  // options_.capacity, or the last capacity_source answer
  std::chrono::steady_clock::time_point capacity_at_{};
  std::unique_ptr<ObjectStore> store_;
  data::SegmentStore* const segments_;

  std::mutex mu_;
  std::condition_variable cv_;                   // wakes the main loop
  std::condition_variable space_cv_;             // wakes writers waiting for space
  bool stopping_ = false;                        // GUARDED_BY(mu_)
  bool kick_ = false;                            // GUARDED_BY(mu_)
  std::set<uint64_t> uploading_;                 // GUARDED_BY(mu_)
  std::set<uint64_t> hydrating_;                 // GUARDED_BY(mu_)
  std::map<uint64_t, int64_t> upload_retry_at_;  // GUARDED_BY(mu_): segment -> seconds
  std::atomic<bool> waiting_for_space_{false};
  std::thread main_;
  std::unique_ptr<ThreadPool> uploads_;
  std::unique_ptr<ThreadPool> downloads_;

  std::mutex imports_mu_;
  std::map<uint64_t, std::string> import_urls_;                     // GUARDED_BY(imports_mu_)
  std::map<uint64_t, std::shared_ptr<ObjectStore>> import_stores_;  // GUARDED_BY(imports_mu_)

  std::mutex objects_mu_;
  std::unordered_map<uint64_t, CachedObject> objects_;  // GUARDED_BY(objects_mu_)
  std::atomic<uint64_t> object_bytes_{0};

  std::atomic<uint64_t> uploaded_bytes_{0}, downloaded_bytes_{0}, upload_failures_{0};
  metrics::Counter& read_from_download_;
  std::mutex rate_mu_;
  double upload_rate_ = 0, download_rate_ = 0;  // GUARDED_BY(rate_mu_)
  uint64_t last_up_ = 0, last_down_ = 0;        // GUARDED_BY(rate_mu_)
  std::chrono::steady_clock::time_point last_rate_at_;
};

}  // namespace cairn::tier
