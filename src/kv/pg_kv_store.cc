#include "kv/pg_kv_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/logging.h"

namespace cairn::kv {
namespace {

constexpr int kPageRows = 256;
// A commit group carries at most this many batches, and once it holds this many operations it
// takes no more (a single larger batch still goes, alone).
constexpr size_t kMaxGroup = 256;

constexpr size_t kMaxGroupOps = 20000;
constexpr unsigned kByteaOid = 17;
constexpr unsigned kTextOid = 25;
constexpr unsigned kByteaArrayOid = 1001;
// PostgreSQL refuses notice payloads of 8000 bytes or more; past this a notice says "everything".
constexpr size_t kMaxNoticePayload = 7000;
// The schema this code writes (cairn_kv_epoch.version): 1 had no epochs (cluster snapshots were
// table copies), 2 is the epochs, the history table and the batch function.
constexpr int kSchemaVersion = 2;

// Counters are 8 bytes, little-endian two's complement (EncodeCounter). A base that is not a
// counter is replaced, as in the other stores. Everything is idempotent: the same text creates a
// database's schema and upgrades an older one, under an advisory lock so that two nodes never
// run it at once. Dropping cairn_kv_expect keeps a Cairn of schema 1 from opening the database
// again (it checks for that function) once it has been upgraded.
constexpr const char* kSchema = R"sql(
SELECT pg_advisory_xact_lock(4855277813480244040);
CREATE TABLE IF NOT EXISTS cairn_kv (k bytea PRIMARY KEY, v bytea NOT NULL,
                                     born bigint NOT NULL DEFAULT 0);
ALTER TABLE cairn_kv ADD COLUMN IF NOT EXISTS born bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS cairn_kv_hist (k bytea NOT NULL, upto bigint NOT NULL,
                                          born bigint NOT NULL, v bytea NOT NULL,
                                          PRIMARY KEY (k, upto));
CREATE TABLE IF NOT EXISTS cairn_kv_sync (id int PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE IF NOT EXISTS cairn_kv_epoch (id int PRIMARY KEY, epoch bigint NOT NULL,
                                           last_snap bigint NOT NULL, version int NOT NULL);
INSERT INTO cairn_kv_epoch VALUES (1, 1, 0, 2) ON CONFLICT (id) DO UPDATE SET version = 2;
CREATE TABLE IF NOT EXISTS cairn_kv_snaps (id bigint PRIMARY KEY);
DROP FUNCTION IF EXISTS cairn_kv_expect(bytea, bytea);
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
-- First in every write transaction: its durability, and the epoch it writes in. The shared
-- advisory lock is what a snapshot waits for (cairn_kv_snapshot_create takes it exclusive).
CREATE OR REPLACE FUNCTION cairn_kv_begin(sync text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ep bigint;
  lsnap bigint;
BEGIN
  PERFORM set_config('synchronous_commit', sync, true);
  PERFORM pg_advisory_xact_lock_shared(4855277813480246864);
  SELECT epoch, last_snap INTO ep, lsnap FROM cairn_kv_epoch WHERE id = 1;
  PERFORM set_config('cairn.epoch', ep::text, true);
  PERFORM set_config('cairn.last_snap', lsnap::text, true);
  PERFORM set_config('cairn.applied', '', true);
END $$;
-- Advisory locks on keys, in the order given (sorted by the caller): a group with several
-- batches that expect values takes them all first, so two groups never wait for each other in
-- a cycle.
CREATE OR REPLACE FUNCTION cairn_kv_lock(keys bytea[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  key bytea;
BEGIN
  FOREACH key IN ARRAY keys LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(encode(key, 'hex'), 0));
  END LOOP;
END $$;
-- One WriteBatch. Its expectations are checked before it writes anything: when one does not
-- hold it returns false having written nothing (the rest of the transaction goes on). A row that
-- a snapshot can see (born at or before the last snapshot) is copied to the history before its
-- first overwrite or delete. notice: the changed keys to announce ('*': anything), added to the
-- transaction's one notice (cairn_kv_notify) only when the batch applies.
CREATE OR REPLACE FUNCTION cairn_kv_batch(ek bytea[], ev bytea[], rb bytea[], re bytea[],
                                          kinds bytea, ks bytea[], vs bytea[], notice text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ep bigint := current_setting('cairn.epoch')::bigint;
  lsnap bigint := current_setting('cairn.last_snap')::bigint;
  cur bytea;
  r record;
BEGIN
  FOR r IN SELECT x.key, x.want FROM unnest(ek, ev) AS x(key, want) LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(encode(r.key, 'hex'), 0));
    cur := NULL;
    SELECT t.v INTO cur FROM cairn_kv t WHERE t.k = r.key FOR UPDATE;
    IF cur IS DISTINCT FROM r.want THEN
      PERFORM set_config('cairn.applied',
                         coalesce(current_setting('cairn.applied', true), '') || '0', true);
      RETURN false;
    END IF;
  END LOOP;
  PERFORM set_config('cairn.applied',
                     coalesce(current_setting('cairn.applied', true), '') || '1', true);
  FOR r IN SELECT x.lo, x.hi FROM unnest(rb, re) AS x(lo, hi) LOOP
    IF lsnap > 0 THEN
      INSERT INTO cairn_kv_hist (k, upto, born, v)
        SELECT t.k, ep, t.born, t.v FROM cairn_kv t WHERE t.k >= r.lo AND t.k < r.hi
                                                      AND t.born <= lsnap
        ON CONFLICT DO NOTHING;
    END IF;
    DELETE FROM cairn_kv t WHERE t.k >= r.lo AND t.k < r.hi;
  END LOOP;
  FOR r IN SELECT x.key, x.val, x.i FROM unnest(ks, vs) WITH ORDINALITY AS x(key, val, i) LOOP
    IF lsnap > 0 THEN
      INSERT INTO cairn_kv_hist (k, upto, born, v)
        SELECT t.k, ep, t.born, t.v FROM cairn_kv t WHERE t.k = r.key AND t.born <= lsnap
        ON CONFLICT DO NOTHING;
    END IF;
    CASE get_byte(kinds, (r.i - 1)::int)
      WHEN 112 THEN
        INSERT INTO cairn_kv AS t (k, v, born) VALUES (r.key, r.val, ep)
          ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, born = EXCLUDED.born;
      WHEN 100 THEN
        DELETE FROM cairn_kv t WHERE t.k = r.key;
      ELSE
        INSERT INTO cairn_kv AS t (k, v, born) VALUES (r.key, r.val, ep)
          ON CONFLICT (k) DO UPDATE SET v = cairn_kv_add(t.v, EXCLUDED.v), born = EXCLUDED.born;
    END CASE;
  END LOOP;
  IF coalesce(notice, '') <> '' THEN
    PERFORM set_config('cairn.notice',
      CASE WHEN notice = '*' OR coalesce(current_setting('cairn.notice', true), '') = '*'
                OR length(coalesce(current_setting('cairn.notice', true), '')) > 7000 THEN '*'
           WHEN coalesce(current_setting('cairn.notice', true), '') = '' THEN notice
           ELSE current_setting('cairn.notice', true) || ',' || notice END, true);
  END IF;
  RETURN true;
END $$;
-- The counter adds of a group's batches, summed per key and applied in key order at the end of
-- the transaction (so that two groups never take counter rows in opposite orders): owners[i] is
-- the position of the batch that adds deltas[i] to keys[i], counted only when it applied.
CREATE OR REPLACE FUNCTION cairn_kv_adds(keys bytea[], deltas bytea[], owners int[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ep bigint := current_setting('cairn.epoch')::bigint;
  lsnap bigint := current_setting('cairn.last_snap')::bigint;
  applied text := coalesce(current_setting('cairn.applied', true), '');
  r record;
BEGIN
  FOR r IN SELECT x.key, x.delta FROM unnest(keys, deltas, owners) AS x(key, delta, owner)
           WHERE substr(applied, x.owner + 1, 1) = '1' LOOP
    IF lsnap > 0 THEN
      INSERT INTO cairn_kv_hist (k, upto, born, v)
        SELECT t.k, ep, t.born, t.v FROM cairn_kv t WHERE t.k = r.key AND t.born <= lsnap
        ON CONFLICT DO NOTHING;
    END IF;
    INSERT INTO cairn_kv AS t (k, v, born) VALUES (r.key, r.delta, ep)
      ON CONFLICT (k) DO UPDATE SET v = cairn_kv_add(t.v, EXCLUDED.v), born = EXCLUDED.born;
  END LOOP;
END $$;
-- Last in a write transaction: one notice for every batch of it that applied.
CREATE OR REPLACE FUNCTION cairn_kv_notify(channel text, origin text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  keys text := coalesce(current_setting('cairn.notice', true), '');
BEGIN
  IF keys <> '' THEN
    PERFORM pg_notify(channel, origin || ';' || keys);
    PERFORM set_config('cairn.notice', '', true);
  END IF;
END $$;
-- Fails the transaction when a batch that must apply did not (snapshot creation's record).
CREATE OR REPLACE FUNCTION cairn_kv_require(applied boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF NOT applied THEN
    RAISE EXCEPTION 'an expected value does not hold' USING ERRCODE = 'serialization_failure';
  END IF;
  RETURN true;
END $$;
-- A synchronous commit that wrote nothing does not flush the WAL: a synced group without writes
-- updates this backend's row, so that its commit flushes every commit before it.
CREATE OR REPLACE FUNCTION cairn_kv_synced() RETURNS void
LANGUAGE sql VOLATILE AS $$
  INSERT INTO cairn_kv_sync VALUES (pg_backend_pid(), 1)
  ON CONFLICT (id) DO UPDATE SET n = cairn_kv_sync.n + 1;
$$;
-- Snapshot s: waits for every write transaction in flight (they hold the lock shared), then
-- moves the epoch past s. What the same transaction writes afterwards is born after s.
CREATE OR REPLACE FUNCTION cairn_kv_snapshot_create(s bigint) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ep bigint;
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  PERFORM pg_advisory_xact_lock(4855277813480246864);
  SELECT epoch INTO ep FROM cairn_kv_epoch WHERE id = 1 FOR UPDATE;
  IF EXISTS (SELECT 1 FROM cairn_kv_snaps WHERE id = s)
     OR to_regclass('cairn_snap_' || s) IS NOT NULL THEN
    RAISE EXCEPTION 'snapshot % exists', s USING ERRCODE = 'unique_violation';
  END IF;
  IF s < ep THEN
    RAISE EXCEPTION 'snapshot id % is not above the ids taken before', s
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE cairn_kv_epoch SET epoch = s + 1, last_snap = s WHERE id = 1;
  INSERT INTO cairn_kv_snaps VALUES (s);
  PERFORM set_config('cairn.epoch', (s + 1)::text, true);
  PERFORM set_config('cairn.last_snap', s::text, true);
END $$;
-- Drops snapshot s (an epoch or an older table copy). The history it alone needed is deleted by
-- a second transaction (cairn_kv_snapshot_purge), so that writers wait only for this one.
CREATE OR REPLACE FUNCTION cairn_kv_snapshot_drop(s bigint) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  PERFORM pg_advisory_xact_lock(4855277813480246864);
  DELETE FROM cairn_kv_snaps WHERE id = s;
  UPDATE cairn_kv_epoch SET last_snap = coalesce((SELECT max(id) FROM cairn_kv_snaps), 0)
    WHERE id = 1;
  EXECUTE format('DROP TABLE IF EXISTS %I', 'cairn_snap_' || s);
END $$;
CREATE OR REPLACE FUNCTION cairn_kv_snapshot_purge(s bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM cairn_kv_hist h WHERE h.born <= s AND h.upto > s
    AND NOT EXISTS (SELECT 1 FROM cairn_kv_snaps x WHERE x.id >= h.born AND x.id < h.upto);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
-- In every read of a snapshot: it raises (no_data_found) once the snapshot is gone, so that a
-- read never answers from what the live table holds now instead. STABLE with a constant
-- argument: the planner runs it once per statement.
CREATE OR REPLACE FUNCTION cairn_kv_snap_alive(s bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM cairn_kv_snaps WHERE id = s) THEN
    RAISE EXCEPTION 'snapshot % was deleted', s USING ERRCODE = 'no_data_found';
  END IF;
  RETURN true;
END $$;
-- Whether a snapshot holds a version of key: an epoch snapshot sees the live row or a version in
-- the history, a table copy of an older Cairn its own row.
CREATE OR REPLACE FUNCTION cairn_kv_snapshots_hold(key bytea) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t text;
  found_it boolean;
BEGIN
  IF EXISTS (SELECT 1 FROM cairn_kv l JOIN cairn_kv_snaps x ON x.id >= l.born WHERE l.k = key)
     OR EXISTS (SELECT 1 FROM cairn_kv_hist h JOIN cairn_kv_snaps x
                  ON x.id >= h.born AND x.id < h.upto WHERE h.k = key) THEN
    RETURN true;
  END IF;
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                                           AND tablename ~ '^cairn_snap_[0-9]+$' LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE k = $1)', t) INTO found_it USING key;
    IF found_it THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
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
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const std::string_view sqlstate = state ? state : "";
  // serialization_failure and deadlock_detected: the transaction did not apply; the caller reads
  // again and reruns it.
  if (sqlstate == "40001" || sqlstate == "40P01") code = Code::kConflict;
  if (sqlstate == "23505") code = Code::kExists;    // a snapshot id in use
  if (sqlstate == "22023") code = Code::kInvalid;   // a snapshot id too small
  if (sqlstate == "P0002") code = Code::kNotFound;  // a snapshot that was deleted
  return Status(code, fmt::format("PostgreSQL {}: {}", what, Trimmed(PQresultErrorMessage(r))));
}

// A statement parameter: bytea (binary) unless said otherwise.
struct Param {
  std::optional<std::string_view> value;  // nullopt: SQL NULL
  unsigned oid = kByteaOid;
  int format = 1;  // binary
  Param() = default;
  Param(std::string_view v) : value(v) {}    // NOLINT(runtime/explicit)
  Param(const std::string& v) : value(v) {}  // NOLINT(runtime/explicit)
  // A text value; must point at NUL-terminated bytes.
  static Param Text(const char* v) {
    Param p{std::string_view(v)};
    p.oid = kTextOid;
    p.format = 0;
    return p;
  }
  static Param Array(std::string_view encoded) {
    Param p{encoded};
    p.oid = kByteaArrayOid;
    return p;
  }
};

struct Statement {
  const char* sql;
  std::vector<Param> params;
};

struct Params {
  explicit Params(const std::vector<Param>& ps) {
    for (const Param& p : ps) {
      values.push_back(p.value ? p.value->data() : nullptr);
      lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
      formats.push_back(p.format);
      types.push_back(p.oid);
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

// A bytea[] in PostgreSQL's binary array format: dimensions, a null flag, the element type, then
// each element as a 32-bit big-endian length (-1: NULL) and its bytes.
class ByteaArray {
 public:
  void Add(std::optional<std::string_view> v) {
    Put32(v ? static_cast<int32_t>(v->size()) : -1);
    if (v) body_.append(*v);
    nulls_ |= !v;
    ++n_;
  }
  std::string Encode() const {
    std::string out;
    const auto put = [&out](int32_t x) {
      for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
    };
    put(n_ > 0 ? 1 : 0);
    put(nulls_ ? 1 : 0);
    put(static_cast<int32_t>(kByteaOid));
    if (n_ > 0) {
      put(n_);
      put(1);
    }
    out += body_;
    return out;
  }

 private:
  void Put32(int32_t x) {
    for (int i = 3; i >= 0; --i) body_.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
  }
  std::string body_;
  int32_t n_ = 0;
  bool nulls_ = false;
};

// One batch as the arguments of cairn_kv_batch. defer_adds: its counter adds are left out (the
// group applies them at its end, CommitGroup).
struct EncodedBatch {
  std::string ek, ev, rb, re, kinds, ks, vs;
  bool writes = false;
  EncodedBatch(const WriteBatch& batch, bool defer_adds) {
    // Expectations in key order, so that two batches lock shared keys in the same order.
    std::vector<const std::pair<std::string, std::optional<std::string>>*> expects;
    for (const auto& e : batch.expects()) expects.push_back(&e);
    std::sort(expects.begin(), expects.end(), [](auto* a, auto* b) { return a->first < b->first; });
    ByteaArray keys, wants, los, his, okeys, ovals;
    for (const auto* e : expects) {
      keys.Add(e->first);
      wants.Add(e->second ? std::optional<std::string_view>(*e->second) : std::nullopt);
    }
    for (const auto& [lo, hi] : batch.ranges()) {
      los.Add(lo);
      his.Add(hi);
    }
    for (const auto& op : batch.ops()) {
      writes = true;
      if (defer_adds && op.kind == WriteBatch::Kind::kAdd) continue;
      okeys.Add(op.key);
      ovals.Add(op.value);
      kinds.push_back(op.kind == WriteBatch::Kind::kPut      ? 'p'
                      : op.kind == WriteBatch::Kind::kDelete ? 'd'
                                                             : 'a');
    }
    ek = keys.Encode();
    ev = wants.Encode();
    rb = los.Encode();
    re = his.Encode();
    ks = okeys.Encode();
    vs = ovals.Encode();
    writes |= !batch.ranges().empty();
  }
  // required: the transaction fails unless the batch applies. notice: the keys to announce if it
  // applies (hex, comma separated; "*": anything), as a NUL-terminated text.
  Statement Call(bool required = false, const char* notice = "") const {
    return {required ? "SELECT cairn_kv_require(cairn_kv_batch($1, $2, $3, $4, $5, $6, $7, $8))"
                     : "SELECT cairn_kv_batch($1, $2, $3, $4, $5, $6, $7, $8)",
            {Param::Array(ek), Param::Array(ev), Param::Array(rb), Param::Array(re), kinds,
             Param::Array(ks), Param::Array(vs), Param::Text(notice)}};
  }
};

// Whether a group's counter adds may wait to its end: they commute with each other, but not with
// a put or delete of the same key, nor with a range delete (the rare batches that write counters
// outright: an upgrade's totals, a restore's copy).
bool CanDeferAdds(const std::vector<const WriteBatch*>& batches) {
  std::unordered_set<std::string_view> added, written;
  for (const WriteBatch* b : batches) {
    if (!b->ranges().empty()) return false;
    for (const auto& op : b->ops()) {
      (op.kind == WriteBatch::Kind::kAdd ? added : written).insert(op.key);
    }
  }
  for (std::string_view k : added) {
    if (written.count(k)) return false;
  }
  return true;
}

// Sends statements as one pipeline (one round trip) and collects one result per statement. The
// first failure is returned; statements after it in the same transaction did not run.
Status RunPipeline(PGconn* pg, const std::vector<Statement>& statements,
                   std::vector<PgResult>* results) {
  results->clear();
  results->resize(statements.size());
  if (PQenterPipelineMode(pg) != 1) return ConnError(pg, "pipeline");
  Status st;
  size_t sent = 0;
  for (const Statement& s : statements) {
    Params p(s.params);
    if (PQsendQueryParams(pg, s.sql, static_cast<int>(p.values.size()), p.types.data(),
                          p.values.data(), p.lengths.data(), p.formats.data(), 0) != 1) {
      st = ConnError(pg, "send");
      break;
    }
    ++sent;
  }
  if (PQpipelineSync(pg) != 1 && st.ok()) st = ConnError(pg, "sync");
  // Each statement's results end with a null; the sync point ends the pipeline.
  size_t index = 0;
  for (size_t nulls = 0;;) {
    PgResult r(PQgetResult(pg));
    if (!r) {
      ++index;
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
    if (index < results->size()) (*results)[index] = std::move(r);
  }
  PQexitPipelineMode(pg);
  return st;
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
  // Results still to be read (an iterator's ROLLBACK, sent in pipeline mode without waiting; its
  // sync point counts as one); Pool::Take reads them before the connection is used again.
  int unread = 0;
};

namespace {

// Reads what an earlier user left unread and leaves pipeline mode; false when the connection is
// broken or left in a transaction.
bool Settle(Conn* c) {
  while (c->unread > 0) {
    PGresult* r = PQgetResult(c->pg);
    if (r == nullptr) {
      if (PQstatus(c->pg) != CONNECTION_OK) return false;
      --c->unread;
      continue;
    }
    const ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) --c->unread;  // a sync point ends with no null after it
  }
  if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF && PQexitPipelineMode(c->pg) != 1) return false;
  return PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

}  // namespace

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
    return new Conn{pg, 0};
  }

  Result<Conn*> Take() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
      if (idle_.empty()) break;
      Conn* c = idle_.back();
      idle_.pop_back();
      if (Settle(c) && Healthy(c->pg)) return c;
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
    if (PQstatus(c->pg) == CONNECTION_OK &&
        (c->unread > 0 || PQtransactionStatus(c->pg) == PQTRANS_IDLE)) {
      idle_.push_back(c);
    } else {
      Close(c);  // broken, or left inside a transaction: a fresh one next time
      --open_;
    }
    cv_.notify_one();
  }

  const std::string& conninfo() const { return conninfo_; }

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
  PGconn* pg() const { return conn_->pg; }
  const Status& status() const { return status_; }

 private:
  PgKvStore::Pool* pool_;
  Conn* conn_ = nullptr;
  Status status_;
};

// The iterator speaks to its connection in pipeline mode, so that a scan of one page (the usual
// case: one file's extents, one directory page) costs one round trip: BEGIN and the query that
// takes the snapshot are sent at creation without waiting, the first page's query follows them
// at the first seek, and ROLLBACK is sent at the end without waiting (the next user of the
// connection reads its result).
class PgIterator final : public Iterator {
 public:
  // sql: forward inclusive, forward exclusive, backward inclusive, backward exclusive.
  PgIterator(PgKvStore::Pool* pool, const std::array<std::string, 4>* sql, std::string_view lower,
             std::string_view upper)
      : lease_(pool), sql_(sql), lower_(lower), upper_(upper) {
    status_ = lease_.status();
    if (!status_.ok()) return;
    // The snapshot is taken by the first query of the transaction, so one goes at once.
    if (PQenterPipelineMode(pg()) != 1 ||
        PQsendQueryParams(pg(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, nullptr,
                          nullptr, nullptr, nullptr, 0) != 1 ||
        PQsendQueryParams(pg(), "SELECT 1", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1 ||
        PQsendFlushRequest(pg()) != 1 || PQflush(pg()) != 0) {
      status_ = ConnError(pg(), "begin snapshot");
      return;
    }
    unread_ = 2;
  }
  ~PgIterator() override {
    if (lease_.conn() == nullptr) return;
    PGconn* c = pg();
    if (status_.ok() && PQpipelineStatus(c) != PQ_PIPELINE_OFF &&
        PQsendQueryParams(c, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
        PQpipelineSync(c) == 1) {
      // Its results are read by the connection's next user (Pool::Take).
      lease_.conn()->unread += unread_ + 2;
      return;
    }
    // Broken: the pool closes a connection left in a transaction or a pipeline.
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

  // Reads the results of every query sent so far but the last, then the last's rows.
  PgResult Collect() {
    PgResult last;
    while (unread_ > 0) {
      PgResult r(PQgetResult(pg()));
      if (!r) {
        if (PQstatus(pg()) != CONNECTION_OK) {
          status_ = ConnError(pg(), "scan");
          return nullptr;
        }
        --unread_;  // the end of one query's results
        continue;
      }
      Status st = ResultStatus(pg(), r.get(), "scan");
      if (!st.ok() && status_.ok()) status_ = st;
      last = std::move(r);
    }
    return last;
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
    Params p(st.params);
    if (PQsendQueryParams(pg(), st.sql, static_cast<int>(p.values.size()), p.types.data(),
                          p.values.data(), p.lengths.data(), p.formats.data(), 1) != 1 ||
        PQsendFlushRequest(pg()) != 1 || PQflush(pg()) != 0) {
      status_ = ConnError(pg(), "scan");
      return;
    }
    ++unread_;
    PgResult r = Collect();
    if (!status_.ok()) return;
    if (!r) {
      status_ = ConnError(pg(), "scan");
      return;
    }
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
  int unread_ = 0;  // queries sent whose results are not read yet
  std::vector<std::pair<std::string, std::string>> rows_;
  size_t pos_ = 0;
  bool forward_ = true;
  bool more_ = false;  // rows may follow the page in its direction
};

// Runs sql (several statements: one transaction) on a pooled connection.
Status ExecScript(PgKvStore::Pool* pool, const std::string& sql, std::string_view what) {
  Lease lease(pool);
  CAIRN_RETURN_IF_ERROR(lease.status());
  PgResult r(PQexec(lease.pg(), sql.c_str()));
  return ResultStatus(lease.pg(), r.get(), what);
}

// The rows of the source that match `where` (over columns k, v): the live table, an older table
// copy, or what snapshot S sees (the live rows born by S and the history versions valid at S).
std::string SourceRows(const PgKvStore::Source& source, const std::string& where) {
  if (source.snapshot == 0) return fmt::format("SELECT k, v FROM cairn_kv WHERE {}", where);
  if (!source.table.empty())
    return fmt::format("SELECT k, v FROM {} WHERE {}", source.table, where);
  const uint64_t s = source.snapshot;
  return fmt::format(
      "SELECT k, v FROM cairn_kv WHERE {0} AND born <= {1} AND cairn_kv_snap_alive({1}) "
      "UNION ALL SELECT k, v FROM cairn_kv_hist WHERE {0} AND born <= {1} AND upto > {1} "
      "AND cairn_kv_snap_alive({1})",
      where, s);
}

}  // namespace

bool PlainIdentifier(std::string_view name) {
  return !name.empty() && name.size() < 64 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

struct PgKvStore::Writer {
  const WriteBatch* batch;
  bool sync;
  Status status;
  bool done = false;
  std::condition_variable cv;
};

PgKvStore::PgKvStore(std::shared_ptr<Pool> pool, Source source, int max_groups)
    : pool_(std::move(pool)), source_(std::move(source)), max_groups_(max_groups) {
  get_sql_ = SourceRows(source_, "k = $1");
  multi_get_sql_ = SourceRows(source_, "k = ANY($1)");
  const auto page = [this](const char* where, const char* order) {
    return fmt::format("SELECT k, v FROM ({}) x ORDER BY k {} LIMIT {}", SourceRows(source_, where),
                       order, kPageRows);
  };
  scan_sql_ = {page("k >= $1 AND ($2::bytea IS NULL OR k < $2)", "ASC"),
               page("k > $1 AND ($2::bytea IS NULL OR k < $2)", "ASC"),
               page("k <= $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3)", "DESC"),
               page("k < $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3)", "DESC")};
}
PgKvStore::~PgKvStore() { StopListening(); }

Result<std::unique_ptr<PgKvStore>> PgKvStore::Open(const std::string& conninfo,
                                                   const PgOptions& options) {
  if (options.max_connections < 1) return Err(Code::kInvalid, "max_connections must be >= 1");
  if (options.max_groups_in_flight < 1) {
    return Err(Code::kInvalid, "max_groups_in_flight must be >= 1");
  }
  auto pool = std::make_shared<Pool>(conninfo, options.max_connections);
  Lease lease(pool.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  PGconn* pg = lease.pg();
  if (PQserverVersion(pg) < 140000) {
    return Err(Code::kNotSupported,
               fmt::format("PostgreSQL {} is too old: Cairn needs 14 or newer (pipelines)",
                           PQserverVersion(pg) / 10000));
  }
  PgResult r(PQexec(pg,
                    "SELECT to_regclass('cairn_kv') IS NOT NULL, "
                    "to_regclass('cairn_kv_epoch') IS NOT NULL"));
  CAIRN_RETURN_IF_ERROR(ResultStatus(pg, r.get(), "check schema"));
  const bool has_table = std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
  const bool has_epochs = std::string_view(PQgetvalue(r.get(), 0, 1)) == "t";
  int version = 0;
  if (has_epochs) {
    PgResult v(PQexec(pg, "SELECT version FROM cairn_kv_epoch WHERE id = 1"));
    CAIRN_RETURN_IF_ERROR(ResultStatus(pg, v.get(), "check schema"));
    if (PQntuples(v.get()) == 1) version = std::atoi(PQgetvalue(v.get(), 0, 0));
  } else if (has_table) {
    version = 1;
  }
  if (version > kSchemaVersion) {
    return Err(Code::kNotSupported,
               fmt::format("database {} holds Cairn metadata of schema {}, newer than this Cairn "
                           "(schema {}): upgrade Cairn on this node",
                           PQdb(pg), version, kSchemaVersion));
  }
  if (version == 0 && !options.create_if_missing) {
    return Err(Code::kNotFound,
               fmt::format("database {} holds no Cairn metadata (table cairn_kv)", PQdb(pg)));
  }
  if (version < kSchemaVersion) {
    if (version > 0) {
      log::Info("upgrading the Cairn metadata in database {} from schema {} to {}", PQdb(pg),
                version, kSchemaVersion);
    }
    PgResult ddl(PQexec(pg, kSchema));
    CAIRN_RETURN_IF_ERROR(ResultStatus(pg, ddl.get(), "create schema"));
  }
  return std::unique_ptr<PgKvStore>(
      new PgKvStore(std::move(pool), Source{}, options.max_groups_in_flight));
}

Status PgKvStore::ReadOnly() const {
  return Status(Code::kReadOnly, fmt::format("snapshot {} is read-only", source_.snapshot));
}

struct PgKvStore::Reader {
  std::string_view key;
  Result<std::string> value = Err(Code::kIo, "not read");
  bool done = false;
  std::condition_variable cv;
};

Result<std::string> PgKvStore::Get(std::string_view key) {
  // Concurrent point reads share round trips, as writes share commits: a read that finds every
  // slot busy waits, and the next leader reads every waiting key with one query.
  Reader me{key};
  std::unique_lock lock(read_mu_);
  readers_.push_back(&me);
  while (!me.done && !(readers_.front() == &me && reads_in_flight_ < max_groups_)) {
    me.cv.wait(lock);
  }
  if (me.done) return std::move(me.value);
  std::vector<Reader*> group;
  while (!readers_.empty() && group.size() < kMaxGroup) {
    group.push_back(readers_.front());
    readers_.pop_front();
  }
  ++reads_in_flight_;
  if (!readers_.empty()) readers_.front()->cv.notify_one();
  lock.unlock();
  if (group.size() == 1) {
    me.value = GetOne(key);
  } else {
    std::vector<std::string> keys;
    keys.reserve(group.size());
    for (Reader* r : group) keys.emplace_back(r->key);
    auto values = MultiGet(keys);
    for (size_t i = 0; i < group.size(); ++i) {
      if (!values) {
        group[i]->value = Err(values.error());
      } else if ((*values)[i]) {
        group[i]->value = std::move(*(*values)[i]);
      } else {
        group[i]->value = Err(Code::kNotFound);
      }
    }
  }
  lock.lock();
  --reads_in_flight_;
  for (Reader* r : group) {
    r->done = true;
    if (r != &me) r->cv.notify_one();
  }
  if (!readers_.empty()) readers_.front()->cv.notify_one();
  return std::move(me.value);
}

Result<std::string> PgKvStore::GetOne(std::string_view key) {
  for (int attempt = 0;; ++attempt) {
    Lease lease(pool_.get());
    CAIRN_RETURN_IF_ERROR(lease.status());
    PGconn* pg = lease.pg();
    PgResult r = Exec(pg, {get_sql_.c_str(), {key}});
    Status st = ResultStatus(pg, r.get(), "get");
    // A connection that broke under the query is replaced once: a read is safe to repeat.
    if (!st.ok() && PQstatus(pg) != CONNECTION_OK && attempt == 0) continue;
    CAIRN_RETURN_IF_ERROR(st);
    if (PQntuples(r.get()) == 0) return Err(Code::kNotFound);
    return std::string(PQgetvalue(r.get(), 0, 1), PQgetlength(r.get(), 0, 1));
  }
}

Result<std::vector<std::optional<std::string>>> PgKvStore::MultiGet(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  ByteaArray array;
  for (const auto& k : keys) array.Add(k);
  const std::string encoded = array.Encode();
  for (int attempt = 0;; ++attempt) {
    Lease lease(pool_.get());
    CAIRN_RETURN_IF_ERROR(lease.status());
    PGconn* pg = lease.pg();
    PgResult r = Exec(pg, {multi_get_sql_.c_str(), {Param::Array(encoded)}});
    Status st = ResultStatus(pg, r.get(), "get");
    if (!st.ok() && PQstatus(pg) != CONNECTION_OK && attempt == 0) continue;
    CAIRN_RETURN_IF_ERROR(st);
    std::unordered_map<std::string_view, size_t> index;
    for (size_t i = 0; i < keys.size(); ++i) index.emplace(keys[i], i);
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      auto it =
          index.find(std::string_view(PQgetvalue(r.get(), row, 0), PQgetlength(r.get(), row, 0)));
      if (it == index.end()) continue;
      out[it->second].emplace(PQgetvalue(r.get(), row, 1), PQgetlength(r.get(), row, 1));
    }
    // A key asked twice gets its value once in the index: fill the repeats.
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!out[i]) {
        auto it = index.find(keys[i]);
        if (it != index.end() && it->second != i) out[i] = out[it->second];
      }
    }
    return out;
  }
}

Status PgKvStore::Write(const WriteBatch& batch, bool sync) {
  if (source_.snapshot != 0) return ReadOnly();
  if (batch.empty() && !sync) return Status::Ok();
  Writer w{&batch, sync};
  std::unique_lock lock(write_mu_);
  writers_.push_back(&w);
  // Lead a group when first in line and a commit slot is free; otherwise wait to be carried by
  // another leader's group or to come first.
  while (!w.done && !(writers_.front() == &w && in_flight_ < max_groups_)) w.cv.wait(lock);
  if (w.done) return w.status;
  std::vector<Writer*> group;
  size_t ops = 0;
  while (!writers_.empty()) {
    Writer* x = writers_.front();
    const size_t n = x->batch->size() + x->batch->expects().size();
    if (!group.empty() && (group.size() >= kMaxGroup || ops + n > kMaxGroupOps)) break;
    group.push_back(x);
    ops += n;
    writers_.pop_front();
  }
  ++in_flight_;
  ++group_stats_.groups;
  group_stats_.batches += group.size();
  // The next in line may lead a group of its own while this one is away, if a slot is free.
  if (!writers_.empty()) writers_.front()->cv.notify_one();
  lock.unlock();
  CommitGroup(group);
  lock.lock();
  --in_flight_;
  for (Writer* x : group) {
    x->done = true;
    if (x != &w) x->cv.notify_one();
  }
  if (!writers_.empty()) writers_.front()->cv.notify_one();
  return w.status;
}

void PgKvStore::CommitGroup(const std::vector<Writer*>& group) {
  bool sync = false, writes = false, notices = false;
  std::vector<const WriteBatch*> batches;
  for (Writer* w : group) batches.push_back(w->batch);
  const bool defer_adds = CanDeferAdds(batches);
  std::vector<EncodedBatch> encoded;
  std::vector<std::string> notice_keys(group.size());
  encoded.reserve(group.size());
  std::vector<std::string> expect_keys;
  size_t expecting = 0;
  // The deferred adds: (key, delta, batch).
  std::vector<std::tuple<std::string_view, std::string_view, int32_t>> adds;
  for (size_t i = 0; i < group.size(); ++i) {
    const WriteBatch& batch = *group[i]->batch;
    sync |= group[i]->sync;
    encoded.emplace_back(batch, defer_adds);
    writes |= encoded.back().writes;
    if (!batch.expects().empty()) {
      ++expecting;
      for (const auto& e : batch.expects()) expect_keys.push_back(e.first);
    }
    if (defer_adds) {
      for (const auto& op : batch.ops()) {
        if (op.kind == WriteBatch::Kind::kAdd) {
          adds.emplace_back(op.key, op.value, static_cast<int32_t>(i));
        }
      }
    }
    bool all = false;
    NoticeKeys(batch, &notice_keys[i], &all);
    if (all || notice_keys[i].size() > kMaxNoticePayload) notice_keys[i].assign(1, '*');
    notices |= !notice_keys[i].empty();
  }
  std::vector<Statement> statements;
  statements.push_back({"BEGIN", {}});
  statements.push_back({"SELECT cairn_kv_begin($1)", {Param::Text(sync ? "on" : "off")}});
  std::string lock_keys;
  if (expecting > 1) {
    std::sort(expect_keys.begin(), expect_keys.end());
    expect_keys.erase(std::unique(expect_keys.begin(), expect_keys.end()), expect_keys.end());
    ByteaArray keys;
    for (const auto& k : expect_keys) keys.Add(k);
    lock_keys = keys.Encode();
    statements.push_back({"SELECT cairn_kv_lock($1)", {Param::Array(lock_keys)}});
  }
  const size_t first_batch = statements.size();
  for (size_t i = 0; i < group.size(); ++i) {
    statements.push_back(encoded[i].Call(false, notice_keys[i].c_str()));
  }
  std::string add_keys, add_deltas, add_owners;
  if (!adds.empty()) {
    std::stable_sort(adds.begin(), adds.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    ByteaArray keys, deltas;
    // int4[] in the binary array format: one dimension, no nulls, element type int4 (23).
    std::string owners;
    const auto put = [&owners](int32_t x) {
      for (int i = 3; i >= 0; --i) owners.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
    };
    put(1);
    put(0);
    put(23);
    put(static_cast<int32_t>(adds.size()));
    put(1);
    for (const auto& [key, delta, owner] : adds) {
      keys.Add(key);
      deltas.Add(delta);
      put(4);
      put(owner);
    }
    add_keys = keys.Encode();
    add_deltas = deltas.Encode();
    add_owners = std::move(owners);
    Param owner_param(add_owners);
    owner_param.oid = 1007;  // int4[]
    statements.push_back({"SELECT cairn_kv_adds($1, $2, $3)",
                          {Param::Array(add_keys), Param::Array(add_deltas), owner_param}});
  }
  if (sync && !writes) statements.push_back({"SELECT cairn_kv_synced()", {}});
  if (notices) {
    statements.push_back(
        {"SELECT cairn_kv_notify($1, $2)",
         {Param::Text(notices_.channel.c_str()), Param::Text(notices_.origin.c_str())}});
  }
  statements.push_back({"COMMIT", {}});

  Status st;
  std::vector<PgResult> results;
  {
    Lease lease(pool_.get());
    st = lease.status();
    if (st.ok()) st = RunPipeline(lease.pg(), statements, &results);
    // A COMMIT in an aborted transaction reports success (as ROLLBACK): the error came first.
  }
  if (st.code() == Code::kConflict && group.size() > 1) {
    // A deadlock with another node's group: each batch again on its own, so that one batch's
    // lock order does not fail the others.
    for (Writer* w : group) CommitGroup({w});
    return;
  }
  for (size_t i = 0; i < group.size(); ++i) {
    if (!st.ok()) {
      group[i]->status = st;
      continue;
    }
    const PgResult& r = results[first_batch + i];
    const bool applied = r && PQntuples(r.get()) == 1 && PQgetvalue(r.get(), 0, 0)[0] == 't';
    group[i]->status =
        applied ? Status::Ok() : Status(Code::kConflict, "an expected value does not hold");
  }
}

PgKvStore::GroupStats PgKvStore::group_stats() const {
  std::lock_guard lock(const_cast<std::mutex&>(write_mu_));
  return group_stats_;
}

std::unique_ptr<Iterator> PgKvStore::NewIterator(std::string_view lower, std::string_view upper) {
  return std::make_unique<PgIterator>(pool_.get(), &scan_sql_, lower, upper);
}

Status PgKvStore::SyncWal() {
  if (source_.snapshot != 0) return Status::Ok();
  // An empty synced write: its group commits synchronously, which flushes the WAL through its
  // commit record and so every commit before it.
  return Write(WriteBatch(), true);
}

Status PgKvStore::CreateSnapshot(uint64_t id, const WriteBatch& then) {
  if (source_.snapshot != 0) return ReadOnly();
  if (id == 0 || id > (1ull << 62)) return Status(Code::kInvalid, "bad snapshot id");
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  const std::string create = fmt::format("SELECT cairn_kv_snapshot_create({})", id);
  EncodedBatch encoded(then, false);
  std::vector<Statement> statements = {{"BEGIN", {}}, {create.c_str(), {}}};
  // One transaction: when `then` does not apply, the snapshot is not taken either.
  if (!then.empty() || !then.expects().empty()) statements.push_back(encoded.Call(true));
  statements.push_back({"COMMIT", {}});
  std::vector<PgResult> results;
  return RunPipeline(lease.pg(), statements, &results);
}

Result<std::unique_ptr<KvStore>> PgKvStore::OpenSnapshot(uint64_t id) {
  if (source_.snapshot != 0) return Err(ReadOnly());
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  const std::string table = fmt::format("cairn_snap_{}", id);
  const std::string sql = fmt::format(
      "SELECT EXISTS (SELECT 1 FROM cairn_kv_snaps WHERE id = {}), to_regclass('{}') IS NOT NULL",
      id, table);
  PgResult r(PQexec(lease.pg(), sql.c_str()));
  CAIRN_RETURN_IF_ERROR(ResultStatus(lease.pg(), r.get(), "open snapshot"));
  Source source{id, ""};
  if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
    if (std::string_view(PQgetvalue(r.get(), 0, 1)) != "t") {
      return Err(Code::kNotFound, fmt::format("no snapshot {}", id));
    }
    source.table = table;  // a table copy made by an older Cairn
  }
  return std::unique_ptr<KvStore>(new PgKvStore(pool_, std::move(source), 1));
}

Status PgKvStore::DropSnapshot(uint64_t id) {
  if (source_.snapshot != 0) return ReadOnly();
  CAIRN_RETURN_IF_ERROR(ExecScript(
      pool_.get(), fmt::format("SELECT cairn_kv_snapshot_drop({})", id), "drop snapshot"));
  // The history only it needed, outside the lock that writers wait for.
  return ExecScript(pool_.get(), fmt::format("SELECT cairn_kv_snapshot_purge({})", id),
                    "drop snapshot history");
}

Result<std::vector<uint64_t>> PgKvStore::ListSnapshots() {
  if (source_.snapshot != 0) return std::vector<uint64_t>();
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  PgResult r(PQexec(lease.pg(),
                    "SELECT id FROM cairn_kv_snaps UNION SELECT substr(tablename, 12)::bigint "
                    "FROM pg_tables WHERE schemaname = current_schema() AND "
                    "tablename ~ '^cairn_snap_[0-9]+$' ORDER BY 1"));
  CAIRN_RETURN_IF_ERROR(ResultStatus(lease.pg(), r.get(), "list snapshots"));
  std::vector<uint64_t> ids;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ids.push_back(std::strtoull(PQgetvalue(r.get(), i, 0), nullptr, 10));
  }
  return ids;
}

Result<bool> PgKvStore::SnapshotsHold(std::string_view key) {
  if (source_.snapshot != 0) return false;
  Lease lease(pool_.get());
  CAIRN_RETURN_IF_ERROR(lease.status());
  PgResult r = Exec(lease.pg(), {"SELECT cairn_kv_snapshots_hold($1)", {key}}, 0);
  CAIRN_RETURN_IF_ERROR(ResultStatus(lease.pg(), r.get(), "snapshots hold"));
  return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
}

// Notices: "<origin>;<key in hex>,<key in hex>..." or "<origin>;*" (everything).
void PgKvStore::Announce(PgNotices notices) { notices_ = std::move(notices); }

void PgKvStore::NoticeKeys(const WriteBatch& batch, std::string* keys, bool* all) const {
  if (!notices_.watched || *all) return;
  static constexpr char kHex[] = "0123456789abcdef";
  for (const auto& [begin, end] : batch.ranges()) *all |= notices_.watched(begin);
  for (const auto& op : batch.ops()) {
    if (*all || keys->size() > kMaxNoticePayload) {
      *all = true;
      return;
    }
    if (!notices_.watched(op.key)) continue;
    if (!keys->empty()) *keys += ',';
    for (unsigned char ch : op.key) {
      *keys += kHex[ch >> 4];
      *keys += kHex[ch & 15];
    }
  }
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

  bool connected() const { return connected_; }

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
    connected_ = st.ok();
    return st;
  }
  void Close() {
    connected_ = false;
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
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

Status PgKvStore::Listen(const PgNotices& notices, PgNoticeHandler handler) {
  if (listener_) return Err(Code::kBusy, "the store already listens");
  auto listener = std::make_unique<Listener>(pool_.get(), notices, std::move(handler));
  CAIRN_RETURN_IF_ERROR(listener->Start());
  listener_ = std::move(listener);
  return Status::Ok();
}

bool PgKvStore::Listening() const { return listener_ && listener_->connected(); }

void PgKvStore::StopListening() {
  if (listener_) listener_->Stop();
  listener_.reset();
}

}  // namespace cairn::kv
