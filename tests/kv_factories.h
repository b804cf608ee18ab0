// The three KvStores a typed test runs over: the in-memory store, RocksDB in a temporary
// directory, and PostgreSQL (a database of its own on the binary's shared server, pg_server.h).
// Each factory owns what its store leaves on disk and removes it when destroyed.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "kv/memory_kv_store.h"
#include "kv/pg_kv_store.h"
#include "kv/rocksdb_kv_store.h"
#include "pg_server.h"

namespace cairn::testing {

struct MemoryFactory {
  std::unique_ptr<kv::KvStore> Make() { return std::make_unique<kv::MemoryKvStore>(); }
};

struct RocksFactory {
  std::string dir;
  RocksFactory() {
    dir = std::filesystem::temp_directory_path() /
          ("cairn-kv-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
  }
  ~RocksFactory() {
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(dir + "-snapshots");
  }
  std::unique_ptr<kv::KvStore> Make() {
    kv::RocksDbOptions o;
    o.create_if_missing = true;
    o.snapshot_dir = dir + "-snapshots";
    return std::move(*kv::RocksDbKvStore::Open(dir, o));
  }
  static inline int counter = 0;
};

inline PgServer* Pg() { return SharedPgServer(); }

struct PgFactory {
  std::string db = "kv" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::unique_ptr<kv::KvStore> Make() {
    if (Pg() == nullptr) {
      ADD_FAILURE() << "no PostgreSQL server";
      return std::make_unique<kv::MemoryKvStore>();
    }
    std::string why;
    EXPECT_TRUE(Pg()->CreateDatabase(db, &why)) << why;
    kv::PgOptions o;
    o.create_if_missing = true;
    auto kv = kv::PgKvStore::Open(Pg()->ConnInfo(db), o);
    EXPECT_TRUE(kv) << kv.error().ToString();
    if (!kv) return std::make_unique<kv::MemoryKvStore>();
    return std::move(*kv);
  }
  static inline int counter = 0;
};

using KvFactories = ::testing::Types<MemoryFactory, RocksFactory, PgFactory>;

}  // namespace cairn::testing
