#include "tier/tier_engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/checksum.h"
#include "common/coding.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "tier/metered_object_store.h"

namespace cairn::tier {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kObjHeaderSize = ObjectCacheFile::kHeaderSize;
// Imported objects up to this size are fetched whole on first read; larger ones by range, then
// hydrated in the background.
constexpr uint64_t kWholeObjectFetch = 8ull << 20;

int64_t Now() { return data::NowSeconds(); }

std::chrono::milliseconds Backoff(int attempt) {
  thread_local std::mt19937 rng(std::random_device{}());
  const int64_t cap = std::min<int64_t>(2000, 100ll << std::min(attempt, 5));
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng));
}

uint64_t Chunks(uint64_t size) { return (size + meta::kChunkSize - 1) / meta::kChunkSize; }

}  // namespace

std::string TierEngine::SegmentKey(const std::string& uuid, uint64_t segment_id) {
  return fmt::format("{}/segments/{:016x}.seg", uuid, segment_id);
}

TierEngine::TierEngine(TierOptions options, std::unique_ptr<ObjectStore> store,
                       data::SegmentStore* segments)
    : options_(std::move(options)),
      capacity_(options_.capacity),
      store_(std::move(store)),
      segments_(segments),
      read_from_download_(metrics::GetCounter("cairn_tier_bytes_read_from_downloads_total")) {}

TierEngine::~TierEngine() { Stop(); }

Status TierEngine::Start() {
  std::string cache_dir = options_.data_dir + "/objcache";
  if (::mkdir(cache_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + cache_dir);
  }
  LoadObjectCache();
  last_rate_at_ = Clock::now();
  uploads_ = std::make_unique<ThreadPool>(options_.upload_parallel);
  downloads_ = std::make_unique<ThreadPool>(options_.hydrate_parallel);
  main_ = std::thread([this] { MainLoop(); });
  return Status::Ok();
}

void TierEngine::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !main_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  space_cv_.notify_all();
  if (main_.joinable()) main_.join();
  if (uploads_) uploads_->Stop();
  if (downloads_) downloads_->Stop();
}

uint64_t TierEngine::LocalBytes() const {
  return segments_->LocalBytes() + object_bytes_.load(std::memory_order_relaxed);
}

void TierEngine::MainLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_ || kick_; });
    if (stopping_) break;
    kick_ = false;
    lock.unlock();
    Tick(false);
    lock.lock();
  }
}

void TierEngine::Tick(bool flush) {
  const int64_t now = Now();
  if (options_.capacity_source &&
      Clock::now() - capacity_at_ >= std::chrono::duration<double>(options_.capacity_refresh_s)) {
    capacity_at_ = Clock::now();
    auto cap = options_.capacity_source();
    if (cap && *cap > 0) {
      capacity_ = *cap;
    } else if (!cap) {
      log::Warn("pool capacity: {} (keeping {} bytes)", cap.error().ToString(), capacity_.load());
    }
  }
  if (flush || options_.seal_timeout_s > 0) {  // 0: seal only when full
    auto sealed =
        segments_->SealIfOlderThan(flush ? 0 : static_cast<int64_t>(options_.seal_timeout_s));
    if (!sealed) log::Warn("sealing the open segment: {}", sealed.error().ToString());
  }
  const uint64_t high = static_cast<uint64_t>(capacity_.load() * options_.high_watermark);
  const uint64_t low = static_cast<uint64_t>(capacity_.load() * options_.low_watermark);
  const bool pressure = LocalBytes() >= high;
  std::vector<data::SegmentInfo> retention_victims;
  for (const auto& seg : segments_->List()) {
    if (!options_.upload || segments_->IsActive(seg.id)) continue;
    if (seg.state == meta::SegmentState::kSealed) {
      const bool due = flush || pressure || now - seg.state_since >= options_.tiering_delay_s;
      if (due) StartUpload(seg.id, seg.size);
    } else if (seg.state == meta::SegmentState::kUploaded && options_.retention_s > 0 &&
               now - std::max(seg.last_read, seg.state_since) >= options_.retention_s) {
      retention_victims.push_back(seg);
    }
  }
  for (const auto& seg : retention_victims) {
    auto freed = segments_->Evict(seg.id);
    if (!freed) log::Warn("evicting segment {}: {}", seg.id, freed.error().ToString());
  }
  if (options_.upload && LocalBytes() > high) EvictDownTo(low, {});
  {
    std::lock_guard lock(rate_mu_);
    const double dt = std::chrono::duration<double>(Clock::now() - last_rate_at_).count();
    if (dt >= 2.0) {
      const uint64_t up = uploaded_bytes_.load(), down = downloaded_bytes_.load();
      upload_rate_ = static_cast<double>(up - last_up_) / dt;
      download_rate_ = static_cast<double>(down - last_down_) / dt;
      last_up_ = up;
      last_down_ = down;
      last_rate_at_ = Clock::now();
    }
  }
  if (LocalBytes() < capacity_.load()) space_cv_.notify_all();
}

