// libcairn (include/cairn/client.h): the dataset index from the daemon, file bytes straight from
// the segment files, checked chunk by chunk.
#include "cairn/client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/file.h"
#include "common/status.h"
#include "data/rados_segments.h"
#include "data/segment_store.h"
#include "meta/schema.h"
#include "server/admin_client.h"
#include "server/dataset_index.h"
#include "tier/object_cache_file.h"

namespace cairn {
namespace {

Error FromStatus(const Status& st) { return {ToErrno(st.code()), st.ToString()}; }
std::unexpected<Error> Fail(int code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

struct IndexedFile {
  bool mount_only = false;  // imported: read from the daemon's object cache, or the mount
  std::string etag;         // the imported object's version that the cache must hold
  std::string inline_data;
  std::vector<meta::Extent> extents;  // by file offset
};

class DatasetImpl final : public Dataset {
 public:
  // segments: where this process reads segments (the data directory's files, or a cluster's
  // pool); null: every file that is not inline is read through the mount.
  DatasetImpl(std::string data_dir, std::string dir, std::string root,
              std::shared_ptr<data::SegmentBackend> segments, std::string source)
      : data_dir_(std::move(data_dir)),
        dir_(std::move(dir)),
        root_(std::move(root)),
        segments_(std::move(segments)),
        local_(segments_ && segments_->local()),
        source_(std::move(source)) {}

  // Reads the index's entries (the daemon's "dataset_index" reply, or Serialize's output).
  Status Load(const nlohmann::json& files, nlohmann::json pool) {
    pool_ = std::move(pool);
    if (!files.is_array()) return Status(Code::kCorruption, "dataset index without files");
    infos_.reserve(files.size());
    index_.reserve(files.size());
    for (const auto& j : files) {
      CAIRN_ASSIGN_OR_RETURN(fs::FileSystem::IndexedFile f, server::DecodeIndexedFile(j));
      IndexedFile x{f.mount_only, std::move(f.etag), std::move(f.inline_data),
                    std::move(f.extents)};
      std::sort(x.extents.begin(), x.extents.end(),
                [](const auto& a, const auto& b) { return a.file_offset < b.file_offset; });
      by_path_.emplace(f.path, infos_.size());
      infos_.push_back({std::move(f.path), f.ino, f.size});
      index_.push_back(std::move(x));
    }
    // Every segment opened now, not under the lock by the first reads of an epoch.
    if (segments_) {
      std::set<uint64_t> ids;
      for (const auto& x : index_) {
        for (const auto& e : x.extents) ids.insert(e.segment_id);
      }
      for (uint64_t id : ids) {
        auto seg = Segment(id);
        if (!seg && seg.error().code() != Code::kNotFound) return seg.error();
      }
    }
    return Status::Ok();
  }

  size_t size() const override { return infos_.size(); }
  std::string source() const override { return source_; }
  std::string Serialize() const override {
    nlohmann::json files = nlohmann::json::array();
    for (size_t i = 0; i < infos_.size(); ++i) {
      const IndexedFile& x = index_[i];
      files.push_back(server::EncodeIndexedFile({infos_[i].path, infos_[i].ino, infos_[i].size,
                                                 x.inline_data, x.mount_only, x.etag, x.extents}));
    }
    nlohmann::json out = {{"cairn_dataset_index", 1}, {"dir", dir_}, {"files", std::move(files)}};
    if (!pool_.is_null()) out["pool"] = pool_;
    return out.dump();
  }
  const FileInfo& file(size_t index) const override { return infos_.at(index); }
  Expected<size_t> Find(const std::string& path) const override {
    auto it = by_path_.find(path);
    if (it == by_path_.end()) return Fail(ENOENT, path + " is not in the dataset");
    return it->second;
  }
  DatasetStats stats() const override {
    return {direct_.load(), inline_.load(), mount_.load(), hydrated_.load(),
            hydrated_objects_.load()};
  }

  // What an epoch's hydrator may bring back to NVMe for file, as claim keys: the ids of its
  // segments that are not files here (evicted to the object store), or, for an imported file
  // whose object is not cached on NVMe, kObjectKey | its inode. Empty when there is nothing to
  // fetch (a cluster's pool does not take evicted segments back: those are read through the
  // mount, from the object store).
  static constexpr uint64_t kObjectKey = uint64_t{1} << 63;  // inodes and segment ids stay below
  std::vector<uint64_t> MissingData(size_t file) const {
    std::vector<uint64_t> out;
    const IndexedFile& x = index_[file];
    if (!x.inline_data.empty() || infos_[file].size == 0) return out;
    if (x.mount_only) {
      struct stat st;
      const std::string cached = tier::ObjectCacheFile::Path(data_dir_, infos_[file].ino);
      if (::stat(cached.c_str(), &st) != 0) out.push_back(kObjectKey | infos_[file].ino);
      return out;
    }
    if (!local_) return out;
    for (const auto& e : x.extents) {
      auto seg = Segment(e.segment_id);
      if (!seg && seg.error().code() == Code::kNotFound) out.push_back(e.segment_id);
    }
    return out;
  }
  // Asks the daemon to bring the files' data back to NVMe (cairn tier fetch of them, in
  // parallel: their segments, or their imported objects into the daemon's cache), then looks for
  // the segments' files again. keys: what MissingData gave for them.
  Status Hydrate(const std::vector<size_t>& files, const std::vector<uint64_t>& keys) const {
    std::vector<uint64_t> inos;
    for (size_t f : files) inos.push_back(infos_[f].ino);
    auto reply = server::AdminCall(data_dir_, {{"op", "dataset_fetch"}, {"inos", inos}});
    if (!reply) return reply.error();
    std::lock_guard lock(segs_mu_);
    for (uint64_t key : keys) {
      if (key & kObjectKey) {
        ++hydrated_objects_;
        continue;
      }
      auto it = segs_.find(key);
      if (it != segs_.end() && !it->second) segs_.erase(it);
      ++hydrated_;
    }
    return Status::Ok();
  }
  Expected<std::unique_ptr<Epoch>> BeginEpoch(std::vector<size_t> order,
                                              const PrefetchOptions& options) const override;

  Expected<size_t> Read(size_t file, uint64_t offset, size_t length, char* buffer) const override {
    if (file >= infos_.size()) return Fail(EINVAL, fmt::format("no file {} in the dataset", file));
    const FileInfo& info = infos_[file];
    const IndexedFile& x = index_[file];
    if (offset >= info.size || length == 0) return size_t{0};
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length, info.size - offset));
    if (!x.inline_data.empty()) {
      std::memcpy(buffer, x.inline_data.data() + offset, n);
      inline_ += n;
      return n;
    }
    if (x.mount_only) {
      // An imported file: its object as the daemon cached it on this node, when that is the
      // version the index names; otherwise the mount (which fetches it).
      if (!x.etag.empty()) {
        Status st = tier::ObjectCacheFile::Read(tier::ObjectCacheFile::Path(data_dir_, info.ino),
                                                info.size, x.etag, offset, n, buffer);
        if (st.ok()) {
          direct_ += n;
          return n;
        }
        if (st.code() != Code::kNotFound && st.code() != Code::kChanged) {
          return Fail(ToErrno(st.code()), fmt::format("{}: {}", info.path, st.ToString()));
        }
      }
      return ReadThroughMount(info, offset, n, buffer);
    }
    if (!segments_) return ReadThroughMount(info, offset, n, buffer);
    // Every extent in the range fills its part; holes between them read as zeros.
    const uint64_t end = offset + n;
    uint64_t filled = offset;
    auto it =
        std::upper_bound(x.extents.begin(), x.extents.end(), offset,
                         [](uint64_t off, const meta::Extent& e) { return off < e.file_offset; });
    if (it != x.extents.begin()) --it;
    for (; it != x.extents.end() && it->file_offset < end; ++it) {
      const meta::Extent& e = *it;
      if (e.end() <= offset) continue;
      const uint64_t from = std::max(offset, e.file_offset);
      const uint64_t to = std::min(end, e.end());
      if (from > filled) std::memset(buffer + (filled - offset), 0, from - filled);
      filled = std::max(filled, to);
      Status st = ReadExtent(e, static_cast<uint32_t>(from - e.file_offset),
                             static_cast<uint32_t>(to - from), buffer + (from - offset));
      if (st.code() == Code::kNotFound) {
        // The segment is not here (evicted to the object store, or a cluster node removed it
        // after compacting it): the mount reads the file as it is now.
        Forget(e.segment_id);
        return ReadThroughMount(info, offset, n, buffer);
      }
      if (!st.ok()) {
        return Fail(ToErrno(st.code()), fmt::format("{}: {}", info.path, st.ToString()));
      }
    }
    if (end > filled) std::memset(buffer + (filled - offset), 0, end - filled);
    direct_ += n;
    return n;
  }

