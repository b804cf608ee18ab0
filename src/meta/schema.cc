#include "meta/schema.h"

#include <dirent.h>
#include <fmt/format.h>
#include <time.h>

#include "common/coding.h"

namespace cairn::meta {
namespace {

std::string Tagged(char tag, uint64_t a) {
  std::string k;
  k.reserve(9);
  k.push_back(tag);
  PutBig64(&k, a);
  return k;
}

void PutTime(std::string* out, const Timespec& t) {
  PutFixed64(out, static_cast<uint64_t>(t.sec));
  PutFixed32(out, t.nsec);
}
bool GetTime(Decoder* d, Timespec* t) {
  uint64_t sec;
  if (!d->Get64(&sec) || !d->Get32(&t->nsec)) return false;
  t->sec = static_cast<int64_t>(sec);
  return true;
}

bool GetString(Decoder* d, std::string* out) {
  uint32_t n;
  std::string_view bytes;
  if (!d->Get32(&n) || !d->GetBytes(n, &bytes)) return false;
  out->assign(bytes);
  return true;
}

Status Corrupt(std::string_view what, uint64_t id) {
  return Status(Code::kCorruption, fmt::format("bad {} record for {}", what, id));
}

}  // namespace

std::string InodeKey(uint64_t ino) { return Tagged('I', ino); }
std::string DentryKey(uint64_t parent, std::string_view name) {
  std::string k = Tagged('D', parent);
  k.append(name);
  return k;
}
std::string DentryPrefix(uint64_t parent) { return Tagged('D', parent); }
std::string ExtentKey(uint64_t ino, uint64_t file_offset) {
  std::string k = Tagged('E', ino);
  PutBig64(&k, file_offset);
  return k;
}
std::string ExtentPrefix(uint64_t ino) { return Tagged('E', ino); }
std::string XattrKey(uint64_t ino, std::string_view name) {
  std::string k = Tagged('X', ino);
  k.append(name);
  return k;
}
std::string XattrPrefix(uint64_t ino) { return Tagged('X', ino); }
std::string SegmentKey(uint64_t segment_id) { return Tagged('S', segment_id); }
std::string SegmentPrefix() { return "S"; }
std::string OrphanKey(uint64_t ino) { return Tagged('O', ino); }
std::string SnapshotKey(std::string_view name) { return "N" + std::string(name); }
std::string SnapshotPrefix() { return "N"; }
std::string OrphanPrefix() { return "O"; }
std::string OrphanValue(uint32_t node) {
  std::string v;
  if (node != 0) PutFixed32(&v, node);
  return v;
}
uint32_t OrphanNode(std::string_view value) {
  return value.size() == 4 ? DecodeFixed32(value.data()) : 0;
}
std::string CounterKey(std::string_view name) { return "M" + std::string(name); }
std::string TotalKey(std::string_view name, uint32_t node) {
  if (node == 0) return CounterKey(name);
  return fmt::format("M{}@{:08x}", name, node);
}
std::string LiveKey(uint64_t segment_id) { return Tagged('L', segment_id); }
std::string LivePrefix() { return "L"; }
std::string ObjectRefKey(uint64_t ino) { return Tagged('R', ino); }
std::string ImportKey(uint64_t import_id) { return Tagged('P', import_id); }
std::string ImportPrefix() { return "P"; }

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\xff');  // unreachable for Cairn's tagged keys
}

uint64_t KeyU64(std::string_view key, bool second) {
  return GetBig64(key.substr(second ? 9 : 1, 8));
}
std::string_view KeyName(std::string_view key) { return key.substr(9); }

Timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

// Inode record: version u8, flags u8 (bit 0: inline, bit 1: remote), mode u32, uid u32, gid u32,
// nlink u32, size u64, rdev u64, parent u64, atime, mtime, ctime (sec u64, nsec u32 each), inline
// bytes.
std::string EncodeInode(const Inode& inode) {
  std::string out;
  out.reserve(88 + inode.inline_data.size());
  out.push_back(static_cast<char>(kInodeVersion));
  out.push_back(static_cast<char>((inode.is_inline ? 1 : 0) | (inode.is_remote ? 2 : 0) |
                                  (inode.no_xattrs ? 4 : 0)));
  PutFixed32(&out, inode.mode);
  PutFixed32(&out, inode.uid);
  PutFixed32(&out, inode.gid);
  PutFixed32(&out, inode.nlink);
  PutFixed64(&out, inode.size);
  PutFixed64(&out, inode.rdev);
  PutFixed64(&out, inode.parent);
  PutTime(&out, inode.atime);
  PutTime(&out, inode.mtime);
  PutTime(&out, inode.ctime);
  PutFixed64(&out, inode.stored);
  out.append(inode.inline_data);
  return out;
}

