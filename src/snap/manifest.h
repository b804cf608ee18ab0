// Snap-to-Object: how a pushed snapshot lies in an object store (docs/FORMATS.md, "Pushed
// snapshots"). All keys are relative to the store's root (the URL given to format or --to):
//
//   <uuid>/segments/<id:016x>.seg   a segment (the same object the tier uploads)
//   <uuid>/meta/<sha256>            one file of a metadata checkpoint, named by its content
//   snapshots/<name>/<uuid>.json    the manifest of snapshot <name> of file system <uuid>,
//                                   written last: the snapshot exists once it does
//   refs/<uuid>.json                the objects of other file systems that restored file system
//                                   <uuid> still reads
//
// Segments and metadata files are immutable and named by identity or content, so a push uploads
// only what the store lacks, and an interrupted push resumes where it stopped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tier/object_store.h"

namespace cairn::snap {

constexpr int kManifestVersion = 1;
constexpr const char* kManifestFormat = "cairn-snapshot";

std::string ManifestKey(std::string_view name, std::string_view uuid);
std::string MetaKey(std::string_view uuid, std::string_view sha256_hex);
std::string RefsKey(std::string_view uuid);
// The file system prefix of an object key ("<uuid>/..."), or "" when it has none.
std::string KeyOwner(std::string_view key);
// Snapshot names: a path component that does not start with '.' and is at most 128 bytes.
Status CheckSnapshotName(std::string_view name);

struct MetaFile {
  std::string file;  // its name in the checkpoint directory
  std::string key;
  uint64_t size = 0;
  std::string sha256;  // hex
};

struct SegmentRef {
  uint64_t id = 0;
  std::string key;
  uint64_t size = 0;
};

struct Manifest {
  int version = kManifestVersion;
  std::string name;
  std::string fs_uuid;  // the file system the snapshot was taken of
  int64_t created = 0;  // seconds since the epoch, when the snapshot was taken
  uint32_t created_nsec = 0;
  int64_t pushed = 0;       // seconds since the epoch, when the push finished
  uint64_t inline_max = 0;  // the source's format settings, which a restore keeps
  uint64_t segment_size = 0;
  uint64_t files = 0;       // regular files
  uint64_t file_bytes = 0;  // their bytes
  std::vector<MetaFile> metadata;
  std::vector<SegmentRef> segments;
  uint64_t manifest_bytes = 0;  // the size of the manifest object itself (set by Decode)

  // Every object key the snapshot needs.
  std::vector<std::string> Keys() const;
};

// JSON with a SHA-256 over the manifest body; Decode checks it, the format and the version, so a
// damaged or truncated manifest is reported, never used.
std::string EncodeManifest(const Manifest& m);
Result<Manifest> DecodeManifest(std::string_view bytes, std::string_view key);

// refs/<uuid>.json: the foreign object keys a restored file system reads.
struct Refs {
  std::string fs_uuid;
  std::string source;  // the manifest it was restored from
  std::vector<std::string> keys;
};
std::string EncodeRefs(const Refs& r);
Result<Refs> DecodeRefs(std::string_view bytes, std::string_view key);

// Hex SHA-256 of a local file, or of bytes.
Result<std::string> Sha256File(const std::string& path);
std::string Sha256Hex(std::string_view bytes);

// Every manifest in the store (all snapshots of all file systems), in key order. A manifest that
// cannot be read or fails its checksum is reported in `damaged` (key: reason) and left out.
struct Listing {
  std::vector<Manifest> manifests;
  std::vector<std::pair<std::string, std::string>> damaged;
};
Result<Listing> ListSnapshots(tier::ObjectStore& store);
// The keys under prefix (flat, all pages).
Result<std::vector<tier::ObjectInfo>> ListAll(tier::ObjectStore& store, const std::string& prefix);
// Reads a whole (small) object.
Result<std::string> GetObject(tier::ObjectStore& store, std::string_view key);
// Finds the manifest of snapshot `name` ("NAME" or "NAME@UUID" when several file systems pushed
// one of that name).
Result<Manifest> FindSnapshot(tier::ObjectStore& store, std::string_view name);

}  // namespace cairn::snap
