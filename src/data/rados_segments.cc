#include "data/rados_segments.h"

#include <fmt/format.h>
#include <rados/librados.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace cairn::data {
namespace {

// librados returns -errno; a cluster that cannot be reached in time is kUnavailable.
Status RadosStatus(int err, std::string_view what) {
  const int e = err < 0 ? -err : err;
  if (e == ETIMEDOUT || e == ENOTCONN || e == ESHUTDOWN || e == ECONNREFUSED) {
    return Status(Code::kUnavailable, fmt::format("RADOS {}: {}", what, std::strerror(e)));
  }
  // Writes are sent with FULL_TRY: a full pool (its OSDs past the full ratio, or its quota)
  // refuses them at once instead of holding them until space comes back.
  if (e == ENOSPC || e == EDQUOT) {
    return Status(Code::kNoSpace,
                  fmt::format("RADOS {}: the pool is full ({})", what, std::strerror(e)));
  }
  return ErrnoStatus(e, fmt::format("RADOS {}", what));
}

}  // namespace

// The connection and the pool's I/O context, shared by the backend and its open segments.
struct RadosSegments::Handle {
  rados_t cluster = nullptr;
  rados_ioctx_t io = nullptr;
  ~Handle() {
    if (io) rados_ioctx_destroy(io);
    if (cluster) rados_shutdown(cluster);
  }
};

namespace {

class RadosSegmentFile final : public SegmentFile {
 public:
  RadosSegmentFile(std::shared_ptr<RadosSegments::Handle> h, std::string oid)
      : h_(std::move(h)), oid_(std::move(oid)) {}

  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    size_t done = 0;
    while (done < n) {
      // One read returns at most what the object holds past offset.
      const size_t want = std::min<size_t>(n - done, 64u << 20);
      const int r = rados_read(h_->io, oid_.c_str(), buf + done, want, offset + done);
      if (r < 0) return Err(RadosStatus(r, "read " + oid_));
      done += static_cast<size_t>(r);
      if (static_cast<size_t>(r) < want) break;  // end of the object
    }
    return done;
  }

  // Group commit: the OSD applies the writes to one object one at a time, each a replicated
  // commit, so concurrent appends to the open segment would queue behind each other. A writer
  // that finds a write in flight leaves its buffers in the queue; the next leader sends every
  // queued write as ONE write operation (applied together or not at all) and tells each its
  // outcome.
  Status WriteVAt(uint64_t offset, const struct iovec* iov, int count,
                  size_t total) const override {
    Pending mine{offset, iov, count, total};
    std::unique_lock lock(mu_);
    queue_.push_back(&mine);
    while (!mine.done) {
      if (busy_) {
        cv_.wait(lock);
        continue;
      }
      busy_ = true;
      std::vector<Pending*> batch;
      size_t bytes = 0;
      while (!queue_.empty() && (batch.empty() || bytes + queue_.front()->total <= kMaxBatch)) {
        bytes += queue_.front()->total;
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      lock.unlock();
      Status st = Send(batch);
      lock.lock();
      for (Pending* p : batch) {
        p->result = st;
        p->done = true;
      }
      busy_ = false;
      cv_.notify_all();
    }
    return mine.result;
  }

  Status DataSync() const override { return Status::Ok(); }  // acknowledged writes are durable

  Result<uint64_t> Size() const override {
    uint64_t size = 0;
    time_t mtime = 0;
    const int r = rados_stat(h_->io, oid_.c_str(), &size, &mtime);
    if (r < 0) return Err(RadosStatus(r, "stat " + oid_));
    return size;
  }

 private:
  struct Pending {
    uint64_t offset;
    const struct iovec* iov;
    int count;
    size_t total;
    Status result;
    bool done = false;
  };
  static constexpr size_t kMaxBatch = 16u << 20;

  Status Send(const std::vector<Pending*>& batch) const {
    rados_write_op_t op = rados_create_write_op();
    for (const Pending* p : batch) {
      uint64_t at = p->offset;
      for (int i = 0; i < p->count; ++i) {
        rados_write_op_write(op, static_cast<const char*>(p->iov[i].iov_base), p->iov[i].iov_len,
                             at);
        at += p->iov[i].iov_len;
      }
    }
    const int r =
        rados_write_op_operate(op, h_->io, oid_.c_str(), nullptr, LIBRADOS_OPERATION_FULL_TRY);
    rados_release_write_op(op);
    if (r < 0) return RadosStatus(r, "write " + oid_);
    return Status::Ok();
  }

  std::shared_ptr<RadosSegments::Handle> h_;
  const std::string oid_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::deque<Pending*> queue_;  // GUARDED_BY(mu_)
  mutable bool busy_ = false;           // GUARDED_BY(mu_): a leader is sending
};

}  // namespace

RadosSegments::RadosSegments(std::shared_ptr<Handle> handle, std::string fs_uuid, std::string pool)
    : handle_(std::move(handle)), uuid_(std::move(fs_uuid)), pool_(std::move(pool)) {}
RadosSegments::~RadosSegments() = default;

