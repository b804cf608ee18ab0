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
// Durations: a non-negative number with an optional unit: ms, s (default), m, h, d ("10s", "1.5h").
// Returns seconds.
Result<double> ParseDuration(std::string_view text);
// Fractions written "90%" or "0.9"; must lie in [0, 1].
Result<double> ParseFraction(std::string_view text);
// "1.5 GiB" style text for humans.
std::string FormatSize(uint64_t bytes);

}  // namespace cairn