Result<Inode> DecodeInode(uint64_t ino, std::string_view value) {
  Decoder d(value);
  Inode inode;
  inode.ino = ino;
  uint8_t version, flags;
  if (!d.Get8(&version) || (version != 1 && version != kInodeVersion) || !d.Get8(&flags) ||
      !d.Get32(&inode.mode) || !d.Get32(&inode.uid) || !d.Get32(&inode.gid) ||
      !d.Get32(&inode.nlink) || !d.Get64(&inode.size) || !d.Get64(&inode.rdev) ||
      !d.Get64(&inode.parent) || !GetTime(&d, &inode.atime) || !GetTime(&d, &inode.mtime) ||
      !GetTime(&d, &inode.ctime)) {
    return Err(Corrupt("inode", ino));
  }
  inode.stored = UINT64_MAX;
  if (version == kInodeVersion && !d.Get64(&inode.stored)) return Err(Corrupt("inode", ino));
  inode.is_inline = flags & 1;
  inode.is_remote = flags & 2;
  inode.no_xattrs = flags & 4;
  inode.inline_data.assign(d.rest());
  if (inode.is_inline && inode.inline_data.size() != inode.size && !inode.IsSymlink()) {
    return Err(Corrupt("inode (inline size)", ino));
  }
  return inode;
}

std::string EncodeDentry(const Dentry& d) {
  std::string out;
  PutFixed64(&out, d.ino);
  out.push_back(static_cast<char>(d.type));
  return out;
}

Result<Dentry> DecodeDentry(std::string_view value) {
  Decoder d(value);
  Dentry out;
  if (!d.Get64(&out.ino) || !d.Get8(&out.type) || !d.empty()) return Err(Corrupt("dentry", 0));
  return out;
}

uint8_t DirentType(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return DT_REG;
    case S_IFDIR:
      return DT_DIR;
    case S_IFLNK:
      return DT_LNK;
    case S_IFCHR:
      return DT_CHR;
    case S_IFBLK:
      return DT_BLK;
    case S_IFIFO:
      return DT_FIFO;
    case S_IFSOCK:
      return DT_SOCK;
    default:
      return DT_UNKNOWN;
  }
}

// Extent record: version u8, segment_id u64, blob_offset u64, blob_length u32, skip u32,
// length u32, crc count u32, crcs u32 each.
std::string EncodeExtent(const Extent& e) {
  std::string out;
  out.reserve(33 + 4 * e.crcs.size());
  out.push_back(static_cast<char>(kRecordVersion));
  PutFixed64(&out, e.segment_id);
  PutFixed64(&out, e.blob_offset);
  PutFixed32(&out, e.blob_length);
  PutFixed32(&out, e.skip);
  PutFixed32(&out, e.length);
  PutFixed32(&out, static_cast<uint32_t>(e.crcs.size()));
  for (uint32_t c : e.crcs) PutFixed32(&out, c);
  return out;
}

Result<Extent> DecodeExtent(uint64_t file_offset, std::string_view value) {
  Decoder d(value);
  Extent e;
  e.file_offset = file_offset;
  uint8_t version;
  uint32_t n;
  if (!d.Get8(&version) || version != kRecordVersion || !d.Get64(&e.segment_id) ||
      !d.Get64(&e.blob_offset) || !d.Get32(&e.blob_length) || !d.Get32(&e.skip) ||
      !d.Get32(&e.length) || !d.Get32(&n)) {
    return Err(Corrupt("extent", file_offset));
  }
  uint64_t chunks = (static_cast<uint64_t>(e.blob_length) + kChunkSize - 1) / kChunkSize;
  if (n != chunks || static_cast<uint64_t>(e.skip) + e.length > e.blob_length) {
    return Err(Corrupt("extent", file_offset));
  }
  e.crcs.resize(n);
  for (auto& c : e.crcs) {
    if (!d.Get32(&c)) return Err(Corrupt("extent", file_offset));
  }
  return e;
}

std::string EncodeSegment(const SegmentRecord& s) {
  std::string out;
  out.push_back(static_cast<char>(kRecordVersion));
  out.push_back(static_cast<char>(s.state));
  PutFixed64(&out, s.size);
  // Optional tail: absent in records of plain segments. Flags: 1 pushed, 2 a node follows.
  if (s.pushed || !s.origin.empty() || s.node != 0) {
    out.push_back(static_cast<char>((s.pushed ? 1 : 0) | (s.node != 0 ? 2 : 0)));
    PutFixed32(&out, static_cast<uint32_t>(s.origin.size()));
    out.append(s.origin);
    if (s.node != 0) PutFixed32(&out, s.node);
  }
  return out;
}

