// `matvae ... --nproc N` on one machine: starts N copies of this program as ranks 0..N-1 with
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
// MASTER_PORT) and supervises them, as torchrun would (Debian's torchrun does not run on Python 3.11).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace matvae {

struct LaunchOptions {
  int64_t nproc = 2;
  int port = 0;  // 0: MASTER_PORT from the environment, else a free port
  /// After the first rank fails, how long the others get to notice, name it and stop.
  std::chrono::milliseconds grace{15000};
  std::function<void(const std::string&)> log = nullptr;  // a line per rank that failed; null = silent
};

/// Runs `args` (argv without the program name) as every rank and waits for all of them. Returns 0
/// if every rank succeeded, else the exit code of the first rank that failed (128 + signal for a
/// rank a signal ended); ranks still running `grace` after that failure are killed. A SIGINT or
/// SIGTERM to the launcher reaches every rank as SIGTERM, on which each saves and stops. Throws
/// UsageError for a bad MASTER_PORT, Error if a rank cannot be started.
int launch_local_ranks(const std::vector<std::string>& args, const LaunchOptions& options);

/// A TCP port on 127.0.0.1 that nothing listens on now. Throws Error if there is none.
int free_local_port();

}  // namespace matvae
