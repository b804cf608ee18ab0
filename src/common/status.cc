#include "common/status.h"

#include <cerrno>

namespace cairn {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not found";
    case Code::kExists:
      return "already exists";
    case Code::kNotDir:
      return "not a directory";
    case Code::kIsDir:
      return "is a directory";
    case Code::kNotEmpty:
      return "directory not empty";
    case Code::kInvalid:
      return "invalid argument";
    case Code::kNameTooLong:
      return "name too long";
    case Code::kPermission:
      return "operation not permitted";
    case Code::kAccess:
      return "permission denied";
    case Code::kNoData:
      return "no such attribute";
    case Code::kRange:
      return "result out of range";
    case Code::kNoSpace:
      return "no space left";
    case Code::kTooBig:
      return "file too large";
    case Code::kCorruption:
      return "corruption";
    case Code::kIo:
      return "I/O error";
    case Code::kNotSupported:
      return "not supported";
    case Code::kBusy:
      return "busy";
    case Code::kTooManyLinks:
      return "too many links";
    case Code::kCrossDevice:
      return "cross-device link";
    case Code::kBadHandle:
      return "bad handle";
    case Code::kUnavailable:
      return "service unavailable";
    case Code::kChanged:
      return "object changed";
    case Code::kReadOnly:
      return "read-only snapshot";
    case Code::kConflict:
      return "changed concurrently";
  }
  return "unknown";
}

int ToErrno(Code code) {
  switch (code) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
      return ENOENT;
    case Code::kExists:
      return EEXIST;
    case Code::kNotDir:
      return ENOTDIR;
    case Code::kIsDir:
      return EISDIR;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kInvalid:
      return EINVAL;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kPermission:
      return EPERM;
    case Code::kAccess:
      return EACCES;
    case Code::kNoData:
      return ENODATA;
    case Code::kRange:
      return ERANGE;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kTooBig:
      return EFBIG;
    case Code::kCorruption:
      return EIO;
    case Code::kIo:
      return EIO;
    case Code::kNotSupported:
      return EOPNOTSUPP;
    case Code::kBusy:
      return EBUSY;
    case Code::kTooManyLinks:
      return EMLINK;
    case Code::kCrossDevice:
      return EXDEV;
    case Code::kBadHandle:
      return EBADF;
    case Code::kUnavailable:
    case Code::kChanged:
    case Code::kConflict:
      return EIO;
    case Code::kReadOnly:
      return EROFS;
  }
  return EIO;
}

std::string Status::ToString() const {
  if (message_.empty()) return CodeName(code_);
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace cairn
