// Parsing and printing of sizes written like "64MiB", "200MB", "2TiB" or "4096". Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn {

// Accepts a non-negative integer with an optional suffix: K/KB (1000), KiB (1024), M/MB, MiB,
// G/GB, GiB, T/TB, TiB. Case-insensitive; no spaces inside.
Result<uint64_t> ParseSize(std::string_view text);
// "1.5 GiB" style text for humans.
std::string FormatSize(uint64_t bytes);

}  // namespace cairn
