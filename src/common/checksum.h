// CRC32C (Castagnoli) of data extents and records, computed with ISA-L's accelerated routine.
// Thread-safe, pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cairn {

uint32_t Crc32c(const void* data, size_t size, uint32_t seed = 0);
inline uint32_t Crc32c(std::string_view s) { return Crc32c(s.data(), s.size()); }

}  // namespace cairn
