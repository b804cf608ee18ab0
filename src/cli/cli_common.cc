#include "cli/cli_common.h"

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

}  // namespace cairn::cli
