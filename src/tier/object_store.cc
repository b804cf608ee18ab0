#include "tier/object_store.h"

#include "tier/file_object_store.h"
#include "tier/s3_object_store.h"

namespace cairn::tier {

Status CheckKey(std::string_view key) {
  if (key.empty()) return Status(Code::kInvalid, "empty object key");
  if (key.front() == '/') return Status(Code::kInvalid, "object key starts with '/'");
  if (key.find('\0') != std::string_view::npos) return Status(Code::kInvalid, "NUL in object key");
  return Status::Ok();
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const std::string& url,
                                                     const StoreOptions& options) {
  constexpr std::string_view kFile = "file://";
  constexpr std::string_view kS3 = "s3://";
  std::string_view u = url;
  if (u.starts_with(kFile)) {
    std::string path(u.substr(kFile.size()));
    if (path.empty() || path.front() != '/') {
      return Err(Code::kInvalid,
                 "object store URL '" + url + "' needs an absolute path: file:///absolute/path");
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return OpenFileObjectStore(path);
  }
  if (u.starts_with(kS3)) {
    std::string_view rest = u.substr(kS3.size());
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.empty() || rest.front() == '/') {
      return Err(Code::kInvalid,
                 "object store URL '" + url + "' names no bucket: s3://bucket/prefix");
    }
    return OpenS3ObjectStore(rest, options);
  }
  return Err(Code::kInvalid, "object store URL '" + url +
                                 "' is not supported: use file:///path or s3://bucket/prefix");
}

}  // namespace cairn::tier
