// Where this process stands among the ranks of a distributed job, read from the environment that
// launched it: torchrun's contract (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), with the same facts mapped from mpirun (OMPI_COMM_WORLD_*) and Slurm (SLURM_PROCID,
// SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE) when those start the processes.
// Slurm's count is the srun step's, not the allocation's, so a batch script's own shell is one
// process. matvae's own launcher (dist/launcher.h) sets the torchrun variables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace matvae {

struct RankEnv {
  int64_t rank = 0;
  int64_t world = 1;
  int64_t local_rank = 0;
  int64_t local_world = 1;  // ranks on this machine, which share its cores
  std::string master_addr;  // the host of rank 0's store; empty when world == 1
  int port = 0;             // its port
  bool distributed() const { return world > 1; }
};

/// Reads one variable; null when unset (std::getenv in the program, a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

/// The ranks of this process. RANK and WORLD_SIZE come first, then OMPI_COMM_WORLD_RANK/SIZE, then
/// SLURM_PROCID/STEP_NUM_TASKS; none of them: one process (world 1). With world > 1, MASTER_ADDR and
/// MASTER_PORT are required. The local world defaults to 1 (the cores are this rank's alone).
/// Throws UsageError naming the variable for a missing, non-numeric or out-of-range value
/// (RANK >= WORLD_SIZE, a port outside 1..65535).
RankEnv read_rank_env(const EnvLookup& lookup);

}  // namespace matvae
