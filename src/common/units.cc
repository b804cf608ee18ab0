#include "common/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>

namespace cairn {

Result<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Err(Code::kInvalid, fmt::format("'{}' is not a size (e.g. 64MiB)", text));
  uint64_t value = 0;
  for (size_t j = 0; j < i; ++j) {
    uint64_t digit = static_cast<uint64_t>(text[j] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10)
      return Err(Code::kInvalid, fmt::format("size '{}' is too large", text));
    value = value * 10 + digit;
  }
  std::string suffix(text.substr(i));
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  struct Unit {
    const char* name;
    uint64_t mult;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1000},
      {"kib", 1ull << 10},
      {"m", 1000000},
      {"mb", 1000000},
      {"mib", 1ull << 20},
      {"g", 1000000000},
      {"gb", 1000000000},
      {"gib", 1ull << 30},
      {"t", 1000000000000ull},
      {"tb", 1000000000000ull},
      {"tib", 1ull << 40},
  };
  for (const auto& u : kUnits) {
    if (suffix == u.name) {
      if (value > std::numeric_limits<uint64_t>::max() / u.mult)
        return Err(Code::kInvalid, fmt::format("size '{}' is too large", text));
      return value * u.mult;
    }
  }
  return Err(
      Code::kInvalid,
      fmt::format("unknown size unit in '{}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", text));
}

namespace {
// The number at the start of text and where it ends; false when there is none.
bool LeadingNumber(std::string_view text, double* value, size_t* end) {
  size_t i = 0;
  bool digits = false, dot = false;
  while (i < text.size()) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      digits = true;
    } else if (text[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++i;
  }
  if (!digits || i > 32) return false;
  *value = std::stod(std::string(text.substr(0, i)));
  *end = i;
  return true;
}
}  // namespace

Result<double> ParseDuration(std::string_view text) {
  double v;
  size_t i;
  if (!LeadingNumber(text, &v, &i)) {
    return Err(Code::kInvalid, fmt::format("'{}' is not a duration (e.g. 10s, 5m, 2h)", text));
  }
  std::string_view unit = text.substr(i);
  if (unit == "" || unit == "s") return v;
  if (unit == "ms") return v / 1000;
  if (unit == "m") return v * 60;
  if (unit == "h") return v * 3600;
  if (unit == "d") return v * 86400;
  return Err(Code::kInvalid,
             fmt::format("unknown duration unit in '{}' (use ms, s, m, h, d)", text));
}

Result<double> ParseFraction(std::string_view text) {
  double v;
  size_t i;
  if (!LeadingNumber(text, &v, &i) || (i != text.size() && text.substr(i) != "%")) {
    return Err(Code::kInvalid, fmt::format("'{}' is not a percentage (e.g. 90%)", text));
  }
  if (i != text.size()) v /= 100;
  if (v < 0 || v > 1) return Err(Code::kInvalid, fmt::format("'{}' is not within 0..100%", text));
  return v;
}

std::string FormatSize(uint64_t bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024.0 && unit < 5) {
    v /= 1024.0;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.1f} {}", v, kNames[unit]);
}

}  // namespace cairn
