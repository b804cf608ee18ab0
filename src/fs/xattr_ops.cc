// Extended attributes: one KV key per (inode, name). The kernel checks access (namespaces and
// permissions) before the request reaches Cairn.
#include <sys/xattr.h>

#include "fs/file_system.h"
#include "fs/txn.h"

namespace cairn::fs {
namespace {
constexpr size_t kMaxXattrName = 255;
constexpr size_t kMaxXattrValue = 64 * 1024;
}  // namespace

Status FileSystem::SetXattr(uint64_t ino, std::string_view name, std::string_view value,
                            int flags) {
  if (IsSnapIno(ino)) return Status(Code::kReadOnly, "snapshots are read-only");
  if (name.empty()) return Status(Code::kInvalid, "empty attribute name");
  if (name.size() > kMaxXattrName) return Status(Code::kRange, "attribute name too long");
  if (value.size() > kMaxXattrValue) return Status(Code::kNoSpace, "attribute value too large");
  return RunOp([&]() -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    std::unique_lock lock(state->lock);
    if (state->deleted) return Status(Code::kNotFound, "");
    auto existing = meta_->GetXattr(ino, name);
    if (!existing && existing.error().code() != Code::kNotFound) return existing.error();
    if ((flags & XATTR_CREATE) && existing) return Status(Code::kExists, "");
    if ((flags & XATTR_REPLACE) && !existing) return Status(Code::kNoData, "");
    meta::Inode copy = state->inode;
    copy.ctime = meta::Now();
    copy.no_xattrs = false;
    kv::WriteBatch batch;
    batch.Put(meta::XattrKey(ino, name), std::string(value));
    return CommitData(*state, copy, &batch, {});
  });
}

Result<std::string> FileSystem::GetXattr(uint64_t ino, std::string_view name) {
  if (IsSnapIno(ino)) {
    auto v = SnapGetXattr(ino, name);
    if (!v && v.error().code() == Code::kNotFound) return Err(Code::kNoData);
    return v;
  }
  if (name.size() > kMaxXattrName) return Err(Code::kRange);
  // The kernel asks for security.capability before every write: an inode known to have no
  // attributes answers from its cached record.
  CAIRN_ASSIGN_OR_RETURN(const bool none, HasNoXattrs(ino));
  if (none) return Err(Code::kNoData);
  auto v = meta_->GetXattr(ino, name);
  if (!v && v.error().code() == Code::kNotFound) return Err(Code::kNoData);
  return v;
}

Result<std::vector<std::string>> FileSystem::ListXattr(uint64_t ino) {
  if (IsSnapIno(ino)) return SnapListXattr(ino);
  CAIRN_ASSIGN_OR_RETURN(const bool none, HasNoXattrs(ino));
  if (none) return std::vector<std::string>();
  return meta_->ListXattrs(ino);
}

Result<bool> FileSystem::HasNoXattrs(uint64_t ino) {
  CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
  CAIRN_RETURN_IF_ERROR(Revalidate(*state));
  bool none;
  {
    std::shared_lock lock(state->lock);
    if (state->deleted) return Err(Code::kNotFound);
    none = state->inode.no_xattrs;
  }
  cache_->TryEvict(ino, &state);
  return none;
}

Status FileSystem::RemoveXattr(uint64_t ino, std::string_view name) {
  if (IsSnapIno(ino)) return Status(Code::kReadOnly, "snapshots are read-only");
  return RunOp([&]() -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto state, cache_->Get(ino));
    std::unique_lock lock(state->lock);
    if (state->deleted) return Status(Code::kNotFound, "");
    auto existing = meta_->GetXattr(ino, name);
    if (!existing) {
      return existing.error().code() == Code::kNotFound ? Status(Code::kNoData, "")
                                                        : existing.error();
    }
    meta::Inode copy = state->inode;
    copy.ctime = meta::Now();
    kv::WriteBatch batch;
    batch.Delete(meta::XattrKey(ino, name));
    return CommitData(*state, copy, &batch, {});
  });
}

}  // namespace cairn::fs