void TierEngine::StartUpload(uint64_t segment_id, uint64_t size) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || uploading_.count(segment_id)) return;
    auto retry = upload_retry_at_.find(segment_id);
    if (retry != upload_retry_at_.end() && Now() < retry->second) return;
    uploading_.insert(segment_id);
  }
  uploads_->Submit([this, segment_id, size] {
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        uploading_.erase(segment_id);
        return;
      }
    }
    const std::string key = SegmentKey(options_.uuid, segment_id);
    CallOptions call;
    call.deadline = std::chrono::milliseconds(600000);
    Status st =
        segments_->local()
            ? store_->PutFile(key, data::SegmentStore::SegmentPath(options_.data_dir, segment_id),
                              0, size, call)
            : UploadFromPool(segment_id, key, size, call);
    if (st.ok()) {
      st = segments_->MarkUploaded(segment_id);
      if (st.code() == Code::kNotFound) {
        // Compacted away while uploading: the object is garbage.
        (void)store_->Delete(key);
        st = Status::Ok();
      } else if (st.ok()) {
        uploaded_bytes_ += size;
      }
    }
    std::lock_guard lock(mu_);
    uploading_.erase(segment_id);
    if (st.ok()) {
      upload_retry_at_.erase(segment_id);
      kick_ = true;
      cv_.notify_all();
    } else {
      ++upload_failures_;
      // Retried by the main loop after a pause; the data stays on NVMe meanwhile.
      int attempt = static_cast<int>(std::min<uint64_t>(upload_failures_.load(), 5));
      upload_retry_at_[segment_id] = Now() + (1 << attempt);
      log::Warn("upload of segment {} failed (retrying): {}", segment_id, st.ToString());
    }
  });
}

Status TierEngine::UploadFromPool(uint64_t segment_id, const std::string& key, uint64_t size,
                                  const CallOptions& call) {
  // The whole sealed segment in memory (segment_size, 64 MiB by default, per upload worker).
  CAIRN_ASSIGN_OR_RETURN(auto file, segments_->GetFile(segment_id));
  std::string data(size, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t got, file->ReadAt(0, data.data(), size));
  if (got != size) {
    return Status(Code::kCorruption,
                  fmt::format("segment {} holds {} bytes, expected {}", segment_id, got, size));
  }
  CAIRN_RETURN_IF_ERROR(data::CheckSegmentHeader(
      std::string_view(data).substr(0, std::min<uint64_t>(size, data::kSegmentHeaderSize)),
      segment_id));
  return store_->Put(key, data, call);
}

void TierEngine::EvictDownTo(uint64_t target, const std::set<uint64_t>& keep) {
  // Candidates: uploaded segments and cached objects, least recently used first.
  struct Victim {
    int64_t used;
    bool object;
    uint64_t id;
  };
  std::vector<Victim> victims;
  for (const auto& seg : segments_->List()) {
    if (seg.state != meta::SegmentState::kUploaded || keep.count(seg.id)) continue;
    victims.push_back({std::max(seg.last_read, seg.state_since), false, seg.id});
  }
  {
    std::lock_guard lock(objects_mu_);
    for (const auto& [ino, obj] : objects_) victims.push_back({obj.last_read, true, ino});
  }
  std::sort(victims.begin(), victims.end(),
            [](const Victim& a, const Victim& b) { return a.used < b.used; });
  for (const auto& v : victims) {
    if (LocalBytes() <= target) break;
    if (v.object) {
      DropObject(v.id);
      continue;
    }
    auto freed = segments_->Evict(v.id);
    if (!freed) log::Warn("evicting segment {}: {}", v.id, freed.error().ToString());
  }
}

