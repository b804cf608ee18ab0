// One FUSE-over-io_uring command in a 128-byte SQE (fuse/kernel_abi.h): REGISTER of an entry's
// buffers (iov: header and payload) or COMMIT_AND_FETCH of the reply in it (commit_id). The one
// place that lays out the SQE, for the transport and the benchmark alike.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuse/kernel_abi.h"

namespace cairn::fuse::abi {

inline void PrepareUringCmd(io_uring_sqe* sqe, int fd, uint32_t cmd, uint16_t qid, const iovec* iov,
                            uint64_t commit_id, uint64_t user_data) {
  std::memset(sqe, 0, sizeof(*sqe));
  // The 80-byte command area runs from sqe->cmd (offset 48) into the second half of the SQE.
  auto* area =
      reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(sqe) + offsetof(io_uring_sqe, cmd));
  std::memset(area, 0, 80);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = cmd;
  sqe->user_data = user_data;
  UringCmdReq req{};
  req.qid = qid;
  if (cmd == kUringCmdRegister) {
    sqe->addr = reinterpret_cast<uint64_t>(iov);
    sqe->len = 2;
  } else {
    req.commit_id = commit_id;
  }
  std::memcpy(area, &req, sizeof(req));
}

}  // namespace cairn::fuse::abi
