#include "s3_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#ifndef CAIRN_SOURCE_DIR
#error "define CAIRN_SOURCE_DIR (the repository root) to build s3_server.cc"
#endif

extern char** environ;

namespace cairn::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = std::chrono::seconds(15);

std::string S3rverScript() {
  return std::string(CAIRN_SOURCE_DIR) + "/tests/s3server/node_modules/s3rver/bin/s3rver.js";
}

// The path of program in PATH, or empty.
std::string FindInPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// A port that was free on 127.0.0.1 a moment ago.
int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string Tail(const std::string& path, size_t max = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// The current environment without AWS_* and NODE_OPTIONS, plus extra ("NAME=value").
std::vector<std::string> CleanEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with("AWS_") || v.starts_with("NODE_OPTIONS=")) continue;
    env.emplace_back(v);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::unique_ptr<S3Server> S3Server::Start(const std::string& bucket, std::string* why) {
  std::string ignored;
  if (why == nullptr) why = &ignored;
  if (FindInPath("node").empty()) {
    *why = "node is not installed (scripts/install-deps.sh installs nodejs); skipping S3 tests";
    return nullptr;
  }
  if (::access(S3rverScript().c_str(), R_OK) != 0) {
    *why = "s3rver is not installed at " + S3rverScript() +
           " (run scripts/install-deps.sh, or npm ci in tests/s3server); skipping S3 tests";
    return nullptr;
  }
  std::unique_ptr<S3Server> server(new S3Server());
  server->bucket_ = bucket;
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/cairn-s3rver-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    *why = "mkdtemp: " + std::string(std::strerror(errno));
    return nullptr;
  }
  server->base_dir_ = tmpl;
  server->data_dir_ = tmpl + "/data";
  server->log_path_ = tmpl + "/s3rver.log";
  ::mkdir(server->data_dir_.c_str(), 0755);
  for (int tries = 0; tries < 3; ++tries) {
    server->port_ = FreeLoopbackPort();
    if (server->port_ != 0 && server->Launch(why)) return server;
  }
  return nullptr;
}

bool S3Server::Launch(std::string* why) {
  std::string node = FindInPath("node");
  std::vector<std::string> argv = {node,
                                   S3rverScript(),
                                   "-d",
                                   data_dir_,
                                   "-a",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(port_),
                                   "--configure-bucket",
                                   bucket_,
                                   "--silent"};
  std::vector<std::string> env = CleanEnv({"NODE_OPTIONS=--openssl-legacy-provider"});
  auto c_argv = CStrings(argv);
  auto c_env = CStrings(env);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    *why = "fork: " + std::string(std::strerror(errno));
    if (log_fd >= 0) ::close(log_fd);
    return false;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
#ifdef __linux__
    // Do not outlive the test (the signal comes when the forking thread ends: the main thread).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
#endif
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  (void)parent;
  if (log_fd >= 0) ::close(log_fd);
  ::setpgid(pid, pid);  // also in the parent, so Stop() can signal the group at once
  pid_ = pid;
  const auto give_up = Clock::now() + kStartTimeout;
  while (Clock::now() < give_up) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *why = "s3rver exited at start; its log: " + Tail(log_path_);
      return false;
    }
    if (PortAccepts(port_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Stop();
  *why = "s3rver did not accept connections on port " + std::to_string(port_) +
         " within 15 s; its log: " + Tail(log_path_);
  return false;
}

S3Server::~S3Server() {
  Stop();
  std::error_code ec;
  if (!base_dir_.empty()) std::filesystem::remove_all(base_dir_, ec);
}

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

void S3Server::ExportAwsEnvironment() const {
  setenv("AWS_ENDPOINT_URL", endpoint().c_str(), 1);
  setenv("AWS_ACCESS_KEY_ID", kAccessKey, 1);
  setenv("AWS_SECRET_ACCESS_KEY", kSecretKey, 1);
  setenv("AWS_REGION", kRegion, 1);
}

void S3Server::Stop() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() >= give_up) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(-pid_, SIGKILL);  // anything the server left in its group
  pid_ = -1;
  // Until the port refuses connections, a client could still reach the old server.
  const auto closed_by = Clock::now() + std::chrono::seconds(5);
  while (PortAccepts(port_) && Clock::now() < closed_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool S3Server::Restart(std::string* why) {
  std::string ignored;
  Stop();
  return Launch(why != nullptr ? why : &ignored);
}

CommandResult RunAwsCli(const std::string& endpoint, const std::vector<std::string>& args,
                        int timeout_s) {
  CommandResult result;
  // The Debian awscli, not a shim that PATH may put first.
  std::vector<std::string> argv = {"/usr/bin/aws", "--endpoint-url", endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = CleanEnv({
      std::string("AWS_ACCESS_KEY_ID=") + S3Server::kAccessKey,
      std::string("AWS_SECRET_ACCESS_KEY=") + S3Server::kSecretKey,
      std::string("AWS_REGION=") + S3Server::kRegion,
      "AWS_CONFIG_FILE=/dev/null",
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
      "AWS_EC2_METADATA_DISABLED=true",
      "AWS_PAGER=",
  });
  auto c_argv = CStrings(argv);
  auto c_env = CStrings(env);
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return result;
  }
  const auto give_up = Clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
      if (r > 0) {
        sinks[i]->append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace cairn::testing