Result<SegmentRecord> DecodeSegment(uint64_t id, std::string_view value) {
  Decoder d(value);
  SegmentRecord s;
  s.id = id;
  uint8_t version, state;
  if (!d.Get8(&version) || version != kRecordVersion || !d.Get8(&state) || !d.Get64(&s.size) ||
      state < 1 || state > 4) {
    return Err(Corrupt("segment", id));
  }
  s.state = static_cast<SegmentState>(state);
  if (!d.empty()) {
    uint8_t flags;
    if (!d.Get8(&flags) || flags > 3 || !GetString(&d, &s.origin) ||
        ((flags & 2) && !d.Get32(&s.node)) || !d.empty()) {
      return Err(Corrupt("segment", id));
    }
    s.pushed = flags & 1;
  }
  return s;
}

const char* SegmentStateName(SegmentState s) {
  switch (s) {
    case SegmentState::kOpen:
      return "open";
    case SegmentState::kSealed:
      return "sealed";
    case SegmentState::kUploaded:
      return "uploaded";
    case SegmentState::kEvicted:
      return "evicted";
  }
  return "unknown";
}

// ObjectRef record: version u8, import_id u64, key length u32, key, etag length u32, etag.
std::string EncodeObjectRef(const ObjectRef& r) {
  std::string out;
  out.push_back(static_cast<char>(kRecordVersion));
  PutFixed64(&out, r.import_id);
  PutFixed32(&out, static_cast<uint32_t>(r.key.size()));
  out.append(r.key);
  PutFixed32(&out, static_cast<uint32_t>(r.etag.size()));
  out.append(r.etag);
  return out;
}

namespace {}  // namespace

Result<ObjectRef> DecodeObjectRef(std::string_view value) {
  Decoder d(value);
  ObjectRef r;
  uint8_t version;
  if (!d.Get8(&version) || version != kRecordVersion || !d.Get64(&r.import_id) ||
      !GetString(&d, &r.key) || !GetString(&d, &r.etag) || !d.empty()) {
    return Err(Corrupt("object ref", 0));
  }
  return r;
}

// Import record: version u8, dest_ino u64, url length u32, url.
std::string EncodeImport(const ImportRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kRecordVersion));
  PutFixed64(&out, r.dest_ino);
  PutFixed32(&out, static_cast<uint32_t>(r.url.size()));
  out.append(r.url);
  return out;
}

std::string EncodeSnapshot(const SnapshotRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kRecordVersion));
  PutFixed32(&out, r.index);
  PutTime(&out, r.created);
  PutFixed32(&out, static_cast<uint32_t>(r.pins.size()));
  for (uint64_t id : r.pins) PutFixed64(&out, id);
  PutFixed32(&out, static_cast<uint32_t>(r.pushed_to.size()));
  for (const auto& url : r.pushed_to) {
    PutFixed32(&out, static_cast<uint32_t>(url.size()));
    out.append(url);
  }
  return out;
}

Result<SnapshotRecord> DecodeSnapshot(std::string_view name, std::string_view value) {
  Decoder d(value);
  SnapshotRecord r;
  r.name = name;
  uint8_t version;
  uint32_t pins, urls;
  auto bad = [&] {
    return Status(Code::kCorruption, fmt::format("bad snapshot record for '{}'", name));
  };
  if (!d.Get8(&version) || version != kRecordVersion || !d.Get32(&r.index) ||
      !GetTime(&d, &r.created) || !d.Get32(&pins) || pins > d.rest().size() / 8) {
    return Err(bad());
  }
  r.pins.resize(pins);
  for (auto& id : r.pins) {
    if (!d.Get64(&id)) return Err(bad());
  }
  if (!d.Get32(&urls) || urls > d.rest().size() / 4) return Err(bad());
  r.pushed_to.resize(urls);
  for (auto& url : r.pushed_to) {
    if (!GetString(&d, &url)) return Err(bad());
  }
  if (!d.empty() || r.index == 0 || r.index > kMaxSnapshotIndex) return Err(bad());
  return r;
}

Result<ImportRecord> DecodeImport(uint64_t id, std::string_view value) {
  Decoder d(value);
  ImportRecord r;
  r.id = id;
  uint8_t version;
  if (!d.Get8(&version) || version != kRecordVersion || !d.Get64(&r.dest_ino) ||
      !GetString(&d, &r.url) || !d.empty()) {
    return Err(Corrupt("import", id));
  }
  return r;
}

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return Status(Code::kInvalid, "invalid name");
  if (name.size() > kMaxNameLength) return Status(Code::kNameTooLong, "name longer than 255 bytes");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return Status(Code::kInvalid, "name contains '/' or NUL");
  return Status::Ok();
}

}  // namespace cairn::meta
