#include "kv/rocksdb_kv_store.h"

#include <dirent.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "common/file.h"
#include "common/logging.h"

namespace cairn::kv {
namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  Code code = s.IsCorruption()                                                  ? Code::kCorruption
              : s.IsNotFound()                                                  ? Code::kNotFound
              : s.IsIOError() && s.ToString().find("lock") != std::string::npos ? Code::kBusy
                                                                                : Code::kIo;
  return Status(code, std::string(what) + ": " + s.ToString());
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

class RocksIterator final : public Iterator {
 public:
  RocksIterator(rocksdb::DB* db, std::string_view lower, std::string_view upper)
      : lower_(lower), upper_(upper), lower_slice_(ToSlice(lower_)), upper_slice_(ToSlice(upper_)) {
    rocksdb::ReadOptions ro;
    if (!lower_.empty()) ro.iterate_lower_bound = &lower_slice_;
    if (!upper_.empty()) ro.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(ro));
  }
  void Seek(std::string_view key) override { it_->Seek(ToSlice(key)); }
  void SeekForPrev(std::string_view key) override { it_->SeekForPrev(ToSlice(key)); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  std::string_view key() const override {
    auto k = it_->key();
    return {k.data(), k.size()};
  }
  std::string_view value() const override {
    auto v = it_->value();
    return {v.data(), v.size()};
  }
  Status status() const override { return FromRocks(it_->status(), "iterate"); }

 private:
  // The bounds must outlive the RocksDB iterator, which keeps pointers to them.
  const std::string lower_, upper_;
  const rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// WriteBatch::Add: signed 64-bit addition. Associative, so RocksDB folds operands together in
// flushes and compactions and a read sums what is left.
class CounterAddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    auto delta = DecodeCounter({value.data(), value.size()});
    if (!delta) return false;  // corrupt operand: RocksDB reports the key as corrupt
    int64_t sum = *delta;
    if (existing) {
      auto base = DecodeCounter({existing->data(), existing->size()});
      if (base) sum += *base;
    }
    *new_value = EncodeCounter(sum);
    return true;
  }
  const char* Name() const override { return "cairn.CounterAdd"; }
};

}  // namespace

RocksDbKvStore::RocksDbKvStore(std::unique_ptr<rocksdb::DB> db, std::string snapshot_dir)
    : db_(std::move(db)), snapshot_dir_(std::move(snapshot_dir)) {}

RocksDbKvStore::~RocksDbKvStore() {
  if (db_) {
    (void)db_->FlushWAL(true);
    (void)db_->Close();
  }
}

Result<std::unique_ptr<RocksDbKvStore>> RocksDbKvStore::Open(const std::string& dir,
                                                             const RocksDbOptions& options) {
  rocksdb::Options opts;
  opts.create_if_missing = options.create_if_missing;
  opts.error_if_exists = options.create_if_missing;
  opts.IncreaseParallelism(2);
  opts.compression = rocksdb::kLZ4Compression;
  opts.max_background_jobs = 2;
  opts.write_buffer_size = 64 << 20;
  opts.merge_operator = std::make_shared<CounterAddOperator>();
  // Counters take an operand per change; flushes fold them (and a recovery flushes what the log
  // replayed), so a mount reads few. max_successive_merges (fold on write) cost creates 10-30 %
  // (docs/BENCHMARKS.md) and stays off.
  opts.keep_log_file_num = 4;
  opts.info_log_level = rocksdb::WARN_LEVEL;
  rocksdb::BlockBasedTableOptions table;
  // Few, large cache shards. A full filter block is ~1.4 MB per 64 MB table file; with RocksDB's
  // default of one shard per 512 KiB of cache (64 shards of 4 MiB at 256 MiB) two filters that
  // hash to one shard evict each other, and every Get read a filter back from the table file:
  // 39 % of the daemon's CPU in a stat of 16 M files (docs/BENCHMARKS.md, "Scale"). Four shards
  // of 64 MiB keep the filters and indexes of a 15 M-file namespace (~60 MB) resident; index and
  // filter blocks go to the high-priority half, so data blocks streaming through do not push
  // them out.
  rocksdb::LRUCacheOptions cache;
  cache.capacity = options.block_cache_bytes;
  cache.num_shard_bits = 2;
  cache.high_pri_pool_ratio = 0.5;
  table.block_cache = rocksdb::NewLRUCache(cache);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  auto s = options.read_only ? rocksdb::DB::OpenForReadOnly(opts, dir, &raw)
                             : rocksdb::DB::Open(opts, dir, &raw);
  if (!s.ok()) return Err(FromRocks(s, "open metadata store " + dir));
  std::unique_ptr<RocksDbKvStore> store(
      new RocksDbKvStore(std::unique_ptr<rocksdb::DB>(raw), options.snapshot_dir));
  if (!options.snapshot_dir.empty() && !options.read_only) {
    const std::string& sd = options.snapshot_dir;
    if (::mkdir(sd.c_str(), 0700) != 0 && errno != EEXIST) return Err(ErrnoStatus("create " + sd));
    // Leftovers of a crash: a checkpoint not finished, a dropped one not yet removed, a LAST
    // being rewritten.
    if (DIR* d = ::opendir(sd.c_str())) {
      std::vector<std::string> stray;
      while (struct dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n.starts_with(".tmp-") || n.starts_with(".dropped-") || n == "LAST.tmp") {
          stray.emplace_back(n);
        }
      }
      ::closedir(d);
      for (const auto& n : stray) CAIRN_RETURN_IF_ERROR(RemoveTree(sd + "/" + n));
    }
  }
  return store;
}

