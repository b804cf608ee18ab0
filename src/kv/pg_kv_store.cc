#include "kv/pg_kv_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace cairn::kv {
namespace {

constexpr int kPageRows = 256;
// Batches up to this many statements go as one pipeline; larger ones statement by statement
// inside BEGIN/COMMIT (a pipeline that large could fill both socket buffers and stall).
constexpr size_t kMaxPipeline = 512;
constexpr unsigned kByteaOid = 17;
// PostgreSQL refuses notice payloads of 8000 bytes or more; past this a notice says "everything".
constexpr size_t kMaxNoticePayload = 7000;
constexpr std::string_view kMainTable = "cairn_kv";

// Counters are 8 bytes, little-endian two's complement (EncodeCounter). A base that is not a
// counter is replaced, as in the other stores.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cairn_kv (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE IF NOT EXISTS cairn_kv_sync (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO cairn_kv_sync VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION cairn_kv_add(base bytea, delta bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  x bigint := 0;
  y bigint := 0;
  r bytea := '\x0000000000000000';
BEGIN
  FOR i IN REVERSE 7..0 LOOP
    IF length(base) = 8 THEN x := (x << 8) | get_byte(base, i); END IF;
    y := (y << 8) | get_byte(delta, i);
  END LOOP;
  x := x + y;
  FOR i IN 0..7 LOOP
    r := set_byte(r, i, (x & 255)::int);
    x := x >> 8;
  END LOOP;
  RETURN r;
END $$;
CREATE OR REPLACE FUNCTION cairn_kv_expect(key bytea, expected bytea) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  cur bytea;
BEGIN
  -- The advisory lock covers a key that does not exist yet (FOR UPDATE locks only rows); the
  -- SELECT after it sees every commit made before the lock was granted.
  PERFORM pg_advisory_xact_lock(hashtextextended(encode(key, 'hex'), 0));
  SELECT v INTO cur FROM cairn_kv WHERE k = key FOR UPDATE;
  IF cur IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'an expected value does not hold' USING ERRCODE = 'serialization_failure';
  END IF;
END $$;
)sql";

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultFree>;

std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status ConnError(PGconn* pg, std::string_view what) {
  const Code code = PQstatus(pg) == CONNECTION_OK ? Code::kIo : Code::kUnavailable;
  return Status(code, fmt::format("PostgreSQL {}: {}", what, Trimmed(PQerrorMessage(pg))));
}

Status ResultStatus(PGconn* pg, const PGresult* r, std::string_view what) {
  if (r == nullptr) return ConnError(pg, what);
  const ExecStatusType s = PQresultStatus(r);
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return Status::Ok();
  Code code = PQstatus(pg) == CONNECTION_OK ? Code::kIo : Code::kUnavailable;
  // serialization_failure (a failed expectation) and deadlock_detected: the batch did not
  // apply; the caller reads again and reruns it.
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (state != nullptr &&
      (std::string_view(state) == "40001" || std::string_view(state) == "40P01")) {
    code = Code::kConflict;
  }
  return Status(code, fmt::format("PostgreSQL {}: {}", what, Trimmed(PQresultErrorMessage(r))));
}

using Param = std::optional<std::string_view>;  // nullopt: SQL NULL

struct Statement {
  const char* sql;
  std::vector<Param> params;
};