  void ReadBatch(std::span<const ReadRequest> requests,
                 const std::function<void(const ReadResult&)>& done, int parallel) const override {
    std::atomic<size_t> next{0};
    std::mutex done_mu;
    auto work = [&] {
      for (size_t i = next++; i < requests.size(); i = next++) {
        const ReadRequest& r = requests[i];
        ReadResult result{i, Read(r.file, r.offset, r.length, r.buffer)};
        std::lock_guard lock(done_mu);
        done(result);
      }
    };
    const size_t threads =
        std::min<size_t>(requests.size(), static_cast<size_t>(std::max(1, parallel)));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }

 private:
  // The segment, opened once (kNotFound, remembered, when it is not there: not a file of the
  // data directory, not an object of the pool).
  Result<std::shared_ptr<data::SegmentFile>> Segment(uint64_t id) const {
    std::lock_guard lock(segs_mu_);
    auto it = segs_.find(id);
    if (it == segs_.end()) {
      auto seg = segments_->Open(id, false);
      if (!seg && seg.error().code() != Code::kNotFound) return Err(seg.error());
      it = segs_.emplace(id, seg ? std::move(*seg) : nullptr).first;
    }
    if (!it->second) return Err(Code::kNotFound);
    return it->second;
  }
  void Forget(uint64_t id) const {
    std::lock_guard lock(segs_mu_);
    segs_[id] = nullptr;
  }

