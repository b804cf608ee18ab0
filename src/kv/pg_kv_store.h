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
// - Change notices (PostgreSQL LISTEN/NOTIFY), once Announce is set: a batch that changes keys
//   the caller watches also sends, in its transaction, one notice naming its origin and those
//   keys (or "everything" past 7 KiB). PostgreSQL delivers it to every listener after the commit,
//   never for a batch that did not commit. Listen() runs a thread with a connection of its own.
//
// Thread-safety: all methods may be called from many threads at once; connections come from a
// pool that grows on demand. An iterator is used by one thread. Announce is set before the store
// is shared.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv_store.h"

namespace cairn::kv {

struct PgOptions {
  // Creates the table and function when the database has none (cairn format); otherwise a
  // database without them is refused (kNotFound).
  bool create_if_missing = false;
  // Connections kept open at most; a caller waits when all are busy.
  int max_connections = 32;
  // The table served: cairn_kv, or a copy of it made by CopyTable (a cluster snapshot), which
  // is served read-only (Write: kReadOnly). A plain SQL identifier ([a-z0-9_]).
  std::string table = "cairn_kv";
};

// A PostgreSQL session-level advisory lock, held on a connection of its own until destroyed
// (PgKvStore::Lock). If that connection breaks, the server releases the lock.
class PgAdvisoryLock {
 public:
  struct Held;
  explicit PgAdvisoryLock(std::unique_ptr<Held> held);
  ~PgAdvisoryLock();
  PgAdvisoryLock(const PgAdvisoryLock&) = delete;
  PgAdvisoryLock& operator=(const PgAdvisoryLock&) = delete;

 private:
  std::unique_ptr<Held> held_;
};

// What a store announces and hears (LISTEN/NOTIFY).
struct PgNotices {
  std::string channel = "cairn_changes";  // a plain SQL identifier
  std::string origin;                     // who sends: a listener skips its own origin's notices
  std::function<bool(std::string_view key)> watched;
};
// Keys another origin changed, or null: notices may have been missed (the listener's connection
// was lost and is back), so anything may have changed.
using PgNoticeHandler = std::function<void(const std::vector<std::string>* keys)>;

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

  // Sends notices from now on. Call before other threads use the store.
  void Announce(PgNotices notices);
  // Hears the notices of notices.channel from other origins and calls handler for each, on a
  // thread of its own with its own connection (reconnecting every second while the server is
  // away). kUnavailable when the first connection fails. One listener per store.
  Status Listen(const PgNotices& notices, PgNoticeHandler handler);
  // Stops the listener and waits for it (also done by the destructor).
  void StopListening();

  // Copies cairn_kv, as of one instant (one statement's MVCC snapshot: every transaction
  // committed before it, none after), into a new table `name` with the same primary key, dropping
  // a table of that name first. One transaction, committed durably. name: [a-z0-9_]+.
  Status CopyTable(std::string_view name);
  // Drops table `name` (absent: Ok).
  Status DropTable(std::string_view name);
  // The names of the tables that start with prefix, sorted.
  Result<std::vector<std::string>> ListTables(std::string_view prefix);
  // Takes advisory lock `key`, shared or exclusive, waiting for it.
  Result<std::unique_ptr<PgAdvisoryLock>> Lock(int64_t key, bool exclusive);

  class Pool;
  class Listener;

 private:
  PgKvStore(std::unique_ptr<Pool> pool, std::string table);
  // Whether the batch changes a watched key; then *payload is its notice.
  bool NoticeFor(const WriteBatch& batch, std::string* payload) const;

  std::unique_ptr<Pool> pool_;
  std::string table_;
  // The reads of table_: get, then scans forward and backward (inclusive, exclusive).
  std::string get_sql_;
  std::array<std::string, 4> scan_sql_;
  PgNotices notices_;
  std::string notify_sql_;  // SELECT pg_notify('<channel>', ...)
  std::unique_ptr<Listener> listener_;
};

}  // namespace cairn::kv
