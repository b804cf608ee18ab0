// The FUSE wire format as Cairn's own transports see it (fuse/transport.h): a request as it
// arrives, split into its header, its fixed argument and the rest, checked against what the
// opcode must carry; and the INIT negotiation. Written from the kernel's documented ABI
// (<linux/fuse.h> plus fuse/kernel_abi.h); docs/ARCHITECTURE.md says why Cairn speaks it itself.
//
// A request on /dev/fuse is one buffer: fuse_in_header, the opcode's fixed argument (a struct, or
// nothing), then names and data. On an io_uring queue the same parts arrive in three places (the
// header area, the op area and the payload buffer). Either way the decoder checks every length
// before anything reads it: a truncated or oversized request, an unknown opcode or a name without
// its terminating NUL is an error to reply with (EINVAL, ENOSYS), never a read past the buffer.
// Pure functions; thread-safe.
#pragma once

#include <linux/fuse.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::fuse::wire {

// What INIT settled: the protocol minor both sides speak and the features the kernel took.
struct Session {
  uint32_t minor = 0;
  uint64_t flags = 0;  // init flags, flags2 in the high half
  uint32_t max_write = 0;
  bool Has(uint64_t flag) const { return (flags & flag) != 0; }
};

struct Request {
  fuse_in_header header{};
  std::string_view arg;   // the fixed argument, exactly the size the opcode has
  std::string_view rest;  // names and data after it
  uint32_t opcode() const { return header.opcode; }
  uint64_t unique() const { return header.unique; }
  uint64_t nodeid() const { return header.nodeid; }
  // The fixed argument as T. REQUIRES: the opcode's argument is a T (ArgSize says so).
  template <typename T>
  const T& As() const {
    return *reinterpret_cast<const T*>(arg.data());
  }
};

// The fixed argument's size for opcode under session s; nullopt for an opcode Cairn does not
// know (the reply is ENOSYS).
std::optional<size_t> ArgSize(uint32_t opcode, const Session& s);

// Errors: kInvalid (EINVAL to the kernel) for a malformed request, kNotSupported (ENOSYS) for an
// unknown opcode; where the header could be read, *unique says which request to answer (0: none).
// The views point into the caller's buffers.
Result<Request> ParseDev(std::string_view raw, const Session& s, uint64_t* unique);
Result<Request> ParseRing(std::string_view in_out, std::string_view op_in, std::string_view payload,
                          const Session& s, uint64_t* unique);

// Takes one NUL-terminated string off the front of *rest (a name, a symlink target, an xattr
// name). kInvalid when it has no NUL within *rest.
Result<std::string_view> TakeString(std::string_view* rest);

// INIT: what the kernel offered (its fuse_init_in, zero-filled past what an older kernel sent) and
// what Cairn wants, into the reply and the session. kNotSupported for a protocol other than 7 or
// older than 7.28 (kMinMinor).
constexpr uint32_t kMinMinor = 28;
struct InitWants {
  uint64_t flags = 0;  // wanted, taken where offered
  uint32_t max_write = 1 << 20;
  uint32_t max_readahead = 1 << 20;
  uint16_t max_background = 64;
  uint16_t congestion_threshold = 48;
};
Result<fuse_init_out> NegotiateInit(const fuse_init_in& in, const InitWants& wants,
                                    Session* session);

const char* OpcodeName(uint32_t opcode);

}  // namespace cairn::fuse::wire
