// S3Server: a real S3 server for tests — the npm package s3rver, installed by
// scripts/install-deps.sh into tests/s3server/node_modules — run as a child process on a free
// loopback port with a fresh data directory. Plus RunAwsCli(), which drives the Debian awscli
// (/usr/bin/aws) against such a server, to check what Cairn wrote with an independent client.
//
// s3rver accepts the access key S3RVER (any secret: it checks the access key, the date and the
// form of a SigV4 Authorization header, not the signature itself).
//
// Links nothing from src/: POSIX and the standard library only. The build must define
// CAIRN_SOURCE_DIR (the repository root) for the files that include this.
// Ownership: an S3Server owns its process (group) and its temporary directory; the destructor
// stops the one and removes the other. Thread-safety: not thread-safe; one owner drives it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace cairn::testing {

class S3Server {
 public:
  static constexpr char kAccessKey[] = "S3RVER";
  static constexpr char kSecretKey[] = "S3RVER";
  static constexpr char kRegion[] = "us-east-1";

  // Starts s3rver with bucket created. nullptr when node or the s3rver package is missing or the
  // server does not accept connections within ~15 s; *why (if given) then says which, for
  // GTEST_SKIP() or a failure message.
  static std::unique_ptr<S3Server> Start(const std::string& bucket, std::string* why = nullptr);

  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  // "http://127.0.0.1:PORT".
  std::string endpoint() const;
  // Points this process and its children (a mount, the cairn CLI) at the server, the way every
  // AWS tool finds one: AWS_ENDPOINT_URL, the access keys and the region.
  void ExportAwsEnvironment() const;
  const std::string& bucket() const { return bucket_; }
  int port() const { return port_; }
  // Where s3rver keeps the buckets' files.
  const std::string& data_dir() const { return data_dir_; }
  bool running() const { return pid_ > 0; }

  // Kills the server's process group and reaps it. Idempotent.
  void Stop();
  // Stops (if running) and starts again on the same port with the same data. False (and *why)
  // if it does not come back.
  bool Restart(std::string* why = nullptr);

 private:
  S3Server() = default;
  bool Launch(std::string* why);

  std::string bucket_;
  std::string base_dir_;  // temporary; holds data/ and s3rver.log
  std::string data_dir_;
  std::string log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};

struct CommandResult {
  int exit_code = -1;  // -1: could not run, or killed (timeout)
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs /usr/bin/aws --endpoint-url ENDPOINT ARGS... with the s3rver credentials and region in a
// clean AWS environment (no profile, config or pager), at most timeout_s seconds.
CommandResult RunAwsCli(const std::string& endpoint, const std::vector<std::string>& args,
                        int timeout_s = 120);

}  // namespace cairn::testing
