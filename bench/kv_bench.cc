// kv_bench: the metadata store's operations side by side on RocksDB (the single-node store) and
// PostgreSQL (the cluster's shared store, a real server that kv_bench starts on a Unix socket,
// with the same settings as the tests), and PostgreSQL with change notices on (every batch that
// changes a dentry or inode key also sends a NOTIFY, as a cluster node does, while another store
// listens), from 1 and 4 threads, with ratios.
//
// Workloads, each over the same keys:
//   create  one batch per file as a create writes it: dentry, inode, two counters
//           (Write with sync=false, as the file system does outside fsync)
//   get     a point read of each inode key
//   scan    one forward iteration over all dentries of the directory
//   sync    one Write with sync=true per file (fsync'd metadata)
//
// usage: kv_bench [--files N] [--workdir DIR]
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "pg_server.h"

namespace {

using cairn::kv::KvStore;
using cairn::kv::WriteBatch;

double Seconds(const std::function<void(int)>& body, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(body, t);
  for (auto& t : ts) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Row {
  std::string name;
  double ops_per_s = 0;
};

// Runs every workload on kv with `threads` threads over `files` files; prefix keeps runs apart.
std::vector<Row> Run(KvStore& kv, int files, int threads, const std::string& prefix) {
  std::vector<Row> rows;
  const int per = files / threads;
  int errors = 0;
  const auto dentry = [&](int t, int i) { return fmt::format("D{}/f{:02}-{:08}", prefix, t, i); };
  const auto inode = [&](int t, int i) { return fmt::format("I{}/{:02}-{:08}", prefix, t, i); };
  const std::string value(120, 'v');
  double s = Seconds(
      [&](int t) {
        for (int i = 0; i < per; ++i) {
          WriteBatch b;
          b.Put(dentry(t, i), "ino");
          b.Put(inode(t, i), value);
          b.Add("C" + prefix + "/files", 1);
          b.Add("C" + prefix + "/bytes", 4096);
          if (!kv.Write(b, false).ok()) ++errors;
        }
      },
      threads);
  rows.push_back({"create", per * threads / s});
  s = Seconds(
      [&](int t) {
        for (int i = 0; i < per; ++i) {
          if (!kv.Get(inode(t, i))) ++errors;
        }
      },
      threads);
  rows.push_back({"get", per * threads / s});
  s = Seconds(
      [&](int) {
        auto it = kv.NewIterator("D" + prefix + "/", "D" + prefix + "0");
        int n = 0;
        for (it->Seek(""); it->Valid(); it->Next()) ++n;
        if (n != per * threads) ++errors;
      },
      1);
  rows.push_back({"scan", per * threads / s});
  const int synced = std::max(1, per / 10);
  s = Seconds(
      [&](int t) {
        for (int i = 0; i < synced; ++i) {
          WriteBatch b;
          b.Put(inode(t, i), value + "s");
          if (!kv.Write(b, true).ok()) ++errors;
        }
      },
      threads);
  rows.push_back({"sync", synced * threads / s});
  if (errors != 0) fmt::print(stderr, "kv_bench: {} errors\n", errors);
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  int files = 20000;
  std::string workdir = "/var/tmp/cairn-kv-bench";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--files" && i + 1 < argc) {
      files = std::stoi(argv[++i]);
    } else if (a == "--workdir" && i + 1 < argc) {
      workdir = argv[++i];
    } else {
      fmt::print(stderr, "usage: kv_bench [--files N] [--workdir DIR]\n");
      return 2;
    }
  }
  std::filesystem::remove_all(workdir);
  std::filesystem::create_directories(workdir);
  cairn::kv::RocksDbOptions ro;
  ro.create_if_missing = true;
  auto rocks = cairn::kv::RocksDbKvStore::Open(workdir + "/rocksdb", ro);
  if (!rocks) {
    fmt::print(stderr, "kv_bench: RocksDB: {}\n", rocks.error().ToString());
    return 1;
  }
  std::string why;
  auto server = cairn::testing::PgServer::Start(&why);
  if (!server || !server->CreateDatabase("bench", &why)) {
    fmt::print(stderr, "kv_bench: PostgreSQL: {}\n", why);
    return 1;
  }
  cairn::kv::PgOptions po;
  po.create_if_missing = true;
  auto pg = cairn::kv::PgKvStore::Open(server->ConnInfo("bench"), po);
  if (!pg) {
    fmt::print(stderr, "kv_bench: PostgreSQL: {}\n", pg.error().ToString());
    return 1;
  }
  // The same with notices: this store announces, another one (a second node) listens.
  if (!server->CreateDatabase("bench_notify", &why)) {
    fmt::print(stderr, "kv_bench: PostgreSQL: {}\n", why);
    return 1;
  }
  auto pgn = cairn::kv::PgKvStore::Open(server->ConnInfo("bench_notify"), po);
  auto other = cairn::kv::PgKvStore::Open(server->ConnInfo("bench_notify"), {});
  if (!pgn || !other) {
    fmt::print(stderr, "kv_bench: PostgreSQL: {}\n",
               (pgn ? other.error() : pgn.error()).ToString());
    return 1;
  }
  cairn::kv::PgNotices notices;
  notices.origin = "bench";
  notices.watched = [](std::string_view k) { return k.starts_with("D") || k.starts_with("I"); };
  (*pgn)->Announce(notices);
  std::atomic<uint64_t> heard{0};
  cairn::kv::PgNotices listen;
  listen.origin = "other";
  if (auto st = (*other)->Listen(listen, [&](auto*) { heard.fetch_add(1); }); !st.ok()) {
    fmt::print(stderr, "kv_bench: listen: {}\n", st.ToString());
    return 1;
  }
  fmt::print("{:<8} {:>7} | {:>14} | {:>16} | {:>8} | {:>16} | {:>9}\n", "workload", "threads",
             "RocksDB ops/s", "PostgreSQL ops/s", "PG/Rocks", "PG+NOTIFY ops/s", "NOTIFY/PG");
  for (int threads : {1, 4}) {
    const std::string prefix = fmt::format("t{}", threads);
    auto r = Run(**rocks, files, threads, prefix);
    auto p = Run(**pg, files, threads, prefix);
    auto n = Run(**pgn, files, threads, prefix);
    for (size_t i = 0; i < r.size(); ++i) {
      fmt::print("{:<8} {:>7} | {:>14.1f} | {:>16.1f} | {:>8.3f} | {:>16.1f} | {:>9.3f}\n",
                 r[i].name, threads, r[i].ops_per_s, p[i].ops_per_s,
                 p[i].ops_per_s / r[i].ops_per_s, n[i].ops_per_s, n[i].ops_per_s / p[i].ops_per_s);
    }
  }
  (*other)->StopListening();
  fmt::print("notices heard by the listening store: {}\n", heard.load());
  other->reset();
  pgn->reset();
  pg->reset();
  server.reset();
  rocks->reset();
  std::filesystem::remove_all(workdir);
  return 0;
}