// Binary bytea parameters, results in `format` (1 binary, 0 text).
struct Params {
  explicit Params(const std::vector<Param>& ps) {
    for (const Param& p : ps) {
      values.push_back(p ? p->data() : nullptr);
      lengths.push_back(p ? static_cast<int>(p->size()) : 0);
      formats.push_back(1);
      types.push_back(kByteaOid);
    }
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  std::vector<unsigned> types;
};

PgResult Exec(PGconn* pg, const Statement& st, int format = 1) {
  Params p(st.params);
  return PgResult(PQexecParams(pg, st.sql, static_cast<int>(p.values.size()), p.types.data(),
                               p.values.data(), p.lengths.data(), p.formats.data(), format));
}

void IgnoreNotice(void*, const char*) {}

// Whether an idle connection is still there. A server that went away (restart, failover) closed
// the socket, perhaps after a last FATAL message: the socket shows the hang-up at once, without
// a round trip.
bool Healthy(PGconn* pg) {
  pollfd p{PQsocket(pg), POLLIN | POLLRDHUP, 0};
  if (p.fd < 0 || ::poll(&p, 1, 0) < 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return false;
  if ((p.revents & POLLIN) && PQconsumeInput(pg) != 1) return false;
  return PQstatus(pg) == CONNECTION_OK;
}

}  // namespace

struct Conn {
  PGconn* pg = nullptr;
  std::optional<bool> sync_commit;  // the session's synchronous_commit, when known
};

class PgKvStore::Pool {
 public:
  Pool(std::string conninfo, int max) : conninfo_(std::move(conninfo)), max_(max) {}
  ~Pool() {
    for (Conn* c : idle_) Close(c);
  }

  Result<Conn*> Connect() {
    // Defaults that the caller's connection string overrides (it is expanded last): a server
    // that stops answering (a node cut off, a dead host) fails the call within ~15 s instead of
    // hanging on TCP's retransmissions for many minutes.
    static const char* const kKeys[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
    const char* values[] = {"10", "1", "5", "2", "3", "15000", conninfo_.c_str(), nullptr};
    PGconn* pg = PQconnectdbParams(kKeys, values, /*expand_dbname=*/1);
    if (pg == nullptr) return Err(Code::kNoSpace, "PostgreSQL: out of memory");
    if (PQstatus(pg) != CONNECTION_OK) {
      Status st(Code::kUnavailable,
                fmt::format("PostgreSQL connection failed: {}", Trimmed(PQerrorMessage(pg))));
      PQfinish(pg);
      return Err(st);
    }
    PQsetNoticeProcessor(pg, IgnoreNotice, nullptr);
    return new Conn{pg, std::nullopt};
  }

  Result<Conn*> Take() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
      if (idle_.empty()) break;
      Conn* c = idle_.back();
      idle_.pop_back();
      if (Healthy(c->pg)) return c;
      Close(c);
      --open_;
    }
    ++open_;
    lock.unlock();
    auto c = Connect();
    if (!c) {
      std::lock_guard relock(mu_);
      --open_;
      cv_.notify_one();
    }
    return c;
  }

  void Give(Conn* c) {
    std::lock_guard lock(mu_);
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
      idle_.push_back(c);
    } else {
      Close(c);  // broken, or left inside a transaction: a fresh one next time
      --open_;
    }
    cv_.notify_one();
  }

 private:
  static void Close(Conn* c) {
    PQfinish(c->pg);
    delete c;
  }

  const std::string conninfo_;
  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Conn*> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;             // GUARDED_BY(mu_): connections made and not closed
};

