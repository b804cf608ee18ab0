// Cairn's metadata schema: the keys and records stored in the KvStore. Every format here is
// described in docs/FORMATS.md and pinned by golden bytes in tests/meta/schema_test.cc.
//
// Keys (integers big-endian so that byte order is numeric order):
//   'I' ino                  -> Inode record
//   'D' parent name          -> Dentry record (child ino, type)
//   'E' ino file_offset      -> Extent record
//   'X' ino name             -> xattr value
//   'S' segment_id           -> Segment record
//   'O' ino                  -> node (orphan: unlinked while open on that node, "" for node 0;
//                               reclaimed when its last handle closes or at that node's mount)
//   'M' name                 -> counters (next_ino, next_segment); the file system's totals
//                               (StatCounter names, kv::WriteBatch::Add values)
//   'L' segment_id           -> live bytes of a segment (kv::WriteBatch::Add value)
//   'R' ino                  -> ObjectRef (an imported file: its bytes are a foreign object)
//   'P' import_id            -> ImportRecord (the source URL of an import)
//   'N' name                 -> SnapshotRecord (a snapshot: its checkpoint and segment pins)
// Pure functions; thread-safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::meta {

constexpr uint64_t kRootIno = 1;
constexpr uint8_t kRecordVersion = 1;
// Inode records: version 2 adds `stored`; version 1 records are read with stored unknown.
constexpr uint8_t kInodeVersion = 2;
constexpr size_t kMaxNameLength = 255;
// Checksums cover the data of an extent in chunks of this size.
constexpr uint32_t kChunkSize = 64 * 1024;

std::string InodeKey(uint64_t ino);
std::string DentryKey(uint64_t parent, std::string_view name);
std::string DentryPrefix(uint64_t parent);
std::string ExtentKey(uint64_t ino, uint64_t file_offset);
std::string ExtentPrefix(uint64_t ino);
std::string XattrKey(uint64_t ino, std::string_view name);
std::string XattrPrefix(uint64_t ino);
std::string SegmentKey(uint64_t segment_id);
std::string SegmentPrefix();
std::string OrphanKey(uint64_t ino);
std::string OrphanPrefix();
std::string OrphanValue(uint32_t node);
uint32_t OrphanNode(std::string_view value);
std::string CounterKey(std::string_view name);
// The file system's totals under CounterKey (kv counters, changed in the batch of each change),
// and the key whose presence (value: kAccountingVersion, fixed64) says they are kept.
inline constexpr std::string_view kTotalFiles = "total.files";
inline constexpr std::string_view kTotalDirectories = "total.directories";
inline constexpr std::string_view kTotalSymlinks = "total.symlinks";
inline constexpr std::string_view kTotalBytes = "total.bytes";
inline constexpr std::string_view kTotalInlineFiles = "total.inline_files";
inline constexpr std::string_view kTotalInlineBytes = "total.inline_bytes";
inline constexpr std::string_view kAccountingVersionKey = "accounting";
// Where a node adds to a total: CounterKey(name) for node 0 (a single node), else a shard of its
// own, CounterKey(name) + "@" + 8 hex digits, so that the nodes of a cluster never wait for one
// another's row. A total is the sum of its key and its shards (MetaStore::ReadTotal).
std::string TotalKey(std::string_view name, uint32_t node);
inline constexpr uint64_t kAccountingVersion = 1;
std::string LiveKey(uint64_t segment_id);
std::string LivePrefix();
std::string ObjectRefKey(uint64_t ino);
std::string ImportKey(uint64_t import_id);
std::string ImportPrefix();
std::string SnapshotKey(std::string_view name);
std::string SnapshotPrefix();
// The smallest key greater than every key starting with prefix.
std::string PrefixEnd(std::string_view prefix);
// Reads the integer after the one-byte tag (or after tag+8 bytes when second is true).
uint64_t KeyU64(std::string_view key, bool second = false);
// The name part of a 'D' or 'X' key.
std::string_view KeyName(std::string_view key);

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};
Timespec Now();

struct Inode {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type and permission bits, as st_mode
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  uint64_t parent = 0;  // directories only: the one parent ("..")
  Timespec atime, mtime, ctime;
  // When set, the file's whole content is inline_data (size == inline_data.size()); for a symlink
  // inline_data is the target.
  bool is_inline = false;
  std::string inline_data;
  // An imported file: its bytes are one object of an import (ObjectRef under 'R' ino), fetched on
  // first read. Writing to it copies the bytes into segments first and clears the flag.
  bool is_remote = false;
  // Known to have no extended attributes (set for new inodes, cleared by the first setxattr), so
  // that getxattr, which the kernel sends before every write, needs no metadata read. A record
  // without it (older, or of an inode that had attributes) may have some.
  bool no_xattrs = false;
  // Bytes the file's extents map (regular files; holes and inline data are not counted): what
  // st_blocks reports. UINT64_MAX when not known (a version 1 record, until the mount that
  // upgrades it).
  uint64_t stored = 0;

