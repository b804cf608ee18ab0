// PgServer: a real PostgreSQL server for tests (Debian's postgresql-15, installed by
// scripts/install-deps.sh), started on a fresh data directory that listens on a Unix socket in
// that directory only: no TCP port at all. As root it runs as the postgres user, since the
// server refuses to run as root.
//
// Links nothing from src/: POSIX and the standard library only.
// Ownership: a PgServer owns its server and its temporary directory; the destructor stops the
// one and removes the other. Thread-safety: not thread-safe; one owner drives it.
#pragma once

#include <memory>
#include <string>

namespace cairn::testing {

class PgServer {
 public:
  // Runs initdb and starts the server. nullptr when the binaries are missing or the server does
  // not start; *why (if given) then says which.
  static std::unique_ptr<PgServer> Start(std::string* why = nullptr);
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // A libpq connection string for database db (which CreateDatabase made, or "postgres").
  std::string ConnInfo(const std::string& db) const;
  // CREATE DATABASE name; false (and *why) on failure.
  bool CreateDatabase(const std::string& name, std::string* why = nullptr);
  // Stops the server (fast shutdown). Idempotent.
  void Stop();
  // Kills the postmaster with SIGKILL (a crash), then starts it again on the same data.
  bool CrashAndRestart(std::string* why = nullptr);

 private:
  PgServer() = default;
  bool Run(const std::string& command, std::string* why);
  bool Launch(std::string* why);

  std::string dir_;  // temporary: data/, the socket and the log
  bool running_ = false;
};

// One server for the whole test binary, started on first use (nullptr when it did not start;
// the reason is reported as a test failure once).
PgServer* SharedPgServer();

}  // namespace cairn::testing