namespace {

// A connection taken from the pool for one call.
class Lease {
 public:
  explicit Lease(PgKvStore::Pool* pool) : pool_(pool) {
    auto c = pool->Take();
    if (c) {
      conn_ = *c;
    } else {
      status_ = c.error();
    }
  }
  ~Lease() {
    if (conn_) pool_->Give(conn_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Conn* conn() const { return conn_; }
  const Status& status() const { return status_; }

 private:
  PgKvStore::Pool* pool_;
  Conn* conn_ = nullptr;
  Status status_;
};

class PgIterator final : public Iterator {
 public:
  // sql: forward inclusive, forward exclusive, backward inclusive, backward exclusive.
  PgIterator(PgKvStore::Pool* pool, const std::array<std::string, 4>* sql, std::string_view lower,
             std::string_view upper)
      : lease_(pool), sql_(sql), lower_(lower), upper_(upper) {
    status_ = lease_.status();
    if (!status_.ok()) return;
    // The snapshot is taken by the first query of the transaction, so one runs at once.
    PgResult r(PQexec(pg(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"));
    status_ = ResultStatus(pg(), r.get(), "begin snapshot");
  }
  ~PgIterator() override {
    if (lease_.conn() != nullptr && PQtransactionStatus(pg()) != PQTRANS_IDLE) {
      PgResult r(PQexec(pg(), "ROLLBACK"));
    }
  }

  void Seek(std::string_view key) override { Load(true, std::string(key), true); }
  void SeekForPrev(std::string_view key) override { Load(false, std::string(key), true); }
  bool Valid() const override { return status_.ok() && pos_ < rows_.size(); }
  void Next() override { Step(true); }
  void Prev() override { Step(false); }
  std::string_view key() const override { return rows_[pos_].first; }
  std::string_view value() const override { return rows_[pos_].second; }
  Status status() const override { return status_; }

 private:
  PGconn* pg() const { return lease_.conn()->pg; }

  void Step(bool forward) {
    if (!Valid()) return;
    if (forward == forward_ && pos_ + 1 < rows_.size()) {
      ++pos_;
    } else if (forward == forward_ && !more_) {
      pos_ = rows_.size();
    } else {
      // The page is used up, or the direction changed: the next page starts past this key.
      Load(forward, std::string(key()), false);
    }
  }

  // Loads the page that starts at key (inclusive or not), walking forward or backward.
  void Load(bool forward, std::string key, bool inclusive) {
    rows_.clear();
    pos_ = 0;
    forward_ = forward;
    more_ = false;
    if (!status_.ok()) return;
    const Param upper = upper_.empty() ? Param() : Param(upper_);
    Statement st;
    if (forward) {
      if (key < lower_) {
        key = lower_;
        inclusive = true;
      }
      st.sql = (*sql_)[inclusive ? 0 : 1].c_str();
      st.params = {key, upper};
    } else {
      st.sql = (*sql_)[inclusive ? 2 : 3].c_str();
      st.params = {key, Param(lower_), upper};
    }
    PgResult r = Exec(pg(), st);
    status_ = ResultStatus(pg(), r.get(), "scan");
    if (!status_.ok()) return;
    const int n = PQntuples(r.get());
    rows_.reserve(n);
    for (int i = 0; i < n; ++i) {
      rows_.emplace_back(std::string(PQgetvalue(r.get(), i, 0), PQgetlength(r.get(), i, 0)),
                         std::string(PQgetvalue(r.get(), i, 1), PQgetlength(r.get(), i, 1)));
    }
    more_ = n == kPageRows;
  }

  Lease lease_;
  const std::array<std::string, 4>* const sql_;
  const std::string lower_;
  const std::string upper_;
  Status status_;
  std::vector<std::pair<std::string, std::string>> rows_;
  size_t pos_ = 0;
  bool forward_ = true;
  bool more_ = false;  // rows may follow the page in its direction
};

// The statements of a batch, in the order that gives the batch its meaning.
std::vector<Statement> BatchStatements(const WriteBatch& batch) {
  std::vector<Statement> out;
  out.reserve(batch.size() + batch.expects().size());
  // Expectations first, in key order, so that two batches lock shared keys in the same order.
  std::vector<const std::pair<std::string, std::optional<std::string>>*> expects;
  for (const auto& e : batch.expects()) expects.push_back(&e);
  std::sort(expects.begin(), expects.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* e : expects) {
    out.push_back(
        {"SELECT cairn_kv_expect($1, $2)", {e->first, e->second ? Param(*e->second) : Param()}});
  }
  for (const auto& [begin, end] : batch.ranges()) {
    out.push_back({"DELETE FROM cairn_kv WHERE k >= $1 AND k < $2", {begin, end}});
  }
  for (const auto& op : batch.ops()) {
    switch (op.kind) {
      case WriteBatch::Kind::kPut:
        out.push_back(
            {"INSERT INTO cairn_kv (k, v) VALUES ($1, $2) "
             "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
             {op.key, op.value}});
        break;
      case WriteBatch::Kind::kDelete:
        out.push_back({"DELETE FROM cairn_kv WHERE k = $1", {op.key}});
        break;
      case WriteBatch::Kind::kAdd:
        out.push_back(
            {"INSERT INTO cairn_kv (k, v) VALUES ($1, $2) "
             "ON CONFLICT (k) DO UPDATE SET v = cairn_kv_add(cairn_kv.v, EXCLUDED.v)",
             {op.key, op.value}});
        break;
    }
  }
  return out;
}

// One implicit transaction: everything up to the sync point commits or nothing does.
Status RunPipeline(PGconn* pg, const std::vector<Statement>& statements) {
  if (PQenterPipelineMode(pg) != 1) return ConnError(pg, "pipeline");
  Status st;
  size_t sent = 0;
  for (const Statement& s : statements) {
    Params p(s.params);
    if (PQsendQueryParams(pg, s.sql, static_cast<int>(p.values.size()), p.types.data(),
                          p.values.data(), p.lengths.data(), p.formats.data(), 1) != 1) {
      st = ConnError(pg, "send");
      break;
    }
    ++sent;
  }
  if (PQpipelineSync(pg) != 1 && st.ok()) st = ConnError(pg, "sync");
  // Each statement's results end with a null; the sync point ends the pipeline.
  size_t nulls = 0;
  for (;;) {
    PgResult r(PQgetResult(pg));
    if (!r) {
      if (++nulls > sent + 1 || PQstatus(pg) != CONNECTION_OK) {
        if (st.ok()) st = ConnError(pg, "write");
        break;
      }
      continue;
    }
    const ExecStatusType s = PQresultStatus(r.get());
    if (s == PGRES_PIPELINE_SYNC) break;
    if (s == PGRES_PIPELINE_ABORTED) continue;  // skipped after an earlier failure
    if (Status e = ResultStatus(pg, r.get(), "write"); !e.ok() && st.ok()) st = e;
  }
  PQexitPipelineMode(pg);
  return st;
}

Status RunTransaction(PGconn* pg, const std::vector<Statement>& statements) {
  PgResult begin(PQexec(pg, "BEGIN"));
  CAIRN_RETURN_IF_ERROR(ResultStatus(pg, begin.get(), "begin"));
  for (const Statement& s : statements) {
    PgResult r = Exec(pg, s);
    Status st = ResultStatus(pg, r.get(), "write");
    if (!st.ok()) {
      PgResult rollback(PQexec(pg, "ROLLBACK"));
      return st;
    }
  }
  PgResult commit(PQexec(pg, "COMMIT"));
  return ResultStatus(pg, commit.get(), "commit");
}

Status SetSyncCommit(Conn* c, bool sync) {
  if (c->sync_commit == sync) return Status::Ok();
  PgResult r(PQexec(c->pg, sync ? "SET synchronous_commit = on" : "SET synchronous_commit = off"));
  CAIRN_RETURN_IF_ERROR(ResultStatus(c->pg, r.get(), "set synchronous_commit"));
  c->sync_commit = sync;
  return Status::Ok();
}

}  // namespace

bool PlainIdentifier(std::string_view name) {
  return !name.empty() && name.size() < 64 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

PgKvStore::PgKvStore(std::unique_ptr<Pool> pool, std::string table)
    : pool_(std::move(pool)), table_(std::move(table)) {
  get_sql_ = fmt::format("SELECT v FROM {} WHERE k = $1", table_);
  scan_sql_ = {
      fmt::format("SELECT k, v FROM {} WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY "
                  "k LIMIT {}",
                  table_, kPageRows),
      fmt::format("SELECT k, v FROM {} WHERE k > $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY "
                  "k LIMIT {}",
                  table_, kPageRows),
      fmt::format("SELECT k, v FROM {} WHERE k <= $1 AND k >= $2 AND ($3::bytea IS NULL OR k < "
                  "$3) ORDER BY k DESC LIMIT {}",
                  table_, kPageRows),
      fmt::format("SELECT k, v FROM {} WHERE k < $1 AND k >= $2 AND ($3::bytea IS NULL OR k < "
                  "$3) ORDER BY k DESC LIMIT {}",
                  table_, kPageRows)};
}
PgKvStore::~PgKvStore() { StopListening(); }

Result<std::unique_ptr<PgKvStore>> PgKvStore::Open(const std::string& conninfo,
                                                   const PgOptions& options) {
  if (options.max_connections < 1) return Err(Code::kInvalid, "max_connections must be >= 1");
  if (!PlainIdentifier(options.table)) {
    return Err(Code::kInvalid, fmt::format("bad table name '{}'", options.table));
  }
  const bool main_table = options.table == kMainTable;
  auto pool = std::make_unique<Pool>(conninfo, options.max_connections);
  {
    Lease lease(pool.get());
    CAIRN_RETURN_IF_ERROR(lease.status());
    PGconn* pg = lease.conn()->pg;
    if (PQserverVersion(pg) < 140000) {
      return Err(Code::kNotSupported,
                 fmt::format("PostgreSQL {} is too old: Cairn needs 14 or newer (pipelines)",
                             PQserverVersion(pg) / 10000));
    }
    if (!main_table) {
      PgResult r(
          PQexec(pg, fmt::format("SELECT to_regclass('{}') IS NOT NULL", options.table).c_str()));
      CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "check table"));
      if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
        return Err(Code::kNotFound,
                   fmt::format("database {} has no table {}", PQdb(pg), options.table));
      }
    } else if (options.create_if_missing) {
      PgResult r(PQexec(pg, kSchema));
      CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "create schema"));
    } else {
      PgResult r(PQexec(pg,
                        "SELECT to_regclass('cairn_kv') IS NOT NULL AND "
                        "to_regclass('cairn_kv_sync') IS NOT NULL AND "
                        "to_regprocedure('cairn_kv_add(bytea,bytea)') IS NOT NULL AND "
                        "to_regprocedure('cairn_kv_expect(bytea,bytea)') IS NOT NULL"));
      CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "check schema"));
      if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
        return Err(Code::kNotFound,
                   fmt::format("database {} holds no Cairn metadata (table cairn_kv)", PQdb(pg)));
      }
    }
  }
  return std::unique_ptr<PgKvStore>(new PgKvStore(std::move(pool), options.table));
}