  // The checked read that data::SegmentStore::Read does, from this process's descriptor or its
  // own connection to the pool.
  Status ReadExtent(const meta::Extent& e, uint32_t from, uint32_t n, char* out) const {
    CAIRN_ASSIGN_OR_RETURN(auto seg, Segment(e.segment_id));
    return data::ReadExtentChecked(e, from, n, out, [&](uint64_t offset, char* buf, size_t len) {
      return seg->ReadAt(offset, buf, len);
    });
  }

  Expected<size_t> ReadThroughMount(const FileInfo& info, uint64_t offset, size_t n,
                                    char* buffer) const {
    auto file = File::Open(root_ + "/" + info.path, O_RDONLY);
    auto got = file ? file->ReadAt(offset, buffer, n) : Result<size_t>(Err(file.error()));
    if (!got) return std::unexpected(FromStatus(got.error()));
    mount_ += *got;
    return *got;
  }

  const std::string data_dir_;
  const std::string dir_;   // relative to the mount point
  const std::string root_;  // the dataset's directory under the mount point
  const std::shared_ptr<data::SegmentBackend> segments_;
  const bool local_;  // segments are files of the data directory (they can be hydrated)
  const std::string source_;
  nlohmann::json pool_;  // the cluster's pool settings, as the daemon gave them (null: none)
  std::vector<FileInfo> infos_;
  std::vector<IndexedFile> index_;
  std::unordered_map<std::string, size_t> by_path_;
  mutable std::mutex segs_mu_;
  // GUARDED_BY(segs_mu_); null: not there.
  mutable std::unordered_map<uint64_t, std::shared_ptr<data::SegmentFile>> segs_;
  mutable std::atomic<uint64_t> direct_{0}, inline_{0}, mount_{0}, hydrated_{0},
      hydrated_objects_{0};
};

class EpochImpl final : public Epoch {
 public:
  EpochImpl(const DatasetImpl* ds, std::vector<size_t> order, const PrefetchOptions& o)
      : ds_(ds), order_(std::move(order)), budget_(o.budget_bytes), hydrate_(o.hydrate) {
    // The first file's evicted data is claimed before any reader starts: the epoch's first
    // reads wait for their hydration rather than fetch the same bytes through the mount.
    if (hydrate_ && !order_.empty()) first_claim_ = Claim(0);
    const int n = std::max(1, std::min<int>(o.threads, static_cast<int>(order_.size())));
    for (int i = 0; i < n; ++i) readers_.emplace_back([this] { Run(); });
    if (hydrate_) readers_.emplace_back([this] { Hydrate(); });
  }
  ~EpochImpl() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : readers_) t.join();
  }

  Expected<std::optional<Sample>> Next() override {
    std::unique_lock lock(mu_);
    if (next_out_ >= order_.size()) return std::optional<Sample>();
    cv_.wait(lock, [&] { return ready_.count(next_out_) > 0; });
    auto node = ready_.extract(next_out_);
    ++next_out_;
    Expected<Sample> got = std::move(node.mapped());
    if (got) held_ -= got->data.size();
    cv_.notify_all();  // room for more
    if (!got) return std::unexpected(got.error());
    return std::optional<Sample>(std::move(*got));
  }
  size_t position() const override {
    std::lock_guard lock(mu_);
    return next_out_;
  }
  uint64_t peak_bytes() const override {
    std::lock_guard lock(mu_);
    return peak_;
  }

 private:
  void Run() {
    for (;;) {
      size_t pos;
      uint64_t size;
      {
        std::unique_lock lock(mu_);
        if (stop_ || next_in_ >= order_.size()) return;
        pos = next_in_++;
        size = ds_->file(order_[pos]).size;
        // Wait for room, unless this is the file the reader waits for (it must come).
        cv_.wait(lock, [&] { return stop_ || pos == next_out_ || held_ + size <= budget_; });
        if (stop_) return;
        held_ += size;
        peak_ = std::max(peak_, held_);
      }
      if (hydrate_) WaitForHydration(order_[pos]);
      Sample s{order_[pos], {}};
      Expected<size_t> n;
      // Read into the string's own memory: no zero fill first (a sample's pages are touched
      // once).
      s.data.resize_and_overwrite(size, [&](char* buf, size_t len) {
        n = ds_->Read(s.file, 0, len, buf);
        return n ? *n : 0;
      });
      Expected<Sample> out = std::move(s);
      if (!n) out = std::unexpected(n.error());
      std::lock_guard lock(mu_);
      const uint64_t kept = out ? out->data.size() : 0;
      held_ -= size - kept;
      ready_.emplace(pos, std::move(out));
      cv_.notify_all();
    }
  }

  // Claims the evicted segments (or imported object) of the file at pos that nobody asked for
  // yet: they go in flight, and readers of files in them wait until the daemon has brought them
  // back.
  std::vector<uint64_t> Claim(size_t pos) {
    const std::vector<uint64_t> missing = ds_->MissingData(order_[pos]);
    std::vector<uint64_t> claimed;
    std::lock_guard lock(mu_);
    for (uint64_t id : missing) {
      if (asked_.insert(id).second) {
        claimed.push_back(id);
        in_flight_.insert(id);
      }
    }
    return claimed;
  }
  void WaitForHydration(size_t file) {
    {
      std::lock_guard lock(mu_);
      if (in_flight_.empty()) return;  // nothing to wait for (the usual case once data is back)
    }
    const std::vector<uint64_t> missing = ds_->MissingData(file);
    if (missing.empty()) return;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return stop_ || std::none_of(missing.begin(), missing.end(),
                                   [&](uint64_t id) { return in_flight_.count(id) > 0; });
    });
  }

  // Runs ahead of the readers, in the order, and has the daemon bring evicted segments back to
  // NVMe (and cache imported objects there) before the readers get there: up to kGroup files'
  // data in one parallel fetch. A reader that reaches a file first reads it through the mount;
  // one whose data is in flight waits for it. The hydrator stays within twice the budget's worth
  // of files past what was handed out.
  static constexpr size_t kGroup = 64;
  void Hydrate() {
    // before[i]: the bytes of the files at positions before i.
    std::vector<uint64_t> before(order_.size() + 1, 0);
    for (size_t i = 0; i < order_.size(); ++i) {
      before[i + 1] = before[i] + ds_->file(order_[i]).size;
    }
    std::vector<uint64_t> claimed = std::move(first_claim_);
    std::vector<size_t> files;
    if (!claimed.empty()) files.push_back(order_[0]);
    size_t pos = 1;
    for (;;) {
      if (files.empty()) {
        // The next group: the files from pos that the window allows, as many as kGroup.
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] {
          return stop_ || pos >= order_.size() || pos < next_out_ ||
                 before[pos] - before[next_out_] <= 2 * budget_;
        });
        if (stop_ || pos >= order_.size()) return;
        pos = std::max(pos, next_out_);  // those handed out already need nothing
        while (pos < order_.size() && files.size() < kGroup &&
               before[pos] - before[next_out_] <= 2 * budget_) {
          lock.unlock();
          std::vector<uint64_t> more = Claim(pos);
          lock.lock();
          if (!more.empty()) {
            files.push_back(order_[pos]);
            claimed.insert(claimed.end(), more.begin(), more.end());
          }
          ++pos;
        }
        if (files.empty()) continue;
      }
      const bool ok = ds_->Hydrate(files, claimed).ok();
      {
        std::lock_guard lock(mu_);
        for (uint64_t id : claimed) in_flight_.erase(id);
      }
      cv_.notify_all();
      if (!ok) return;  // the readers go through the mount
      files.clear();
      claimed.clear();
    }
  }

  const DatasetImpl* const ds_;
  const std::vector<size_t> order_;
  const uint64_t budget_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t next_in_ = 0;   // GUARDED_BY(mu_): the next position a reader takes
  size_t next_out_ = 0;  // GUARDED_BY(mu_): the next position Next() hands out
  uint64_t held_ = 0;    // GUARDED_BY(mu_): bytes reserved by reads in flight and read ahead
  uint64_t peak_ = 0;    // GUARDED_BY(mu_)
  bool stop_ = false;    // GUARDED_BY(mu_)
  const bool hydrate_;
  std::set<uint64_t> asked_;                  // GUARDED_BY(mu_): segments the hydrator claimed
  std::set<uint64_t> in_flight_;              // GUARDED_BY(mu_): claimed and not back yet
  std::vector<uint64_t> first_claim_;         // the first file's, claimed before the threads start
  std::map<size_t, Expected<Sample>> ready_;  // GUARDED_BY(mu_)
  std::vector<std::thread> readers_;
};

