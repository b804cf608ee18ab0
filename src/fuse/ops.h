// fuse::Ops: what each FUSE request means for Cairn, whichever transport brought it. A decoded
// request (fuse/wire.h) comes in; one FileSystem call answers it; the reply goes out through the
// transport's Reply. Readdir paging, readdirplus references, negative entries, kernel cache
// timeouts and the INIT choices live here, once.
// Thread-safety: Serve may run on many threads at once; SetSession happens before the first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "fs/file_system.h"
#include "fuse/options.h"
#include "fuse/wire.h"

namespace cairn::fuse {

// Where a reply goes. The transport owns the body's buffer (a ring entry's payload, or a
// thread's own buffer for /dev/fuse).
class Reply {
 public:
  virtual ~Reply() = default;
  // Room for a body of up to Capacity() bytes, valid until Send.
  virtual char* Body() = 0;
  virtual size_t Capacity() const = 0;
  // Sends error (0, or a positive errno) with the first len bytes of Body. Returns 0, or the
  // errno the kernel answered with (ENOENT: the request was interrupted and is gone).
  virtual int Send(int error, size_t len) = 0;
};

class Ops {
 public:
  Ops(fs::FileSystem* fs, const FuseOptions& options) : fs_(fs), options_(options) {}

  // What INIT asks the kernel for (wire::NegotiateInit takes what it offers).
  wire::InitWants Wants() const;
  void SetSession(const wire::Session& s) { session_ = s; }
  const wire::Session& session() const { return session_; }

  // Serves one request. FORGET, BATCH_FORGET and INTERRUPT take no reply: Serve returns false
  // for them without calling Send; otherwise it sends exactly one reply and returns true.
  // With FuseOptions::debug, each request and its answer are logged.
  bool Serve(const wire::Request& req, Reply& reply);

 private:
  bool ServeOne(const wire::Request& req, Reply& reply);
  // A change the kernel flagged (FUSE_HANDLE_KILLPRIV_V2: a write, truncate, chown or open by a
  // caller who may not keep them) of a regular file: drops its security.capability and returns
  // its mode without set-user-ID and set-group-ID (the latter only where group may execute), or
  // nullopt when the mode keeps. KillPrivilegesNow also sets that mode.
  Result<std::optional<uint32_t>> KillPrivileges(uint64_t ino);
  Status KillPrivilegesNow(uint64_t ino);
  double AttrTimeout(uint64_t ino) const;
  double EntryTimeout(uint64_t ino) const;
  // A fuse_entry_out for st (or a negative entry for a null st) at the front of the body.
  size_t PutEntry(char* out, const struct stat* st) const;
  void ReplyEntry(Reply& reply, const Result<struct stat>& st) const;
  void ReplyAttr(Reply& reply, uint64_t ino, const Result<struct stat>& st) const;
  void ReplyBytes(Reply& reply, uint64_t size, const std::string& bytes) const;
  void ReadDir(const wire::Request& req, Reply& reply, bool plus);

  fs::FileSystem* const fs_;
  const FuseOptions options_;
  wire::Session session_;
};

// Fills a fuse_attr from a stat.
void ToFuseAttr(const struct stat& st, fuse_attr* out);

}  // namespace cairn::fuse
