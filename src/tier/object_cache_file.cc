#include "tier/object_cache_file.h"

#include <fcntl.h>
#include <fmt/format.h>

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
  if (got != h.size() || std::memcmp(h.data(), kMagic, 8) != 0 ||
      DecodeFixed32(h.data() + 508) != Crc32c(h.data(), 508)) {
    return damaged("bad header");
  }
  if (DecodeFixed32(h.data() + 8) != kVersion) return damaged("unknown version");
  const uint32_t etag_len = DecodeFixed32(h.data() + 12);
  if (etag_len > kMaxEtag) return damaged("bad ETag length");
  const uint64_t size = DecodeFixed64(h.data() + 16);
  if (file_bytes != FileBytes(size)) return damaged("wrong length");
  return ObjectCacheFile(std::move(f), path, size, std::string(h.data() + 24, etag_len));
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
  for (uint64_t c = first; c <= last; ++c) {
    const uint64_t off = c * meta::kChunkSize - begin;
    const size_t len = std::min<uint64_t>(meta::kChunkSize, size_ - c * meta::kChunkSize);
    if (Crc32c(buf.data() + off, len) != DecodeFixed32(crcs.data() + 4 * (c - first))) {
      return Status(Code::kCorruption, fmt::format("checksum mismatch in cached object {} at {}",
                                                   path_, c * meta::kChunkSize));
    }
  }
  std::memcpy(out, buf.data() + (offset - begin), n);
  return Status::Ok();
}

}  // namespace cairn::tier