Expected<std::unique_ptr<Epoch>> StartEpoch(const DatasetImpl* ds, std::vector<size_t> order,
                                            const PrefetchOptions& options) {
  for (size_t i : order) {
    if (i >= ds->size()) return Fail(EINVAL, fmt::format("no file {} in the dataset", i));
  }
  return std::unique_ptr<Epoch>(new EpochImpl(ds, std::move(order), options));
}

class ClientImpl final : public Client {
 public:
  ClientImpl(std::string mountpoint, std::string data_dir)
      : mountpoint_(std::move(mountpoint)), data_dir_(std::move(data_dir)) {}

  Expected<std::unique_ptr<Dataset>> OpenDataset(const std::string& dir) override {
    // What this host wrote through the mount may still sit in the kernel's writeback cache: it
    // reaches the daemon first, so that the index holds it.
    if (int fd = ::open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
      (void)::syncfs(fd);
      ::close(fd);
    }
    auto reply = server::AdminCall(data_dir_, {{"op", "dataset_index"}, {"dir", dir}});
    if (!reply) {
      return Fail(ToErrno(reply.error().code()),
                  fmt::format("dataset '{}': {}", dir, reply.error().message()));
    }
    if (!reply->value("ok", false)) {
      return Fail(EIO, fmt::format("dataset {}: {}", dir, reply->value("error", "?")));
    }
    return FromIndex(dir, *reply, EIO);
  }

