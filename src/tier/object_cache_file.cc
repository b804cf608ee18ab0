#include "tier/object_cache_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/uio.h>

#include <cstring>
#include <vector>

#include "common/checksum.h"
#include "common/coding.h"
#include "meta/schema.h"

namespace cairn::tier {
namespace {

constexpr char kMagic[8] = {'C', 'A', 'I', 'R', 'N', 'O', 'B', 'J'};
constexpr uint32_t kVersion = 1;

uint64_t Chunks(uint64_t size) { return (size + meta::kChunkSize - 1) / meta::kChunkSize; }

// The header's fields, when it is whole and sealed by its checksum.
bool DecodeHeader(const char* h, uint64_t* size, std::string_view* etag) {
  if (std::memcmp(h, kMagic, 8) != 0 || DecodeFixed32(h + 508) != Crc32c(h, 508) ||
      DecodeFixed32(h + 8) != kVersion) {
    return false;
  }
  const uint32_t etag_len = DecodeFixed32(h + 12);
  if (etag_len > ObjectCacheFile::kMaxEtag) return false;
  *size = DecodeFixed64(h + 16);
  *etag = std::string_view(h + 24, etag_len);
  return true;
}

// Each chunk of data[0, n), the object's bytes from chunk `first` on, against its CRC32C.
Status CheckChunks(const char* data, size_t n, const char* crcs, uint64_t first,
                   const std::string& path) {
  for (size_t off = 0, c = 0; off < n; off += meta::kChunkSize, ++c) {
    const size_t len = std::min<size_t>(meta::kChunkSize, n - off);
    if (Crc32c(data + off, len) != DecodeFixed32(crcs + 4 * c)) {
      return Status(Code::kCorruption, fmt::format("checksum mismatch in cached object {} at {}",
                                                   path, (first + c) * meta::kChunkSize));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string ObjectCacheFile::Path(const std::string& data_dir, uint64_t ino) {
  return fmt::format("{}/objcache/{:016x}.obj", data_dir, ino);
}

std::string ObjectCacheFile::EncodeHeader(uint64_t size, const std::string& etag) {
  std::string h(kHeaderSize, '\0');
  std::memcpy(h.data(), kMagic, 8);
  EncodeFixed32(h.data() + 8, kVersion);
  EncodeFixed32(h.data() + 12, static_cast<uint32_t>(etag.size()));
  EncodeFixed64(h.data() + 16, size);
  std::memcpy(h.data() + 24, etag.data(), std::min(etag.size(), kMaxEtag));
  EncodeFixed32(h.data() + 508, Crc32c(h.data(), 508));
  return h;
}

uint64_t ObjectCacheFile::FileBytes(uint64_t size) { return kHeaderSize + size + 4 * Chunks(size); }

Result<ObjectCacheFile> ObjectCacheFile::Open(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(File f, File::Open(path, O_RDONLY));
  std::string h(kHeaderSize, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t got, f.ReadAt(0, h.data(), h.size()));
  CAIRN_ASSIGN_OR_RETURN(uint64_t file_bytes, f.Size());
  auto damaged = [&](std::string_view why) {
    return Err(Code::kCorruption, fmt::format("cached object {}: {}", path, why));
  };
  uint64_t size;
  std::string_view etag;
  if (got != h.size() || !DecodeHeader(h.data(), &size, &etag)) return damaged("bad header");
  if (file_bytes != FileBytes(size)) return damaged("wrong length");
  return ObjectCacheFile(std::move(f), path, size, std::string(etag));
}

Status ObjectCacheFile::ReadChecked(uint64_t offset, size_t n, char* out) const {
  if (n == 0) return Status::Ok();
  if (offset + n > size_) return Status(Code::kInvalid, "read past the cached object");
  const uint64_t first = offset / meta::kChunkSize;
  const uint64_t last = (offset + n - 1) / meta::kChunkSize;
  const uint64_t begin = first * meta::kChunkSize;
  const uint64_t end = std::min<uint64_t>(size_, (last + 1) * meta::kChunkSize);
  std::vector<char> buf(end - begin);
  std::vector<char> crcs(4 * (last - first + 1));
  CAIRN_ASSIGN_OR_RETURN(size_t got, file_.ReadAt(kHeaderSize + begin, buf.data(), buf.size()));
  CAIRN_ASSIGN_OR_RETURN(size_t got_crcs,
                         file_.ReadAt(kHeaderSize + size_ + 4 * first, crcs.data(), crcs.size()));
  if (got != buf.size() || got_crcs != crcs.size()) {
    return Status(Code::kCorruption, fmt::format("cached object {} is truncated", path_));
  }
  CAIRN_RETURN_IF_ERROR(CheckChunks(buf.data(), buf.size(), crcs.data(), first, path_));
  std::memcpy(out, buf.data() + (offset - begin), n);
  return Status::Ok();
}

Status ObjectCacheFile::Read(const std::string& path, uint64_t size, const std::string& etag,
                             uint64_t offset, size_t n, char* out) {
  if (offset != 0 || n != size) {
    CAIRN_ASSIGN_OR_RETURN(ObjectCacheFile f, Open(path));
    if (f.size() != size || f.etag() != etag) {
      return Status(Code::kChanged, fmt::format("cached object {} holds another version", path));
    }
    return f.ReadChecked(offset, n, out);
  }
  CAIRN_ASSIGN_OR_RETURN(File f, File::Open(path, O_RDONLY));
  char header[kHeaderSize];
  std::vector<char> crcs(4 * Chunks(size));
  // One byte past the end: a longer file (another version) reads more than expected.
  char extra;
  iovec iov[4] = {{header, kHeaderSize}, {out, size}, {crcs.data(), crcs.size()}, {&extra, 1}};
  const uint64_t want = FileBytes(size);
  uint64_t got = 0;
  while (got < want + 1) {
    // preadv resumes where a short read stopped: skip what arrived.
    iovec rest[4];
    int count = 0;
    uint64_t skip = got;
    for (const iovec& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      rest[count++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
      skip = 0;
    }
    const ssize_t r = ::preadv(f.fd(), rest, count, static_cast<off_t>(got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path);
    }
    got += static_cast<uint64_t>(r);
    if (static_cast<uint64_t>(r) < want + 1 - (got - r)) break;  // the end of the file
  }
  uint64_t held_size;
  std::string_view held_etag;
  if (got < kHeaderSize || !DecodeHeader(header, &held_size, &held_etag)) {
    return Status(Code::kCorruption, fmt::format("cached object {}: bad header", path));
  }
  if (held_size != size || held_etag != etag) {
    return Status(Code::kChanged, fmt::format("cached object {} holds another version", path));
  }
  if (got != want) {
    return Status(Code::kCorruption, fmt::format("cached object {}: wrong length", path));
  }
  return CheckChunks(out, size, crcs.data(), 0, path);
}

}  // namespace cairn::tier
