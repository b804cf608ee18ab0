#include "fuse/wire.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "fuse/kernel_abi.h"

namespace cairn::fuse::wire {

std::optional<size_t> ArgSize(uint32_t opcode, const Session& s) {
  switch (opcode) {
    case FUSE_LOOKUP:
    case FUSE_READLINK:
    case FUSE_SYMLINK:
    case FUSE_UNLINK:
    case FUSE_RMDIR:
    case FUSE_STATFS:
    case FUSE_REMOVEXATTR:
    case FUSE_DESTROY:
      return 0;
    case FUSE_FORGET:
      return sizeof(fuse_forget_in);
    case FUSE_GETATTR:
      return sizeof(fuse_getattr_in);
    case FUSE_SETATTR:
      return sizeof(fuse_setattr_in);
    case FUSE_MKNOD:
      return sizeof(fuse_mknod_in);
    case FUSE_MKDIR:
      return sizeof(fuse_mkdir_in);
    case FUSE_RENAME:
      return sizeof(fuse_rename_in);
    case FUSE_RENAME2:
      return sizeof(fuse_rename2_in);
    case FUSE_LINK:
      return sizeof(fuse_link_in);
    case FUSE_OPEN:
    case FUSE_OPENDIR:
      return sizeof(fuse_open_in);
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS:
      return sizeof(fuse_read_in);
    case FUSE_WRITE:
      return sizeof(fuse_write_in);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
      return sizeof(fuse_release_in);
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR:
      return sizeof(fuse_fsync_in);
    case FUSE_SETXATTR:
      return s.Has(FUSE_SETXATTR_EXT) ? sizeof(fuse_setxattr_in) : FUSE_COMPAT_SETXATTR_IN_SIZE;
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR:
      return sizeof(fuse_getxattr_in);
    case FUSE_INIT:
      return 16;  // major, minor, max_readahead, flags: what every kernel sends
    case FUSE_ACCESS:
      return sizeof(fuse_access_in);
    case FUSE_CREATE:
      return sizeof(fuse_create_in);
    case FUSE_INTERRUPT:
      return sizeof(fuse_interrupt_in);
    case FUSE_BATCH_FORGET:
      return sizeof(fuse_batch_forget_in);
    case FUSE_FALLOCATE:
      return sizeof(fuse_fallocate_in);
    default:
      return std::nullopt;  // FLUSH, locks, ioctl, poll, lseek, ...: ENOSYS, the kernel copes
  }
}

namespace {

Result<Request> Split(const fuse_in_header& h, std::string_view arg_area, std::string_view rest,
                      bool arg_inline, const Session& s) {
  Request r;
  r.header = h;
  const auto size = ArgSize(h.opcode, s);
  if (!size) {
    return Err(Code::kNotSupported,
               fmt::format("opcode {} ({}) not served", h.opcode, OpcodeName(h.opcode)));
  }
  if (arg_inline) {
    // /dev/fuse: the fixed argument is the front of what follows the header.
    if (rest.size() < *size) {
      return Err(Code::kInvalid,
                 fmt::format("{} request of {} bytes is truncated", OpcodeName(h.opcode), h.len));
    }
    r.arg = rest.substr(0, *size);
    r.rest = rest.substr(*size);
  } else {
    // The ring: the fixed argument has its own area (which may hold more than it).
    if (arg_area.size() < *size) {
      return Err(Code::kInvalid, fmt::format("{} argument area too small", OpcodeName(h.opcode)));
    }
    r.arg = arg_area.substr(0, *size);
    r.rest = rest;
  }
  return r;
}

}  // namespace

Result<Request> ParseDev(std::string_view raw, const Session& s, uint64_t* unique) {
  *unique = 0;
  if (raw.size() < sizeof(fuse_in_header)) {
    return Err(Code::kInvalid, fmt::format("request of {} bytes has no header", raw.size()));
  }
  fuse_in_header h;
  std::memcpy(&h, raw.data(), sizeof(h));
  *unique = h.unique;
  if (h.len != raw.size()) {
    return Err(Code::kInvalid, fmt::format("{} request says {} bytes, {} arrived",
                                           OpcodeName(h.opcode), h.len, raw.size()));
  }
  return Split(h, {}, raw.substr(sizeof(h)), /*arg_inline=*/true, s);
}

Result<Request> ParseRing(std::string_view in_out, std::string_view op_in, std::string_view payload,
                          const Session& s, uint64_t* unique) {
  *unique = 0;
  if (in_out.size() < sizeof(fuse_in_header)) {
    return Err(Code::kInvalid, "ring entry without a request header");
  }
  fuse_in_header h;
  std::memcpy(&h, in_out.data(), sizeof(h));
  *unique = h.unique;
  return Split(h, op_in, payload, /*arg_inline=*/false, s);
}

Result<std::string_view> TakeString(std::string_view* rest) {
  const size_t nul = rest->find('\0');
  if (nul == std::string_view::npos) return Err(Code::kInvalid, "string without its NUL");
  std::string_view s = rest->substr(0, nul);
  rest->remove_prefix(nul + 1);
  return s;
}

Result<fuse_init_out> NegotiateInit(const fuse_init_in& in, const InitWants& wants,
                                    Session* session) {
  if (in.major != FUSE_KERNEL_VERSION || in.minor < kMinMinor) {
    return Err(Code::kNotSupported,
               fmt::format("the kernel speaks FUSE {}.{}; Cairn needs {}.{} or newer", in.major,
                           in.minor, FUSE_KERNEL_VERSION, kMinMinor));
  }
  uint64_t offered = in.flags;
  if (in.flags & FUSE_INIT_EXT) offered |= uint64_t(in.flags2) << 32;
  fuse_init_out out{};
  out.major = FUSE_KERNEL_VERSION;
  out.minor = std::min<uint32_t>(in.minor, abi::kMinorVersion);
  const uint64_t taken = wants.flags & offered;
  out.flags = static_cast<uint32_t>(taken);
  out.flags2 = static_cast<uint32_t>(taken >> 32);
  out.max_readahead = std::min(in.max_readahead, wants.max_readahead);
  out.max_background = wants.max_background;
  out.congestion_threshold = wants.congestion_threshold;
  out.max_write = wants.max_write;
  out.time_gran = 1;
  if (taken & FUSE_MAX_PAGES) out.max_pages = static_cast<uint16_t>(wants.max_write / 4096);
  session->minor = out.minor;
  session->flags = taken;
  session->max_write = (taken & FUSE_MAX_PAGES) ? wants.max_write : 32 * 4096;
  out.max_write = session->max_write;
  return out;
}

const char* OpcodeName(uint32_t opcode) {
  switch (opcode) {
    case FUSE_LOOKUP:
      return "LOOKUP";
    case FUSE_FORGET:
      return "FORGET";
    case FUSE_GETATTR:
      return "GETATTR";
    case FUSE_SETATTR:
      return "SETATTR";
    case FUSE_READLINK:
      return "READLINK";
    case FUSE_SYMLINK:
      return "SYMLINK";
    case FUSE_MKNOD:
      return "MKNOD";
    case FUSE_MKDIR:
      return "MKDIR";
    case FUSE_UNLINK:
      return "UNLINK";
    case FUSE_RMDIR:
      return "RMDIR";
    case FUSE_RENAME:
      return "RENAME";
    case FUSE_LINK:
      return "LINK";
    case FUSE_OPEN:
      return "OPEN";
    case FUSE_READ:
      return "READ";
    case FUSE_WRITE:
      return "WRITE";
    case FUSE_STATFS:
      return "STATFS";
    case FUSE_RELEASE:
      return "RELEASE";
    case FUSE_FSYNC:
      return "FSYNC";
    case FUSE_SETXATTR:
      return "SETXATTR";
    case FUSE_GETXATTR:
      return "GETXATTR";
    case FUSE_LISTXATTR:
      return "LISTXATTR";
    case FUSE_REMOVEXATTR:
      return "REMOVEXATTR";
    case FUSE_FLUSH:
      return "FLUSH";
    case FUSE_INIT:
      return "INIT";
    case FUSE_OPENDIR:
      return "OPENDIR";
    case FUSE_READDIR:
      return "READDIR";
    case FUSE_RELEASEDIR:
      return "RELEASEDIR";
    case FUSE_FSYNCDIR:
      return "FSYNCDIR";
    case FUSE_GETLK:
      return "GETLK";
    case FUSE_SETLK:
      return "SETLK";
    case FUSE_SETLKW:
      return "SETLKW";
    case FUSE_ACCESS:
      return "ACCESS";
    case FUSE_CREATE:
      return "CREATE";
    case FUSE_INTERRUPT:
      return "INTERRUPT";
    case FUSE_BMAP:
      return "BMAP";
    case FUSE_DESTROY:
      return "DESTROY";
    case FUSE_IOCTL:
      return "IOCTL";
    case FUSE_POLL:
      return "POLL";
    case FUSE_NOTIFY_REPLY:
      return "NOTIFY_REPLY";
    case FUSE_BATCH_FORGET:
      return "BATCH_FORGET";
    case FUSE_FALLOCATE:
      return "FALLOCATE";
    case FUSE_READDIRPLUS:
      return "READDIRPLUS";
    case FUSE_RENAME2:
      return "RENAME2";
    case FUSE_LSEEK:
      return "LSEEK";
    case FUSE_COPY_FILE_RANGE:
      return "COPY_FILE_RANGE";
    default:
      return "unknown";
  }
}

}  // namespace cairn::fuse::wire