  Expected<std::unique_ptr<Dataset>> OpenDataset(const std::string& dir,
                                                 const std::string& index) override {
    auto j = nlohmann::json::parse(index, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("cairn_dataset_index", 0) != 1) {
      return Fail(EINVAL, fmt::format("dataset {}: not a serialized dataset index", dir));
    }
    if (j.value("dir", std::string()) != dir) {
      return Fail(EINVAL, fmt::format("dataset {}: the serialized index is of directory '{}'", dir,
                                      j.value("dir", std::string())));
    }
    return FromIndex(dir, j, EINVAL);
  }

  // bad: the errno of an index that does not decode.
  Expected<std::unique_ptr<Dataset>> FromIndex(const std::string& dir, const nlohmann::json& j,
                                               int bad) {
    std::string root = mountpoint_;
    if (!dir.empty()) root += "/" + dir;
    std::string source;
    auto segments = Segments(j, &source);
    auto ds = std::make_unique<DatasetImpl>(data_dir_, dir, root, std::move(segments), source);
    Status st = ds->Load(j.contains("files") ? j["files"] : nlohmann::json(),
                         j.value("pool", nlohmann::json()));
    if (!st.ok()) {
      return Fail(st.code() == Code::kCorruption ? bad : ToErrno(st.code()),
                  fmt::format("dataset {}: {}", dir, st.ToString()));
    }
    return std::unique_ptr<Dataset>(std::move(ds));
  }

