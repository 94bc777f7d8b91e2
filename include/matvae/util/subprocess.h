// Runs an external program (npm, tar) without a shell, capturing its output for error messages.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace matvae {

struct ProcessResult {
  int exit_code = -1;   // -1 if it could not be started or was killed by a signal
  std::string output;   // stdout and stderr together, last 4 KiB
};

/// Runs argv[0] (searched on PATH) with the given arguments in `cwd`. Never throws for a failing
/// program; the caller decides what a non-zero exit means.
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

}  // namespace matvae
