#include "cli/cli_common.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/units.h"

namespace cairn::cli {

int Fail(std::string_view command, const Status& st) {
  fmt::print(stderr, "cairn {}: {}\n", command,
             st.message().empty() ? st.ToString() : st.message());
  return 1;
}

void ShowProgress(std::string_view what, uint64_t done, uint64_t total, bool bytes) {
  if (!::isatty(2)) return;
  const int width = 30;
  const double frac = total ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  const int fill = static_cast<int>(frac * width);
  std::string text = bytes ? fmt::format("{} / {}", FormatSize(done), FormatSize(total))
                           : fmt::format("{} / {}", done, total);
  fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {}   ", what, std::string(fill, '#'),
             std::string(width - fill, '.'), frac * 100, text);
}

void EndProgress() {
  if (::isatty(2)) fmt::print(stderr, "\n");
}

void PrintMembers(const nlohmann::json& members, std::string_view indent) {
  const auto when = [](int64_t sec) -> std::string {
    if (sec == 0) return "never";
    return fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::gmtime(static_cast<std::time_t>(sec)));
  };
  const auto rate = [](const nlohmann::json& m, const char* key) {
    return FormatSize(static_cast<uint64_t>(m.value(key, 0.0))) + "/s";
  };
  fmt::print("{}{:>5}  {:<16} {:<13} {:<19} {:>11} {:>11}  {}\n", indent, "NODE", "HOST", "STATE",
             "LAST SEEN (UTC)", "READ", "WRITE", "DATA DIR");
  for (const auto& m : members) {
    fmt::print("{}{:>5}  {:<16} {:<13} {:<19} {:>11} {:>11}  {}\n", indent, m.value("node", 0u),
               m.value("host", ""), m.value("state", ""), when(m.value("last_seen", int64_t{0})),
               rate(m, "read_bytes_per_s"), rate(m, "write_bytes_per_s"), m.value("data_dir", ""));
  }
}

}  // namespace cairn::cli
