// ObjectCacheFile: one cached imported object, DATA_DIR/objcache/<ino, 16 hex digits>.obj
// (docs/FORMATS.md, "Cached imported objects"): a 512-byte header (the object's size and ETag,
// CRC32C-sealed), the object's bytes, and one CRC32C per 64 KiB chunk of them. TierEngine writes
// and evicts these files; the daemon and the native client read them, both through ReadChecked,
// so neither returns a byte that does not match its chunk's checksum.
#pragma once

#include <cstdint>
#include <string>

#include "common/file.h"
#include "common/status.h"

namespace cairn::tier {

class ObjectCacheFile {
 public:
  static constexpr uint64_t kHeaderSize = 512;
  static constexpr size_t kMaxEtag = 400;  // longer ETags are not cached (read by range)

  static std::string Path(const std::string& data_dir, uint64_t ino);
  static std::string EncodeHeader(uint64_t size, const std::string& etag);
  // The length of the cache file of an object of `size` bytes.
  static uint64_t FileBytes(uint64_t size);

  // Opens the file and checks its header and length: kNotFound when there is none, kCorruption
  // when it is damaged (its name in the message).
  static Result<ObjectCacheFile> Open(const std::string& path);

  uint64_t size() const { return size_; }
  const std::string& etag() const { return etag_; }

  // The n bytes at offset (offset + n <= size()) into out: the whole chunks around them are read
  // and checked; kCorruption on a mismatch or a short file.
  Status ReadChecked(uint64_t offset, size_t n, char* out) const;

  // n bytes at offset of the object of `size` bytes, version `etag`, cached at path, checked:
  // kNotFound when there is no cache file, kChanged when it holds another version, kCorruption
  // when it is damaged. What the native client reads. A whole object (a sample) takes one preadv
  // (header, data into out, checksums: no copy), as many system calls as a plain file's read.
  static Status Read(const std::string& path, uint64_t size, const std::string& etag,
                     uint64_t offset, size_t n, char* out);

 private:
  ObjectCacheFile(File file, std::string path, uint64_t size, std::string etag)
      : file_(std::move(file)), path_(std::move(path)), size_(size), etag_(std::move(etag)) {}
  File file_;
  std::string path_;
  uint64_t size_;
  std::string etag_;
};

}  // namespace cairn::tier