void TierEngine::WaitForSpace() {
  if (!options_.upload || LocalBytes() < capacity_.load()) return;
  std::unique_lock lock(mu_);
  auto since = Clock::now();
  while (!stopping_ && LocalBytes() >= capacity_.load()) {
    waiting_for_space_ = true;
    kick_ = true;
    cv_.notify_all();
    space_cv_.wait_for(lock, std::chrono::milliseconds(200));
    if (Clock::now() - since > std::chrono::seconds(30)) {
      log::Warn("writes are waiting: NVMe holds {} of {} bytes and uploads have not caught up",
                LocalBytes(), capacity_.load());
      since = Clock::now();
    }
  }
  waiting_for_space_ = false;
}

Status TierEngine::RetryRemote(const std::function<Status(const CallOptions&)>& call) {
  const auto deadline = Clock::now() + options_.remote_timeout;
  Status st;
  for (int attempt = 0;; ++attempt) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    CallOptions o;
    o.deadline = left;
    st = call(o);
    if (st.code() != Code::kUnavailable) return st;
    std::this_thread::sleep_for(
        std::min(Backoff(attempt),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())));
  }
  return Status(Code::kUnavailable,
                fmt::format("object store did not answer within {} s: {}",
                            options_.remote_timeout.count() / 1000.0, st.message()));
}

bool TierEngine::ReadFromDownload(uint64_t segment_id, uint64_t offset, size_t n, char* out) {
  {
    std::lock_guard lock(mu_);
    if (!hydrating_.count(segment_id)) return false;
  }
  // The download writes the object front to back; bytes below its current size are in place.
  // (A retried download starts over; a short or stale read then fails the caller's checksum
  // check or falls back to a ranged GET.)
  auto f = File::Open(segments_->HydratePath(segment_id), O_RDONLY);
  if (!f) return false;
  constexpr uint64_t kWaitWindow = 8ull << 20;  // wait for bytes at most this far ahead
  for (int poll = 0; poll < 20; ++poll) {
    auto size = f->Size();
    if (!size) return false;
    if (*size >= offset + n) {
      auto got = f->ReadAt(offset, out, n);
      return got && *got == n;
    }
    if (offset + n - *size > kWaitWindow) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

Status TierEngine::ReadRemote(uint64_t segment_id, uint64_t offset, size_t n, char* out) {
  if (ReadFromDownload(segment_id, offset, n, out)) {
    read_from_download_.Add(n);
    return Status::Ok();
  }
  const std::string key = KeyOf(segment_id);
  Status st = RetryRemote([&](const CallOptions& o) -> Status {
    CAIRN_ASSIGN_OR_RETURN(size_t got, store_->GetRange(key, offset, n, out, {}, o));
    if (got != n) {
      return Status(Code::kCorruption,
                    fmt::format("object {} is shorter than segment {}", key, segment_id));
    }
    return Status::Ok();
  });
  if (st.ok()) downloaded_bytes_ += n;
  return st;
}

void TierEngine::OnRemoteRead(uint64_t segment_id) {
  for (int i = 0; i <= options_.prefetch_segments; ++i) Hydrate(segment_id + i);
}

void TierEngine::Hydrate(uint64_t segment_id) {
  if (!segments_->local()) return;  // cluster mode: evicted segments stay in the object store
  const uint64_t size = segments_->SegmentSize(segment_id);
  if (size == 0 || IsLocal(segment_id)) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || hydrating_.count(segment_id)) return;
    hydrating_.insert(segment_id);
  }
  downloads_->Submit([this, segment_id, size] {
    Status st;
    bool stop;
    {
      std::lock_guard lock(mu_);
      stop = stopping_;
    }
    const uint64_t high = static_cast<uint64_t>(capacity_.load() * options_.high_watermark);
    if (!stop && !IsLocal(segment_id)) {
      if (LocalBytes() + size > high) {
        EvictDownTo(high > size ? high - size : 0, {segment_id});
      }
      if (LocalBytes() + size <= high) {
        const std::string tmp = segments_->HydratePath(segment_id);
        CallOptions o;
        o.deadline = std::max(options_.remote_timeout, std::chrono::milliseconds(600000));
        auto got = store_->GetToFile(KeyOf(segment_id), tmp, {}, o);
        st = got ? segments_->InstallHydrated(segment_id, tmp) : got.error();
        if (got && st.ok()) downloaded_bytes_ += *got;
        if (!got) ::unlink(tmp.c_str());
        if (!st.ok()) log::Warn("hydrating segment {}: {}", segment_id, st.ToString());
      }
    }
    std::lock_guard lock(mu_);
    hydrating_.erase(segment_id);
  });
}

