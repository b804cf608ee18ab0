// FileObjectStore: an ObjectStore in a local directory (file:///path), the embedded default.
// An object is the file ROOT/KEY; it is written to a temporary name, fsync'd and renamed, so a
// reader or a crash sees the old object or the new one, never a torn one. The ETag is derived
// from the file's size, mtime and inode, so replacing an object changes it.
// Thread-safety: thread-safe (each call works on its own file descriptors).
#pragma once

#include <memory>
#include <string>

#include "tier/object_store.h"

namespace cairn::tier {

// root: an absolute directory path; created if missing.
Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::string& root);

}  // namespace cairn::tier
