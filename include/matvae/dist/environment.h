// Where this process stands among the ranks of a data-parallel job, read from the environment that
// launched it: torchrun's contract (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), with
// the same facts mapped from mpirun (OMPI_COMM_WORLD_*) and Slurm (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID) when those start the processes. matvae's own launcher (dist/launcher.h) sets the
// torchrun variables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace matvae {

struct RankEnv {
  int64_t rank = 0;
  int64_t world = 1;
  int64_t local_rank = 0;
  std::string master_addr;  // the host of rank 0's store; empty when world == 1
  int port = 0;             // its port
  bool distributed() const { return world > 1; }
};

/// Reads one variable; null when unset (std::getenv in the program, a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

/// The ranks of this process. RANK and WORLD_SIZE come first, then OMPI_COMM_WORLD_RANK/SIZE, then
/// SLURM_PROCID/NTASKS; none of them: one process (world 1). With world > 1, MASTER_ADDR and
/// MASTER_PORT are required. Throws UsageError naming the variable for a missing, non-numeric or
/// out-of-range value (RANK >= WORLD_SIZE, a port outside 1..65535).
RankEnv read_rank_env(const EnvLookup& lookup);

}  // namespace matvae