Result<std::unique_ptr<RadosSegments>> RadosSegments::Open(const RadosOptions& options,
                                                           std::string fs_uuid) {
  if (options.conf.empty()) return Err(Code::kInvalid, "RADOS: no ceph.conf given");
  if (options.pool.empty()) return Err(Code::kInvalid, "RADOS: no pool given");
  auto h = std::make_shared<Handle>();
  int r = rados_create2(&h->cluster, "ceph", ("client." + options.user).c_str(), 0);
  if (r < 0) return Err(RadosStatus(r, "create handle"));
  r = rados_conf_read_file(h->cluster, options.conf.c_str());
  if (r < 0) return Err(RadosStatus(r, "read " + options.conf));
  const std::string timeout = fmt::format("{}", options.op_timeout_s);
  for (const char* key : {"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"}) {
    r = rados_conf_set(h->cluster, key, timeout.c_str());
    if (r < 0) return Err(RadosStatus(r, fmt::format("set {}", key)));
  }
  r = rados_connect(h->cluster);
  if (r < 0) {
    Status st =
        RadosStatus(r, "connect (ceph.conf " + options.conf + ", client." + options.user + ")");
    rados_shutdown(h->cluster);
    h->cluster = nullptr;
    if (st.code() == Code::kIo) st = Status(Code::kUnavailable, st.message());
    return Err(st);
  }
  r = rados_ioctx_create(h->cluster, options.pool.c_str(), &h->io);
  if (r < 0) {
    h->io = nullptr;
    if (r == -ENOENT) {
      return Err(Code::kNotFound, fmt::format("RADOS pool {} does not exist", options.pool));
    }
    return Err(RadosStatus(r, "open pool " + options.pool));
  }
  return std::unique_ptr<RadosSegments>(
      new RadosSegments(std::move(h), std::move(fs_uuid), options.pool));
}

std::string RadosSegments::Oid(uint64_t id) const {
  return fmt::format("{}.{:016x}.seg", uuid_, id);
}

std::string RadosSegments::Name(uint64_t id) const { return "rados object " + Oid(id); }

Result<std::shared_ptr<SegmentFile>> RadosSegments::Create(uint64_t id) {
  const std::string oid = Oid(id);
  rados_write_op_t op = rados_create_write_op();
  rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, nullptr);
  const int r =
      rados_write_op_operate(op, handle_->io, oid.c_str(), nullptr, LIBRADOS_OPERATION_FULL_TRY);
  rados_release_write_op(op);
  if (r < 0) return Err(RadosStatus(r, "create " + oid));
  return std::shared_ptr<SegmentFile>(std::make_shared<RadosSegmentFile>(handle_, oid));
}

Result<std::shared_ptr<SegmentFile>> RadosSegments::Open(uint64_t id, bool /*writable*/) {
  const std::string oid = Oid(id);
  uint64_t size = 0;
  time_t mtime = 0;
  const int r = rados_stat(handle_->io, oid.c_str(), &size, &mtime);
  if (r < 0) return Err(RadosStatus(r, "stat " + oid));
  return std::shared_ptr<SegmentFile>(std::make_shared<RadosSegmentFile>(handle_, oid));
}

Status RadosSegments::Remove(uint64_t id) {
  const std::string oid = Oid(id);
  // FULL_FORCE: a removal frees space, so it must go through on a full pool too.
  rados_write_op_t op = rados_create_write_op();
  rados_write_op_remove(op);
  const int r =
      rados_write_op_operate(op, handle_->io, oid.c_str(), nullptr, LIBRADOS_OPERATION_FULL_FORCE);
  rados_release_write_op(op);
  if (r < 0 && r != -ENOENT) return RadosStatus(r, "remove " + oid);
  return Status::Ok();
}

Result<RadosSegments::PoolUsage> RadosSegments::Usage() const {
  rados_pool_stat_t st{};
  const int r = rados_ioctx_pool_stat(handle_->io, &st);
  if (r < 0) return Err(RadosStatus(r, "pool stat"));
  return PoolUsage{st.num_bytes, st.num_objects};
}

Result<uint64_t> RadosSegments::Capacity() const {
  const char* cmd[] = {R"({"prefix": "df", "format": "json"})"};
  char* out = nullptr;
  size_t out_len = 0;
  char* status = nullptr;
  size_t status_len = 0;
  const int r =
      rados_mon_command(handle_->cluster, cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  std::string text = out ? std::string(out, out_len) : std::string();
  if (out) rados_buffer_free(out);
  if (status) rados_buffer_free(status);
  if (r < 0) return Err(RadosStatus(r, "df"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object() && j.contains("pools") && j["pools"].is_array()) {
    for (const auto& pool : j["pools"]) {
      if (!pool.is_object() || pool.value("name", "") != pool_ || !pool.contains("stats")) continue;
      const auto& st = pool["stats"];
      return st.value("stored", uint64_t{0}) + st.value("max_avail", uint64_t{0});
    }
  }
  return Err(Code::kCorruption, fmt::format("RADOS df names no pool {}", pool_));
}

}  // namespace cairn::data