Result<std::string> PgKvStore::Get(std::string_view key) {
  for (int attempt = 0;; ++attempt) {
    Lease lease(pool_.get());
    CAIRN_RETURN_IF_ERROR(lease.status());
    PGconn* pg = lease.conn()->pg;
    PgResult r = Exec(pg, {get_sql_.c_str(), {key}});
    Status st = ResultStatus(pg, r.get(), "get");
    // A connection that broke under the query is replaced once: a read is safe to repeat.
    if (!st.ok() && PQstatus(pg) != CONNECTION_OK && attempt == 0) continue;
    CAIRN_RETURN_IF_ERROR(st);
    if (PQntuples(r.get()) == 0) return Err(Code::kNotFound);
    return std::string(PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0));
  }
}

Status PgKvStore::Write(const WriteBatch& batch, bool sync) {
  if (table_ != kMainTable) return Status(Code::kReadOnly, table_ + " is read-only");
  if (batch.empty()) return Status::Ok();
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  Conn* c = lease.conn();
  CAIRN_RETURN_IF_ERROR(SetSyncCommit(c, sync));
  std::vector<Statement> statements = BatchStatements(batch);
  std::string payload;
  if (NoticeFor(batch, &payload)) statements.push_back({notify_sql_.c_str(), {payload}});
  return statements.size() <= kMaxPipeline ? RunPipeline(c->pg, statements)
                                           : RunTransaction(c->pg, statements);
}

