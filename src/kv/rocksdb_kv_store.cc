#include "kv/rocksdb_kv_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

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

RocksDbKvStore::RocksDbKvStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

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
  return std::unique_ptr<RocksDbKvStore>(new RocksDbKvStore(std::unique_ptr<rocksdb::DB>(raw)));
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

Status RocksDbKvStore::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  CAIRN_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: flush the memtable first, so the checkpoint is SST files and a small
  // MANIFEST rather than a copy of the write-ahead log.
  return FromRocks(checkpoint->CreateCheckpoint(dir, 0), "checkpoint into " + dir);
}

}  // namespace cairn::kv