  // Where this process reads segments: the data directory's files, or the cluster's pool (one
  // connection per client, made by the first dataset that needs it). Without a connection (no
  // access to the cluster's keyring, the cluster unreachable) the datasets read through the
  // mount. *source: that, in words (Dataset::source).
  std::shared_ptr<data::SegmentBackend> Segments(const nlohmann::json& reply, std::string* source) {
    if (!reply.contains("pool")) {
      *source = "segment files in " + data_dir_;
      return std::make_shared<data::LocalSegments>(data_dir_);
    }
    std::lock_guard lock(mu_);
    if (!pool_ && pool_error_.empty()) Connect(reply.at("pool"));
    *source = pool_ ? "RADOS pool " + pool_name_
                    : "the mount (no direct access to the cluster's pool: " + pool_error_ + ")";
    return pool_;
  }

 private:
  void Connect(const nlohmann::json& p) {
    data::RadosOptions o;
    std::string uuid;
    try {
      o.conf = p.at("conf").get<std::string>();
      o.user = p.at("user").get<std::string>();
      o.pool = p.at("name").get<std::string>();
      uuid = p.at("uuid").get<std::string>();
    } catch (const std::exception& e) {
      pool_error_ = fmt::format("the daemon's pool settings: {}", e.what());
      return;
    }
    auto pool = data::RadosSegments::Open(o, uuid);
    if (!pool) {
      pool_error_ = pool.error().ToString();
      return;
    }
    pool_ = std::move(*pool);
    pool_name_ = o.pool;
  }

  const std::string mountpoint_;
  const std::string data_dir_;
  std::mutex mu_;
  std::shared_ptr<data::SegmentBackend> pool_;  // GUARDED_BY(mu_)
  std::string pool_name_;                       // GUARDED_BY(mu_)
  std::string pool_error_;                      // GUARDED_BY(mu_)
};

Expected<std::unique_ptr<Epoch>> DatasetImpl::BeginEpoch(std::vector<size_t> order,
                                                         const PrefetchOptions& options) const {
  return StartEpoch(this, std::move(order), options);
}

}  // namespace

Expected<std::unique_ptr<Client>> Client::Open(const std::string& mountpoint) {
  auto data_dir = server::DataDirOfMount(mountpoint);
  if (!data_dir) return std::unexpected(FromStatus(data_dir.error()));
  auto ping = server::AdminCall(*data_dir, {{"op", "ping"}});
  if (!ping) return std::unexpected(FromStatus(ping.error()));
  std::string mp = mountpoint;
  while (mp.size() > 1 && mp.back() == '/') mp.pop_back();
  return std::unique_ptr<Client>(new ClientImpl(mp, *data_dir));
}

}  // namespace cairn
