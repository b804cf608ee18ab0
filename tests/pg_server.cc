#include "pg_server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cairn::testing {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin";

// Runs a shell command as the postgres user when this process is root.
std::string AsServerUser(const std::string& command) {
  if (::geteuid() != 0) return command;
  return "runuser -u postgres -- " + command;
}

}  // namespace

std::unique_ptr<PgServer> PgServer::Start(std::string* why) {
  if (!std::filesystem::exists(std::string(kBin) + "/initdb")) {
    if (why) *why = std::string(kBin) + "/initdb is missing (Debian package postgresql-15)";
    return nullptr;
  }
  std::unique_ptr<PgServer> s(new PgServer());
  char tmpl[] = "/tmp/cairn-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    if (why) *why = "mkdtemp failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  if (::geteuid() == 0 && !s->Run("chown postgres: " + s->dir_, why)) return nullptr;
  if (!s->Run(AsServerUser(std::string(kBin) + "/initdb -A trust -U postgres -E UTF8 " +
                           "--no-sync -D " + s->dir_ + "/data"),
              why)) {
    return nullptr;
  }
  if (!s->Launch(why)) return nullptr;
  return s;
}

PgServer::~PgServer() {
  Stop();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

bool PgServer::Run(const std::string& command, std::string* why) {
  const std::string log = dir_ + "/command.log";
  const std::string full = command + " >" + log + " 2>&1";
  if (std::system(full.c_str()) == 0) return true;
  if (why) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    *why = "`" + command + "` failed: " + ss.str();
  }
  return false;
}

bool PgServer::Launch(std::string* why) {
  // listen_addresses '' : the Unix socket in dir_ only.
  running_ = Run(AsServerUser(std::string(kBin) + "/pg_ctl -w -t 60 -D " + dir_ + "/data -l " +
                              dir_ + "/server.log -o \"-k " + dir_ +
                              " -c listen_addresses='' -c max_connections=200\" start"),
                 why);
  return running_;
}

std::string PgServer::ConnInfo(const std::string& db) const {
  return "host=" + dir_ + " user=postgres dbname=" + db;
}

bool PgServer::CreateDatabase(const std::string& name, std::string* why) {
  return Run(std::string(kBin) + "/createdb -h " + dir_ + " -U postgres " + name, why);
}

void PgServer::Stop() {
  if (!running_) return;
  Run(AsServerUser(std::string(kBin) + "/pg_ctl -w -D " + dir_ + "/data -m fast stop"), nullptr);
  running_ = false;
}

bool PgServer::CrashAndRestart(std::string* why) {
  std::ifstream pidfile(dir_ + "/data/postmaster.pid");
  pid_t pid = 0;
  if (!(pidfile >> pid) || pid <= 0) {
    if (why) *why = "no postmaster.pid";
    return false;
  }
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i) ::usleep(50'000);
  // The killed postmaster's children notice and exit; the next start recovers from the WAL.
  running_ = false;
  for (int i = 0; i < 100; ++i) {
    if (Launch(nullptr)) return true;
    ::usleep(100'000);
  }
  return Launch(why);
}

PgServer* SharedPgServer() {
  static std::unique_ptr<PgServer> server = [] {
    std::string why;
    auto s = PgServer::Start(&why);
    if (!s) std::fprintf(stderr, "PostgreSQL did not start: %s\n", why.c_str());
    return s;
  }();
  return server.get();
}

}  // namespace cairn::testing
