// Helpers shared by the cairn subcommands: error output and progress bars.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace cairn::cli {

// Prints "cairn COMMAND: message" to stderr; returns the exit code 1.
int Fail(std::string_view command, const Status& st);
// A progress bar on stderr when it is a terminal (bytes: show sizes, else counts).
void ShowProgress(std::string_view what, uint64_t done, uint64_t total, bool bytes);
void EndProgress();
// The table of cluster members (fs::MemberJson objects), each line after `indent`.
void PrintMembers(const nlohmann::json& members, std::string_view indent);

}  // namespace cairn::cli
