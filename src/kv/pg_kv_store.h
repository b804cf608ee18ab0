// PgKvStore: the ordered key-value store kept in PostgreSQL, for metadata shared by the nodes of
// a cluster (issue 10). One table, cairn_kv(k bytea primary key, v bytea); bytea compares
// bytewise, so the table's order is the KvStore order.
//
// - A WriteBatch is one transaction, sent as one pipeline (one round trip): the range deletes,
//   then the puts, deletes and counter adds in order. Counter adds run in the server
//   (cairn_kv_add), so adds from many nodes never lose each other.
// - Write(sync=false) commits with synchronous_commit off: after a server crash the store is
//   consistent, but the last such commits may be gone, as with RocksDB's unsynced WAL.
//   SyncWal() makes every commit so far durable.
// - An iterator holds one connection with a REPEATABLE READ, read-only transaction open: the
//   snapshot of the database when it was made. Rows come in pages of 256.
//
// Thread-safety: all methods may be called from many threads at once; connections come from a
// pool that grows on demand. An iterator is used by one thread.
#pragma once

#include <memory>
#include <string>

#include "kv/kv_store.h"

namespace cairn::kv {

struct PgOptions {
  // Creates the table and function when the database has none (cairn format); otherwise a
  // database without them is refused (kNotFound).
  bool create_if_missing = false;
  // Connections kept open at most; a caller waits when all are busy.
  int max_connections = 32;
};

class PgKvStore final : public KvStore {
 public:
  // conninfo: a libpq connection string or URI ("postgresql://user@host:5432/db",
  // "host=/run/postgresql dbname=cairn"). kUnavailable when the server cannot be reached or
  // refuses the login; the message is the server's.
  static Result<std::unique_ptr<PgKvStore>> Open(const std::string& conninfo,
                                                 const PgOptions& options);
  ~PgKvStore() override;

  Result<std::string> Get(std::string_view key) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override;
  using KvStore::NewIterator;
  Status SyncWal() override;
  Status Flush() override { return Status::Ok(); }

  class Pool;

 private:
  explicit PgKvStore(std::unique_ptr<Pool> pool);
  std::unique_ptr<Pool> pool_;
};

}  // namespace cairn::kv