Result<std::string> RocksDbKvStore::Get(std::string_view key) {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &value);
  if (s.IsNotFound()) return Err(Code::kNotFound);
  if (!s.ok()) return Err(FromRocks(s, "get"));
  return value;
}

Status RocksDbKvStore::Write(const WriteBatch& batch, bool sync) {
  rocksdb::WriteBatch wb;
  for (const auto& [begin, end] : batch.ranges()) {
    auto s = wb.DeleteRange(ToSlice(begin), ToSlice(end));
    if (!s.ok()) return FromRocks(s, "batch");
  }
  for (const auto& op : batch.ops()) {
    rocksdb::Status s;
    switch (op.kind) {
      case WriteBatch::Kind::kPut:
        s = wb.Put(ToSlice(op.key), ToSlice(op.value));
        break;
      case WriteBatch::Kind::kDelete:
        s = wb.Delete(ToSlice(op.key));
        break;
      case WriteBatch::Kind::kAdd:
        s = wb.Merge(ToSlice(op.key), ToSlice(op.value));
        break;
    }
    if (!s.ok()) return FromRocks(s, "batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  if (batch.expects().empty()) {
    std::shared_lock lock(expect_mu_);
    return FromRocks(db_->Write(wo, &wb), "write");
  }
  // Batches with expectations check and write with every other write held off: one process
  // owns a RocksDB store, so this makes check and write atomic.
  std::unique_lock lock(expect_mu_);
  for (const auto& [key, value] : batch.expects()) {
    std::string cur;
    auto s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &cur);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "get");
    const bool holds = value ? s.ok() && cur == *value : s.IsNotFound();
    if (!holds) return Status(Code::kConflict, "an expected value does not hold");
  }
  return FromRocks(db_->Write(wo, &wb), "write");
}

std::unique_ptr<Iterator> RocksDbKvStore::NewIterator(std::string_view lower,
                                                      std::string_view upper) {
  return std::make_unique<RocksIterator>(db_.get(), lower, upper);
}

Status RocksDbKvStore::SyncWal() { return FromRocks(db_->SyncWAL(), "sync WAL"); }

Status RocksDbKvStore::Flush() {
  CAIRN_RETURN_IF_ERROR(FromRocks(db_->FlushWAL(true), "flush WAL"));
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush");
}

// A snapshot opened read-only, shared by its views and SnapshotsHold. Once dropped, its directory
// (renamed aside) goes with the last holder.
struct RocksDbKvStore::SnapshotHandle {
  std::string dir;
  std::unique_ptr<RocksDbKvStore> db;
  std::atomic<bool> dropped{false};
  ~SnapshotHandle() {
    db.reset();
    if (dropped) {
      Status st = RemoveTree(dir);
      if (!st.ok()) log::Error("removing dropped snapshot {}: {}", dir, st.ToString());
    }
  }
};

namespace {

// A view of one snapshot: reads go to its shared handle, and fail once it is dropped.
class RocksSnapshotView final : public SnapshotViewStore {
 public:
  explicit RocksSnapshotView(std::shared_ptr<RocksDbKvStore::SnapshotHandle> h)
      : h_(std::move(h)) {}
  Result<std::string> Get(std::string_view key) override {
    CAIRN_RETURN_IF_ERROR(Alive());
    return h_->db->Get(key);
  }
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override {
    return h_->db->NewIterator(lower, upper);
  }

 private:
  Status Alive() const { return h_->dropped ? Dropped() : Status::Ok(); }
  std::shared_ptr<RocksDbKvStore::SnapshotHandle> h_;
};

bool ParseId(std::string_view name, uint64_t* id) {
  if (name.empty() || name.size() > 19) return false;
  uint64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *id = v;
  return v > 0;
}

}  // namespace

Status RocksDbKvStore::CheckSnapshots() const {
  if (snapshot_dir_.empty()) {
    return Status(Code::kNotSupported, "this metadata store keeps no snapshots");
  }
  return Status::Ok();
}

Result<uint64_t> RocksDbKvStore::LastSnapshotLocked() const {
  auto text = ReadWholeFile(snapshot_dir_ + "/LAST");
  uint64_t last = 0;
  if (text) {
    std::string t = *text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (!ParseId(t, &last)) return Err(Code::kCorruption, snapshot_dir_ + "/LAST is not an id");
  } else if (text.error().code() != Code::kNotFound) {
    return Err(text.error());
  }
  // A crash between a checkpoint's rename and the write of LAST: the directories count too.
  DIR* d = ::opendir(snapshot_dir_.c_str());
  if (!d) return Err(ErrnoStatus("open " + snapshot_dir_));
  while (struct dirent* e = ::readdir(d)) {
    uint64_t id = 0;
    if (ParseId(e->d_name, &id)) last = std::max(last, id);
  }
  ::closedir(d);
  return last;
}

