// PgKvStore: the ordered key-value store kept in PostgreSQL, for metadata shared by the nodes of
// a cluster. One table, cairn_kv(k bytea primary key, v bytea, born bigint); bytea compares
// bytewise, so the table's order is the KvStore order. docs/FORMATS.md has the schema.
//
// - Group commit: concurrent Write calls of one store go to PostgreSQL together, as ONE
//   transaction sent as one pipeline (one round trip), the way LevelDB groups its writers: the
//   first writer in line leads, sends every batch queued behind it (up to 256), and tells each
//   its outcome; the batches that came while it was away form the next group. A lone write
//   does not wait; up to four groups are in flight at once, each on a connection of its own, and
//   writers that find them all busy form the next group. Each batch is one call of the server
//   function cairn_kv_batch, which checks the batch's expectations before it writes anything and
//   returns false when one does not hold: that batch applies nothing and gets kConflict, the others
//   of its group commit. A group that fails as a whole on a deadlock is sent again batch by batch.
//   Counter adds run in the server (cairn_kv_add), so adds from many nodes never lose each other; a
//   group sums its adds per key and applies them last, in key order, so that groups never wait for
//   each other's counter rows in a cycle.
// - Durability: Write(sync=false) commits with synchronous_commit off (set for the transaction
//   only, so a pooler in transaction mode never leaves it set on a server connection): after a
//   server crash the store is consistent, but the last such commits may be gone, as with
//   RocksDB's unsynced WAL. A group with one synced batch commits synchronously for all.
//   SyncWal() is an empty synced write: every commit before it is durable when it returns.
// - Snapshots are epochs (O(1) to take): every row carries the epoch it was written in (born).
//   Taking snapshot S waits for the writes in flight (an advisory lock they hold shared), then
//   moves the epoch past S. The first overwrite or delete of a row that a snapshot can see moves
//   the old version to cairn_kv_hist (k, upto, born, v), in the same statement's transaction; the
//   live table stays as it is. A read at S sees a live row born at or before S, else the history
//   version valid at S. Dropping S deletes the history no remaining snapshot needs. Snapshots
//   made by an older Cairn (whole-table copies cairn_snap_<id>) are still served and dropped.
// - Point reads (Get) that come together share one query the same way (k = ANY(...)).
// - An iterator holds one connection with a REPEATABLE READ, read-only transaction open: the
//   snapshot of the database when it was made. Rows come in pages of 256.
// - Change notices (PostgreSQL LISTEN/NOTIFY), once Announce is set: a group that changes keys
//   the caller watches also sends, in its transaction, one notice naming its origin and those
//   keys (or "everything" past 7 KiB). PostgreSQL delivers it to every listener after the commit,
//   never for a group that did not commit (a batch of it that met a failed expectation may be
//   named anyway: a listener then drops what did not change). Listen() runs a thread with a
//   connection of its own.
// - Behind a pooler (PgBouncer) in transaction mode, writes, reads, iterators and snapshots keep
//   their meaning (no session state is used); LISTEN needs a session, so the listener needs a
//   direct connection or session pooling.
//
// Thread-safety: all methods may be called from many threads at once; connections come from a
// pool that grows on demand. An iterator is used by one thread. Announce is set before the store
// is shared.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kv/kv_store.h"

namespace cairn::kv {

struct PgOptions {
  // Creates the tables and functions when the database has none (cairn format); otherwise a
  // database without them is refused (kNotFound). A database of an older schema is upgraded.
  bool create_if_missing = false;
  // Connections kept open at most; a caller waits when all are busy.
  int max_connections = 32;
  // Commit groups in flight at once, each on a connection of its own: a lone writer never waits
  // for one, the server's cores work on several, and writers that find all of them busy queue
  // and go together in the next group.
  int max_groups_in_flight = 4;
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
  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<Iterator> NewIterator(std::string_view lower, std::string_view upper) override;
  using KvStore::NewIterator;
  Status SyncWal() override;
  Status Flush() override { return Status::Ok(); }
  Status CreateSnapshot(uint64_t id, const WriteBatch& then) override;
  Result<std::unique_ptr<KvStore>> OpenSnapshot(uint64_t id) override;
  Status DropSnapshot(uint64_t id) override;
  Result<std::vector<uint64_t>> ListSnapshots() override;
  Result<bool> SnapshotsHold(std::string_view key) override;

  // Sends notices from now on. Call before other threads use the store.
  void Announce(PgNotices notices);
  // Hears the notices of notices.channel from other origins and calls handler for each, on a
  // thread of its own with its own connection (reconnecting every second while the server is
  // away). kUnavailable when the first connection fails. One listener per store.
  Status Listen(const PgNotices& notices, PgNoticeHandler handler);
  // Whether the listener is connected now (notices are being heard).
  bool Listening() const;

  // Stops the listener and waits for it (also done by the destructor).
  void StopListening();

  // Commit groups so far, and the batches they carried (their ratio is the mean group size).
  struct GroupStats {
    uint64_t groups = 0, batches = 0;
  };
  GroupStats group_stats() const;

  class Pool;
  class Listener;
  struct Writer;
  struct Reader;
  // What the store serves: the live table, or a snapshot (an epoch, or an older table copy).
  struct Source {
    uint64_t snapshot = 0;  // 0: the live table
    std::string table;      // a table copy of an older Cairn, or empty
  };

 private:
  PgKvStore(std::shared_ptr<Pool> pool, Source source, int max_groups);
  // Whether the batch changes a watched key; then the keys are appended to *keys (hex, comma
  // separated) and *all set when there are too many to name.
  void NoticeKeys(const WriteBatch& batch, std::string* keys, bool* all) const;
  // Sends the group's batches as one transaction; sets each writer's status.
  void CommitGroup(const std::vector<Writer*>& group);
  Result<std::string> GetOne(std::string_view key);
  Status ReadOnly() const;

  std::shared_ptr<Pool> pool_;
  const Source source_;
  const int max_groups_;
  // The reads of the source: get, then scans forward and backward (inclusive, exclusive).
  std::string get_sql_, multi_get_sql_;
  std::array<std::string, 4> scan_sql_;
  PgNotices notices_;
  std::unique_ptr<Listener> listener_;

  std::mutex write_mu_;
  std::deque<Writer*> writers_;  // GUARDED_BY(write_mu_): waiting; the front one leads next
  int in_flight_ = 0;            // GUARDED_BY(write_mu_): groups being committed
  std::mutex read_mu_;
  std::deque<Reader*> readers_;  // GUARDED_BY(read_mu_): point reads waiting for a slot
  int reads_in_flight_ = 0;      // GUARDED_BY(read_mu_)
  GroupStats group_stats_;       // GUARDED_BY(write_mu_)
};

}  // namespace cairn::kv
