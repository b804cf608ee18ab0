// The kernel's FUSE ABI beyond what Debian 12's <linux/fuse.h> (protocol 7.38) defines: the parts
// of protocols 7.39-7.45 that Cairn uses, written from the kernel's documented uapi
// (include/uapi/linux/fuse.h, Documentation/filesystems/fuse/fuse-io-uring.rst). The kernel keeps
// this ABI stable: a newer kernel accepts an older protocol's structures, and says in INIT which
// features it offers. Pure definitions; static_asserts pin every size the kernel checks.
#pragma once

#include <linux/fuse.h>

#include <cstdint>

namespace cairn::fuse::abi {

// Protocol minor this code speaks at most (kernel 6.18 speaks 7.45).
constexpr uint32_t kMinorVersion = 45;

// INIT flags past bit 31, sent in fuse_init_in/out.flags2 (bit n-32) with FUSE_INIT_EXT.
constexpr uint64_t kPassthrough = 1ull << 37;  // 7.40
constexpr uint64_t kOverIoUring = 1ull << 41;  // 7.42: requests through io_uring queues

// FUSE-over-io_uring (7.42). Every request arrives in a header buffer (this layout) plus a
// payload buffer that the daemon registers per ring entry.
constexpr size_t kUringInOutHeaderSize = 128;
constexpr size_t kUringOpInOutSize = 128;

struct UringEntInOut {
  uint64_t flags;
  uint64_t commit_id;   // echoed in UringCmdReq::commit_id with the reply
  uint32_t payload_sz;  // bytes valid in the payload buffer, either direction
  uint32_t padding;
  uint64_t reserved;
};

struct UringReqHeader {
  char in_out[kUringInOutHeaderSize];  // fuse_in_header on fetch, fuse_out_header on commit
  char op_in[kUringOpInOutSize];       // the opcode's fixed first argument (may be empty)
  UringEntInOut ring_ent_in_out;
};

enum UringCmd : uint32_t {
  kUringCmdInvalid = 0,
  kUringCmdRegister = 1,        // register an entry's buffers and fetch a request into them
  kUringCmdCommitAndFetch = 2,  // reply to the request in the entry and fetch the next
};

// The command data in the 80-byte area of a 128-byte SQE.
struct UringCmdReq {
  uint64_t flags;
  uint64_t commit_id;  // 0 for REGISTER
  uint16_t qid;        // the queue: one per possible CPU
  uint8_t padding[6];
};

static_assert(sizeof(UringEntInOut) == 32);
static_assert(sizeof(UringReqHeader) == 288);
static_assert(sizeof(UringCmdReq) == 24);
static_assert(sizeof(fuse_in_header) <= kUringInOutHeaderSize);
static_assert(sizeof(fuse_init_out) == 64);

}  // namespace cairn::fuse::abi