std::string TierEngine::KeyOf(uint64_t segment_id) const {
  std::string origin = segments_->Origin(segment_id);
  return SegmentKey(origin.empty() ? options_.uuid : origin, segment_id);
}

void TierEngine::UploadNow(const std::set<uint64_t>& segment_ids) {
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : segment_ids) upload_retry_at_.erase(id);
  }
  for (const auto& seg : segments_->List()) {
    if (segment_ids.count(seg.id) && seg.state == meta::SegmentState::kSealed) {
      StartUpload(seg.id, seg.size);
    }
  }
}

void TierEngine::OnRemoved(uint64_t segment_id, bool delete_object) {
  if (!delete_object) return;
  const std::string key = SegmentKey(options_.uuid, segment_id);
  uploads_->Submit([this, key] {
    Status st = store_->Delete(key);
    if (!st.ok()) log::Warn("deleting object {}: {}", key, st.ToString());
  });
}

bool TierEngine::IsLocal(uint64_t segment_id) { return segments_->IsLocal(segment_id); }

// --- imported objects ---------------------------------------------------------------------

void TierEngine::AddImport(uint64_t import_id, const std::string& url) {
  std::lock_guard lock(imports_mu_);
  import_urls_[import_id] = url;
}

Result<std::shared_ptr<ObjectStore>> TierEngine::ImportStore(uint64_t import_id) {
  std::lock_guard lock(imports_mu_);
  auto it = import_stores_.find(import_id);
  if (it != import_stores_.end()) return it->second;
  auto url = import_urls_.find(import_id);
  if (url == import_urls_.end()) {
    return Err(Code::kCorruption, fmt::format("import {} has no record", import_id));
  }
  CAIRN_ASSIGN_OR_RETURN(auto store, OpenObjectStore(url->second));
  std::shared_ptr<ObjectStore> metered = NewMeteredObjectStore(std::move(store));
  import_stores_[import_id] = metered;
  return metered;
}

void TierEngine::LoadObjectCache() {
  std::string dir = options_.data_dir + "/objcache";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    uint64_t ino = 0;
    if (name.size() != 20 || !name.ends_with(".obj") ||
        std::sscanf(name.c_str(), "%16lx", &ino) != 1) {
      ::unlink(path.c_str());  // a partial download
      continue;
    }
    auto f = ObjectCacheFile::Open(path);
    if (!f) {
      if (f.error().code() == Code::kCorruption) {
        log::Warn("dropping damaged object cache file: {}", f.error().message());
        ::unlink(path.c_str());
      }
      continue;
    }
    CachedObject obj;
    obj.size = f->size();
    obj.etag = f->etag();
    obj.file_bytes = ObjectCacheFile::FileBytes(obj.size);
    object_bytes_ += obj.file_bytes;
    objects_[ino] = obj;
  }
  ::closedir(d);
}

bool TierEngine::ObjectCached(uint64_t ino, const std::string& etag) {
  std::lock_guard lock(objects_mu_);
  auto it = objects_.find(ino);
  return it != objects_.end() && it->second.etag == etag;
}

