#include "common/checksum.h"

#include <isa-l/crc.h>

namespace cairn {

uint32_t Crc32c(const void* data, size_t size, uint32_t seed) {
  // crc32_iscsi is CRC32C without the final inversion; invert on both sides so that the value is
  // the standard CRC32C (crc32c("123456789") == 0xE3069283), which the tests pin.
  return ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(size),
                      ~seed);
}

}  // namespace cairn
