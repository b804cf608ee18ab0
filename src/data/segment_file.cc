#include "data/segment_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace cairn::data {

std::string LocalSegments::Name(uint64_t id) const {
  return fmt::format("{}/segments/{:016x}.seg", dir_, id);
}

Result<std::shared_ptr<SegmentFile>> LocalSegments::Create(uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(File file, File::Open(Name(id), O_RDWR | O_CREAT | O_EXCL, 0600));
  return std::shared_ptr<SegmentFile>(std::make_shared<LocalSegmentFile>(std::move(file)));
}

Result<std::shared_ptr<SegmentFile>> LocalSegments::Open(uint64_t id, bool writable) {
  CAIRN_ASSIGN_OR_RETURN(File file, File::Open(Name(id), writable ? O_RDWR : O_RDONLY));
  return std::shared_ptr<SegmentFile>(std::make_shared<LocalSegmentFile>(std::move(file)));
}

Status LocalSegments::Remove(uint64_t id) {
  const std::string path = Name(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path);
  return Status::Ok();
}

}  // namespace cairn::data
