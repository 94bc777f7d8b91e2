// Runs an external program (npm, tar) without a shell, capturing its output for error messages;
// or starts one without waiting (tests that kill a run at a random moment).
#pragma once

#include <sys/types.h>

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

/// Starts argv[0] (searched on PATH) with the given arguments in `cwd` and returns at once with its
/// process id, or -1 if it could not be started. Its stdout and stderr go to `output_file` (created
/// or truncated), or to /dev/null if that is empty. Reap it with wait_process.
pid_t spawn_process(const std::vector<std::string>& argv, const std::filesystem::path& output_file = {},
                    const std::filesystem::path& cwd = {});

/// Waits for a process started by spawn_process. Returns its exit code, or -1 if a signal ended it
/// (its number is then stored in *signal, if given; otherwise *signal is set to 0).
int wait_process(pid_t pid, int* signal = nullptr);

}  // namespace matvae