std::unique_ptr<Iterator> PgKvStore::NewIterator(std::string_view lower, std::string_view upper) {
  return std::make_unique<PgIterator>(pool_.get(), &scan_sql_, lower, upper);
}

Status PgKvStore::SyncWal() {
  // A synchronous commit of a transaction that wrote WAL waits until the WAL is flushed up to
  // its commit record, and with it every asynchronous commit before. (A transaction that wrote
  // nothing commits without a flush, so this one updates a row.)
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  Conn* c = lease.conn();
  CAIRN_RETURN_IF_ERROR(SetSyncCommit(c, true));
  PgResult r(PQexec(c->pg, "UPDATE cairn_kv_sync SET n = n + 1 WHERE id = 1"));
  return ResultStatus(c->pg, r.get(), "sync");
}

Status PgKvStore::CopyTable(std::string_view name) {
  if (!PlainIdentifier(name) || name == kMainTable) {
    return Status(Code::kInvalid, fmt::format("bad table name '{}'", name));
  }
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  Conn* c = lease.conn();
  CAIRN_RETURN_IF_ERROR(SetSyncCommit(c, true));
  // Several statements in one query string run as one transaction; CREATE TABLE AS reads under
  // one snapshot.
  const std::string sql = fmt::format(
      "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} AS SELECT k, v FROM {1}; "
      "ALTER TABLE {0} ADD PRIMARY KEY (k)",
      name, table_);
  PgResult r(PQexec(c->pg, sql.c_str()));
  return ResultStatus(c->pg, r.get(), "copy table");
}