  bool IsDir() const { return S_ISDIR(mode); }
  bool IsReg() const { return S_ISREG(mode); }
  bool IsSymlink() const { return S_ISLNK(mode); }
  bool operator==(const Inode&) const = default;
};
std::string EncodeInode(const Inode& inode);
Result<Inode> DecodeInode(uint64_t ino, std::string_view value);

struct Dentry {
  uint64_t ino = 0;
  uint8_t type = 0;  // DT_REG, DT_DIR, ... (for readdir without loading the inode)
};
std::string EncodeDentry(const Dentry& d);
Result<Dentry> DecodeDentry(std::string_view value);
uint8_t DirentType(uint32_t mode);

// A file range [file_offset, file_offset + length) maps to bytes [skip, skip + length) of a blob
// stored at blob_offset in a segment. crcs[i] is the CRC32C of chunk i (kChunkSize bytes, the last
// one shorter) of the whole blob; a read verifies every chunk it touches.
struct Extent {
  uint64_t file_offset = 0;  // from the key
  uint64_t segment_id = 0;
  uint64_t blob_offset = 0;
  uint32_t blob_length = 0;
  uint32_t skip = 0;
  uint32_t length = 0;
  std::vector<uint32_t> crcs;

  uint64_t end() const { return file_offset + length; }
  bool operator==(const Extent&) const = default;
};
std::string EncodeExtent(const Extent& e);
Result<Extent> DecodeExtent(uint64_t file_offset, std::string_view value);

// open: being appended; sealed: immutable, only on NVMe; uploaded: on NVMe and in the object
// store; evicted: only in the object store.
enum class SegmentState : uint8_t { kOpen = 1, kSealed = 2, kUploaded = 3, kEvicted = 4 };
const char* SegmentStateName(SegmentState s);
struct SegmentRecord {
  uint64_t id = 0;
  SegmentState state = SegmentState::kOpen;
  uint64_t size = 0;  // bytes in the file when sealed
  // The file system whose prefix holds the segment's object, when not this one (a file system
  // restored from a snapshot reads its source's segments and never deletes them).
  std::string origin;
  // Part of a snapshot pushed to this file system's object store: its object outlives the
  // segment until `cairn snap delete --remote` finds nothing that references it.
  bool pushed = false;
  // The cluster node that created it and alone appends, seals, tiers and compacts it (0: a
  // single-node file system).
  uint32_t node = 0;
  bool operator==(const SegmentRecord&) const = default;
};
std::string EncodeSegment(const SegmentRecord& s);
Result<SegmentRecord> DecodeSegment(uint64_t id, std::string_view value);

// An imported file's source: object `key` of import `import_id`, at the ETag it had when listed.
struct ObjectRef {
  uint64_t import_id = 0;
  std::string key;
  std::string etag;
  bool operator==(const ObjectRef&) const = default;
};
std::string EncodeObjectRef(const ObjectRef& r);
Result<ObjectRef> DecodeObjectRef(std::string_view value);

// An import: the object store URL whose keys it mirrors, and the directory it fills.
struct ImportRecord {
  uint64_t id = 0;
  std::string url;
  uint64_t dest_ino = 0;
  bool operator==(const ImportRecord&) const = default;
};
std::string EncodeImport(const ImportRecord& r);
Result<ImportRecord> DecodeImport(uint64_t id, std::string_view value);

// A snapshot: a checkpoint of the metadata in DATA_DIR/snapshots/<index>, shown read-only at
// .snapshots/<name>. pins: the segments that existed when it was taken (a superset of those it
// references); compaction and removal leave them alone while the snapshot exists.
struct SnapshotRecord {
  std::string name;    // from the key
  uint32_t index = 0;  // 1..kMaxSnapshotIndex: names the checkpoint and the view's inode numbers
  Timespec created;
  std::vector<uint64_t> pins;
  std::vector<std::string> pushed_to;  // object store URLs it was pushed to
  bool operator==(const SnapshotRecord&) const = default;
};
// Indexes are never reused (a counter, 'M' next_snapshot), so the kernel never mistakes a new
// snapshot's inode for a deleted one's.
constexpr uint32_t kMaxSnapshotIndex = (1u << 23) - 1;
std::string EncodeSnapshot(const SnapshotRecord& r);
Result<SnapshotRecord> DecodeSnapshot(std::string_view name, std::string_view value);

// Validates one path component: non-empty, no '/', no NUL, not "." or "..", at most 255 bytes.
Status CheckName(std::string_view name);

}  // namespace cairn::meta