Status RocksDbKvStore::CreateSnapshot(uint64_t id, const WriteBatch& then) {
  CAIRN_RETURN_IF_ERROR(CheckSnapshots());
  std::lock_guard lock(snap_mu_);
  const std::string dir = fmt::format("{}/{}", snapshot_dir_, id);
  struct stat sb;
  if (::stat(dir.c_str(), &sb) == 0) return Status(Code::kExists, "snapshot " + dir + " exists");
  CAIRN_ASSIGN_OR_RETURN(uint64_t last, LastSnapshotLocked());
  if (id <= last) {
    return Status(Code::kInvalid, fmt::format("snapshot id {} is not above {}", id, last));
  }
  const std::string tmp = fmt::format("{}/.tmp-{}", snapshot_dir_, id);
  CAIRN_RETURN_IF_ERROR(RemoveTree(tmp));
  CAIRN_RETURN_IF_ERROR(Checkpoint(tmp));
  if (::rename(tmp.c_str(), dir.c_str()) != 0) return ErrnoStatus("rename " + dir);
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(snapshot_dir_ + "/LAST", fmt::format("{}\n", id)));
  return Write(then, true);
}

Result<std::shared_ptr<RocksDbKvStore::SnapshotHandle>> RocksDbKvStore::HandleLocked(uint64_t id) {
  if (auto it = handles_.find(id); it != handles_.end()) return it->second;
  auto h = std::make_shared<SnapshotHandle>();
  h->dir = fmt::format("{}/{}", snapshot_dir_, id);
  struct stat sb;
  if (::stat((h->dir + "/CURRENT").c_str(), &sb) != 0) {
    return Err(Code::kNotFound, fmt::format("no snapshot {} ({} is missing)", id, h->dir));
  }
  RocksDbOptions o;
  o.read_only = true;
  o.block_cache_bytes = 16 << 20;
  CAIRN_ASSIGN_OR_RETURN(h->db, Open(h->dir, o));
  handles_[id] = h;
  return h;
}

Result<std::unique_ptr<KvStore>> RocksDbKvStore::OpenSnapshot(uint64_t id) {
  CAIRN_RETURN_IF_ERROR(CheckSnapshots());
  std::lock_guard lock(snap_mu_);
  CAIRN_ASSIGN_OR_RETURN(auto h, HandleLocked(id));
  return std::unique_ptr<KvStore>(std::make_unique<RocksSnapshotView>(std::move(h)));
}

Status RocksDbKvStore::DropSnapshot(uint64_t id) {
  CAIRN_RETURN_IF_ERROR(CheckSnapshots());
  std::lock_guard lock(snap_mu_);
  const std::string dir = fmt::format("{}/{}", snapshot_dir_, id);
  const std::string aside = fmt::format("{}/.dropped-{}", snapshot_dir_, id);
  struct stat sb;
  if (::stat(dir.c_str(), &sb) != 0) return Status::Ok();
  // Renamed first: from here on the snapshot does not exist, even after a crash.
  CAIRN_RETURN_IF_ERROR(RemoveTree(aside));
  if (::rename(dir.c_str(), aside.c_str()) != 0) return ErrnoStatus("rename " + dir);
  CAIRN_RETURN_IF_ERROR(SyncDir(snapshot_dir_));
  auto it = handles_.find(id);
  if (it == handles_.end()) return RemoveTree(aside);
  it->second->dir = aside;
  it->second->dropped = true;  // removed when its last view closes
  handles_.erase(it);
  return Status::Ok();
}

Result<std::vector<uint64_t>> RocksDbKvStore::ListSnapshots() {
  CAIRN_RETURN_IF_ERROR(CheckSnapshots());
  std::lock_guard lock(snap_mu_);
  std::vector<uint64_t> ids;
  DIR* d = ::opendir(snapshot_dir_.c_str());
  if (!d) return Err(ErrnoStatus("open " + snapshot_dir_));
  while (struct dirent* e = ::readdir(d)) {
    uint64_t id = 0;
    if (ParseId(e->d_name, &id)) ids.push_back(id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<bool> RocksDbKvStore::SnapshotsHold(std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(auto ids, ListSnapshots());
  for (uint64_t id : ids) {
    std::shared_ptr<SnapshotHandle> h;
    {
      std::lock_guard lock(snap_mu_);
      auto got = HandleLocked(id);
      if (!got) {
        if (got.error().code() == Code::kNotFound) continue;  // dropped meanwhile
        return Err(got.error());
      }
      h = std::move(*got);
    }
    auto v = h->db->Get(key);
    if (v) return true;
    if (v.error().code() != Code::kNotFound) return Err(v.error());
  }
  return false;
}

Status RocksDbKvStore::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  CAIRN_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: flush the memtable first, so the checkpoint is SST files and a small
  // MANIFEST rather than a copy of the write-ahead log.
  return FromRocks(checkpoint->CreateCheckpoint(dir, 0), "checkpoint into " + dir);
}

}  // namespace cairn::kv