Status PgKvStore::DropTable(std::string_view name) {
  if (!PlainIdentifier(name) || name == kMainTable) {
    return Status(Code::kInvalid, fmt::format("bad table name '{}'", name));
  }
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  PGconn* pg = lease.conn()->pg;
  PgResult r(PQexec(pg, fmt::format("DROP TABLE IF EXISTS {}", name).c_str()));
  return ResultStatus(pg, r.get(), "drop table");
}

Result<std::vector<std::string>> PgKvStore::ListTables(std::string_view prefix) {
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  PGconn* pg = lease.conn()->pg;
  PgResult r = Exec(pg,
                    {"SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND "
                     "left(tablename, length(convert_from($1, 'UTF8'))) = convert_from($1, "
                     "'UTF8') ORDER BY tablename",
                     {prefix}},
                    0);
  CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "list tables"));
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) out.emplace_back(PQgetvalue(r.get(), i, 0));
  return out;
}

struct PgAdvisoryLock::Held {
  explicit Held(PgKvStore::Pool* pool) : lease(pool) {}
  Lease lease;
};

PgAdvisoryLock::PgAdvisoryLock(std::unique_ptr<Held> held) : held_(std::move(held)) {}

PgAdvisoryLock::~PgAdvisoryLock() {
  // A connection that broke has lost the lock with it, and the pool closes it.
  PGconn* pg = held_->lease.conn()->pg;
  PgResult r(PQexec(pg, "SELECT pg_advisory_unlock_all()"));
}

Result<std::unique_ptr<PgAdvisoryLock>> PgKvStore::Lock(int64_t key, bool exclusive) {
  auto held = std::make_unique<PgAdvisoryLock::Held>(pool_.get());
  CAIRN_RETURN_IF_ERROR(held->lease.status());
  PGconn* pg = held->lease.conn()->pg;
  const std::string sql =
      fmt::format("SELECT pg_advisory_lock{}({})", exclusive ? "" : "_shared", key);
  PgResult r(PQexec(pg, sql.c_str()));
  CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "lock"));
  return std::make_unique<PgAdvisoryLock>(std::move(held));
}

// Notices: "<origin>;<key in hex>,<key in hex>..." or "<origin>;*" (everything).
void PgKvStore::Announce(PgNotices notices) {
  notices_ = std::move(notices);
  notify_sql_ = fmt::format("SELECT pg_notify('{}', convert_from($1, 'UTF8'))", notices_.channel);
}