void TierEngine::DropObject(uint64_t ino) {
  {
    std::lock_guard lock(objects_mu_);
    auto it = objects_.find(ino);
    if (it == objects_.end()) return;
    object_bytes_ -= it->second.file_bytes;
    objects_.erase(it);
  }
  ::unlink(ObjectCachePath(ino).c_str());
}

Status TierEngine::CacheObject(uint64_t ino, const std::string& etag, uint64_t size,
                               const std::function<Status(uint64_t, size_t, char*)>& fill) {
  if (etag.size() > ObjectCacheFile::kMaxEtag)
    return Status::Ok();  // not cacheable; served by range reads
  static std::atomic<uint64_t> next_tmp{0};
  const std::string path = ObjectCachePath(ino);
  const std::string tmp = fmt::format("{}.{}.tmp", path, next_tmp.fetch_add(1));
  std::string trailer;
  trailer.reserve(4 * Chunks(size));
  Status st = [&]() -> Status {
    CAIRN_ASSIGN_OR_RETURN(File f, File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    // Pieces of whole chunks, so that each chunk's CRC comes from one piece.
    constexpr size_t kPiece = 128 * meta::kChunkSize;
    std::vector<char> buf(std::min<uint64_t>(kPiece, std::max<uint64_t>(size, 1)));
    for (uint64_t off = 0; off < size; off += buf.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
      CAIRN_RETURN_IF_ERROR(fill(off, n, buf.data()));
      for (size_t c = 0; c < n; c += meta::kChunkSize) {
        PutFixed32(&trailer, Crc32c(buf.data() + c, std::min<size_t>(meta::kChunkSize, n - c)));
      }
      CAIRN_RETURN_IF_ERROR(f.WriteAt(kObjHeaderSize + off, buf.data(), n));
    }
    std::string header = ObjectCacheFile::EncodeHeader(size, etag);
    CAIRN_RETURN_IF_ERROR(f.WriteAt(0, header.data(), header.size()));
    return f.WriteAt(kObjHeaderSize + size, trailer.data(), trailer.size());
  }();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("rename " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  CachedObject obj{size, etag, kObjHeaderSize + size + trailer.size(), Now()};
  std::lock_guard lock(objects_mu_);
  auto& slot = objects_[ino];
  object_bytes_ -= slot.file_bytes;
  slot = obj;
  object_bytes_ += obj.file_bytes;
  return Status::Ok();
}

Status TierEngine::ReadCachedObject(uint64_t ino, uint64_t offset, size_t n, char* out) {
  {
    std::lock_guard lock(objects_mu_);
    auto it = objects_.find(ino);
    if (it == objects_.end()) return Status(Code::kNotFound, "not cached");
    it->second.last_read = Now();
  }
  auto f = ObjectCacheFile::Open(ObjectCachePath(ino));
  if (!f) {
    if (f.error().code() == Code::kNotFound) return Status(Code::kNotFound, "not cached");
    return f.error();  // evicted meanwhile, or damaged
  }
  return f->ReadChecked(offset, n, out);
}

Status TierEngine::HydrateObject(const ObjectTarget& t) {
  if (ObjectCached(t.ino, t.ref.etag)) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto store, ImportStore(t.ref.import_id));
  const uint64_t high = static_cast<uint64_t>(capacity_.load() * options_.high_watermark);
  if (LocalBytes() + t.size > high) EvictDownTo(high > t.size ? high - t.size : 0, {});
  if (LocalBytes() + t.size > high) return Status::Ok();  // no room: keep reading by range
  // Every piece is a ranged GET with If-Match: a change midway is kChanged, never mixed data.
  return CacheObject(t.ino, t.ref.etag, t.size, [&](uint64_t off, size_t n, char* out) {
    Status st = RetryRemote([&](const CallOptions& o) -> Status {
      CAIRN_ASSIGN_OR_RETURN(size_t got, store->GetRange(t.ref.key, off, n, out, t.ref.etag, o));
      if (got != n) {
        return Status(Code::kChanged, "object " + t.ref.key + " is shorter than when imported");
      }
      return Status::Ok();
    });
    if (st.ok()) downloaded_bytes_ += n;
    return st;
  });
}

Status TierEngine::ReadObject(const ObjectTarget& t, uint64_t offset, size_t n, char* out) {
  if (n == 0) return Status::Ok();
  if (ObjectCached(t.ino, t.ref.etag)) {
    Status st = ReadCachedObject(t.ino, offset, n, out);
    if (st.code() != Code::kNotFound) return st;
  }
  if (t.size <= kWholeObjectFetch) {
    CAIRN_RETURN_IF_ERROR(HydrateObject(t));
    if (ObjectCached(t.ino, t.ref.etag)) {
      Status st = ReadCachedObject(t.ino, offset, n, out);
      if (st.code() != Code::kNotFound) return st;
    }
  }
  // Large object (or no room to cache): read the range now, hydrate the whole in the background.
  CAIRN_ASSIGN_OR_RETURN(auto store, ImportStore(t.ref.import_id));
  Status st = RetryRemote([&](const CallOptions& o) -> Status {
    CAIRN_ASSIGN_OR_RETURN(size_t got, store->GetRange(t.ref.key, offset, n, out, t.ref.etag, o));
    if (got != n) return Status(Code::kChanged, "object " + t.ref.key + " shrank since import");
    return Status::Ok();
  });
  CAIRN_RETURN_IF_ERROR(st);
  downloaded_bytes_ += n;
  if (t.size > kWholeObjectFetch) {
    bool start;
    {
      std::lock_guard lock(mu_);
      start = !stopping_ && hydrating_.insert(~t.ino).second;  // objects keyed by ~ino
    }
    if (start) {
      downloads_->Submit([this, t] {
        Status hs = HydrateObject(t);
        if (!hs.ok()) log::Warn("caching object {}: {}", t.ref.key, hs.ToString());
        std::lock_guard lock(mu_);
        hydrating_.erase(~t.ino);
      });
    }
  }
  return Status::Ok();
}

// --- commands -----------------------------------------------------------------------------

Result<uint64_t> TierEngine::Fetch(const std::set<uint64_t>& segment_ids,
                                   const std::vector<ObjectTarget>& objects,
                                   const Progress& progress) {
  uint64_t total = 0;
  std::vector<uint64_t> todo;
  for (uint64_t id : segment_ids) {
    if (IsLocal(id)) continue;
    if (!segments_->local()) {
      if (segments_->SegmentSize(id) == 0) continue;  // another node's: not this node's to fetch
      return Err(Code::kNotSupported,
                 "a cluster node does not fetch evicted segments back into the pool; its reads "
                 "of them go to the object store");
    }
    todo.push_back(id);
    total += segments_->SegmentSize(id);
  }
  std::vector<ObjectTarget> objs;
  for (const auto& o : objects) {
    if (ObjectCached(o.ino, o.ref.etag)) continue;
    objs.push_back(o);
    total += o.size;
  }
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> missed{0};
  std::atomic<size_t> left{todo.size() + objs.size()};
  std::mutex err_mu;
  Status first_error;
  std::mutex wait_mu;
  std::condition_variable wait_cv;
  auto finish = [&](uint64_t bytes, bool ok, const Status& st) {
    if (ok) {
      done += bytes;
    } else {
      missed += bytes;
      if (!st.ok()) {
        std::lock_guard lock(err_mu);
        if (first_error.ok()) first_error = st;
      }
    }
    std::lock_guard lock(wait_mu);
    --left;
    wait_cv.notify_all();
  };
  const std::set<uint64_t> keep(todo.begin(), todo.end());
  const uint64_t high = static_cast<uint64_t>(capacity_.load() * options_.high_watermark);
  for (uint64_t id : todo) {
    downloads_->Submit([&, id] {
      const uint64_t size = segments_->SegmentSize(id);
      if (IsLocal(id)) return finish(size, true, {});
      if (LocalBytes() + size > high) EvictDownTo(high > size ? high - size : 0, keep);
      if (LocalBytes() + size > high) return finish(size, false, {});
      const std::string tmp = segments_->HydratePath(id) + ".fetch";
      Status st = RetryRemote([&](const CallOptions& o) -> Status {
        return internal::ToStatus(store_->GetToFile(KeyOf(id), tmp, {}, o));
      });
      if (st.ok()) st = segments_->InstallHydrated(id, tmp);
      if (!st.ok()) ::unlink(tmp.c_str());
      if (st.ok()) downloaded_bytes_ += size;
      finish(size, st.ok() && IsLocal(id), st);
    });
  }
  for (const auto& o : objs) {
    downloads_->Submit([&, o] {
      Status st = HydrateObject(o);
      finish(o.size, st.ok() && ObjectCached(o.ino, o.ref.etag), st);
    });
  }
  std::unique_lock lock(wait_mu);
  while (left > 0) {
    wait_cv.wait_for(lock, std::chrono::milliseconds(200));
    if (progress) progress(done.load(), total);
  }
  lock.unlock();
  if (progress) progress(done.load(), total);
  if (!first_error.ok()) return Err(first_error);
  return missed.load();
}

std::pair<uint64_t, uint64_t> TierEngine::Release(const std::set<uint64_t>& segment_ids,
                                                  const std::vector<uint64_t>& object_inos) {
  uint64_t freed = 0, kept = 0;
  std::map<uint64_t, data::SegmentInfo> info;
  for (const auto& seg : segments_->List()) info[seg.id] = seg;
  for (uint64_t id : segment_ids) {
    auto it = info.find(id);
    if (it == info.end()) continue;
    if (it->second.state == meta::SegmentState::kUploaded) {
      auto n = segments_->Evict(id);
      if (n) freed += *n;
    } else if (it->second.state != meta::SegmentState::kEvicted) {
      kept += it->second.size;
    }
  }
  for (uint64_t ino : object_inos) {
    std::lock_guard lock(objects_mu_);
    auto it = objects_.find(ino);
    if (it != objects_.end()) freed += it->second.file_bytes;
  }
  for (uint64_t ino : object_inos) DropObject(ino);
  return {freed, kept};
}

Status TierEngine::Flush(std::chrono::milliseconds deadline) {
  if (!options_.upload) {
    return Status(Code::kNotSupported,
                  "this file system has no object store to upload to (a cluster formatted "
                  "without --object-store keeps its segments in the pool)");
  }
  const auto until = Clock::now() + deadline;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      upload_retry_at_.clear();  // retry failed uploads now
    }
    Tick(true);
    bool pending = false;
    for (const auto& seg : segments_->List()) {
      if (seg.state == meta::SegmentState::kSealed ||
          (seg.state == meta::SegmentState::kOpen && seg.size > data::kSegmentHeaderSize)) {
        pending = true;
      }
    }
    if (!pending) return Status::Ok();
    if (Clock::now() >= until) {
      return Status(Code::kUnavailable, "uploads did not finish in time (object store down?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TierStatus TierEngine::GetStatus() {
  TierStatus s;
  for (const auto& seg : segments_->List()) {
    TierStatus::Total* t = nullptr;
    switch (seg.state) {
      case meta::SegmentState::kOpen:
        t = &s.open;
        break;
      case meta::SegmentState::kSealed:
        t = &s.sealed;
        break;
      case meta::SegmentState::kUploaded:
        t = &s.uploaded;
        break;
      case meta::SegmentState::kEvicted:
        t = &s.evicted;
        break;
    }
    ++t->segments;
    t->bytes += seg.size;
  }
  {
    std::lock_guard lock(objects_mu_);
    s.cached_objects = objects_.size();
  }
  s.cached_object_bytes = object_bytes_.load();
  s.nvme_used = LocalBytes();
  s.nvme_capacity = capacity_.load();
  {
    std::lock_guard lock(mu_);
    s.upload_queue = uploading_.size();
    s.download_queue = hydrating_.size();
  }
  {
    std::lock_guard lock(rate_mu_);
    s.upload_rate = upload_rate_;
    s.download_rate = download_rate_;
  }
  s.uploaded_bytes = uploaded_bytes_.load();
  s.downloaded_bytes = downloaded_bytes_.load();
  s.upload_failures = upload_failures_.load();
  s.waiting_for_space = waiting_for_space_.load();
  s.object_store = store_->Describe();
  return s;
}

}  // namespace cairn::tier
