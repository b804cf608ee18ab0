// Status and Result<T>: Cairn's error values. No exceptions cross a layer boundary; every fallible
// call returns one of these. A Status is one enum plus an optional message, cheap on success.
// Thread-safety: values; safe to copy and move between threads.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace cairn {

// The one table of error codes. ToErrno() maps each to an errno once, for FUSE and the CLI.
enum class Code : int {
  kOk = 0,
  kNotFound,      // ENOENT
  kExists,        // EEXIST
  kNotDir,        // ENOTDIR
  kIsDir,         // EISDIR
  kNotEmpty,      // ENOTEMPTY
  kInvalid,       // EINVAL: bad argument
  kNameTooLong,   // ENAMETOOLONG
  kPermission,    // EPERM
  kAccess,        // EACCES
  kNoData,        // ENODATA: missing xattr
  kRange,         // ERANGE: buffer too small
  kNoSpace,       // ENOSPC
  kTooBig,        // EFBIG
  kCorruption,    // EIO: a checksum or format check failed; never returned as data
  kIo,            // EIO: the OS or the KV store failed
  kNotSupported,  // EOPNOTSUPP
  kBusy,          // EBUSY: already mounted, locked
  kTooManyLinks,  // EMLINK
  kCrossDevice,   // EXDEV
  kBadHandle,     // EBADF
  kUnavailable,   // EIO: the object store or metadata database cannot be reached now (retry)
  kChanged,       // EIO: an object changed under Cairn (ETag mismatch); never mixed data
  kReadOnly,      // EROFS: a snapshot (read-only view)
  kConflict,      // EIO: a batch's expectation failed (another node changed the record); rerun
};

const char* CodeName(Code code);
int ToErrno(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  // Lets `return Err(...)` serve functions returning Status as well as Result<T>.
  Status(std::unexpected<Status> u) : Status(std::move(u.error())) {}  // NOLINT(runtime/explicit)

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not found: /a/b" style text for humans.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Status>;

inline std::unexpected<Status> Err(Code code, std::string message = {}) {
  return std::unexpected<Status>(Status(code, std::move(message)));
}
inline std::unexpected<Status> Err(Status status) {
  return std::unexpected<Status>(std::move(status));
}

namespace internal {
inline Status ToStatus(Status s) { return s; }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r ? Status::Ok() : r.error();
}
}  // namespace internal

}  // namespace cairn

// Propagate a failed Status or Result from the expression to the caller.
#define CAIRN_RETURN_IF_ERROR(expr)                          \
  do {                                                       \
    ::cairn::Status _st = ::cairn::internal::ToStatus(expr); \
    if (!_st.ok()) return ::cairn::Err(std::move(_st));      \
  } while (0)

#define CAIRN_CONCAT_INNER(a, b) a##b
#define CAIRN_CONCAT(a, b) CAIRN_CONCAT_INNER(a, b)
#define CAIRN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)      \
  auto tmp = (expr);                                     \
  if (!tmp) return ::cairn::Err(std::move(tmp).error()); \
  lhs = std::move(*tmp)
// lhs = value of a Result expression, or return its error.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL(CAIRN_CONCAT(_res_, __LINE__), lhs, expr)