bool PgKvStore::NoticeFor(const WriteBatch& batch, std::string* payload) const {
  if (!notices_.watched) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string keys;
  bool all = false;
  for (const auto& [begin, end] : batch.ranges()) all |= notices_.watched(begin);
  for (const auto& op : batch.ops()) {
    if (all || keys.size() > kMaxNoticePayload) {
      all = true;
      break;
    }
    if (!notices_.watched(op.key)) continue;
    if (!keys.empty()) keys += ',';
    for (unsigned char ch : op.key) {
      keys += kHex[ch >> 4];
      keys += kHex[ch & 15];
    }
  }
  if (!all && keys.empty()) return false;
  *payload = notices_.origin + ";" + (all || keys.size() > kMaxNoticePayload ? "*" : keys);
  return true;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses a notice; false for another origin's format or for this origin's own notices.
bool ParseNotice(std::string_view payload, std::string_view own, bool* all,
                 std::vector<std::string>* keys) {
  const size_t semi = payload.find(';');
  if (semi == std::string_view::npos || payload.substr(0, semi) == own) return false;
  std::string_view rest = payload.substr(semi + 1);
  *all = rest == "*";
  keys->clear();
  while (!*all && !rest.empty()) {
    const size_t comma = std::min(rest.find(','), rest.size());
    std::string_view hex = rest.substr(0, comma);
    std::string key;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      const int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
      if (hi < 0 || lo < 0) return false;
      key += static_cast<char>(hi << 4 | lo);
    }
    keys->push_back(std::move(key));
    rest.remove_prefix(std::min(rest.size(), comma + 1));
  }
  return true;
}

}  // namespace

class PgKvStore::Listener {
 public:
  Listener(Pool* pool, PgNotices notices, PgNoticeHandler handler)
      : pool_(pool), notices_(std::move(notices)), handler_(std::move(handler)) {}
  ~Listener() {
    Stop();
    Close();
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }

  Status Start() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return Status(Code::kIo, "pipe for the notice listener failed");
    }
    CAIRN_RETURN_IF_ERROR(Connect());
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
  }

 private:
  Status Connect() {
    CAIRN_ASSIGN_OR_RETURN(conn_, pool_->Connect());
    PgResult r(PQexec(conn_->pg, fmt::format("LISTEN {}", notices_.channel).c_str()));
    Status st = ResultStatus(conn_->pg, r.get(), "listen");
    if (!st.ok()) Close();
    return st;
  }
  void Close() {
    if (conn_ == nullptr) return;
    PQfinish(conn_->pg);
    delete conn_;
    conn_ = nullptr;
  }

  void Loop() {
    bool all = false;
    std::vector<std::string> keys;
    while (!stop_) {
      if (conn_ == nullptr) {
        if (!Connect().ok()) {
          pollfd w{wake_[0], POLLIN, 0};
          ::poll(&w, 1, 1000);
          continue;
        }
        handler_(nullptr);  // what changed while the connection was away is unknown
      }
      pollfd fds[2] = {{PQsocket(conn_->pg), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, 5000) < 0) continue;
      if (stop_) break;
      if (fds[0].revents != 0 && PQconsumeInput(conn_->pg) != 1) {
        Close();  // the server went away: reconnect
        continue;
      }
      while (PGnotify* n = PQnotifies(conn_->pg)) {
        if (ParseNotice(n->extra, notices_.origin, &all, &keys)) handler_(all ? nullptr : &keys);
        PQfreemem(n);
      }
      if (PQstatus(conn_->pg) != CONNECTION_OK) Close();
    }
  }

  Pool* const pool_;
  const PgNotices notices_;
  const PgNoticeHandler handler_;
  Conn* conn_ = nullptr;  // used by the listener's thread only, once started
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Status PgKvStore::Listen(const PgNotices& notices, PgNoticeHandler handler) {
  if (listener_) return Err(Code::kBusy, "the store already listens");
  auto listener = std::make_unique<Listener>(pool_.get(), notices, std::move(handler));
  CAIRN_RETURN_IF_ERROR(listener->Start());
  listener_ = std::move(listener);
  return Status::Ok();
}

void PgKvStore::StopListening() {
  if (listener_) listener_->Stop();
  listener_.reset();
}

}  // namespace cairn::kv
