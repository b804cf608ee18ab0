// The native client's dataset index on the wire: the daemon's "dataset_index" reply and
// cairn::Dataset::Serialize (include/cairn/client.h) hold one entry per regular file,
//   [path, ino, size, imported (read from the object cache or the mount), inline bytes in hex,
//    extents [[file offset, segment, blob offset, blob length, skip, length, [chunk CRC32Cs]]...],
//    the imported object's ETag]
// encoded and checked here, by both sides.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "fs/file_system.h"

namespace cairn::server {

nlohmann::json EncodeIndexedFile(const fs::FileSystem::IndexedFile& f);
// kCorruption, saying what is wrong, for an entry that is not one (or whose extents do not add up).
Result<fs::FileSystem::IndexedFile> DecodeIndexedFile(const nlohmann::json& j);

}  // namespace cairn::server
