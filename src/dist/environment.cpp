// Reading the launcher's variables; see environment.h.
#include "matvae/dist/environment.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "matvae/util/error.h"

namespace matvae {
namespace {

/// The integer value of `name`, or nothing if unset; UsageError if it is not a whole number in [lo, hi].
std::optional<int64_t> read_int(const EnvLookup& lookup, const char* name, int64_t lo, int64_t hi) {
  const char* text = lookup(name);
  if (!text) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw UsageError(fmt::format("{}={}: expected a whole number from {} to {}", name, text, lo, hi));
  return v;
}

struct Source {
  const char* rank;
  const char* world;
  const char* local;
  const char* local_world;
  // Slurm's batch step sets SLURM_PROCID alone (no srun step, so no step size): one process.
  bool rank_alone_is_one_process = false;
};

}  // namespace

RankEnv read_rank_env(const EnvLookup& lookup) {
  constexpr int64_t kMaxRanks = 1 << 20;
  RankEnv env;
  for (const Source s :
       {Source{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
        Source{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
        Source{"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", true}}) {
    const auto rank = read_int(lookup, s.rank, 0, kMaxRanks);
    const auto world = read_int(lookup, s.world, 1, kMaxRanks);
    if (!world && (!rank || s.rank_alone_is_one_process)) continue;
    if (!rank) throw UsageError(fmt::format("{} is set but {} is not; set both", s.world, s.rank));
    if (!world) throw UsageError(fmt::format("{} is set but {} is not; set both", s.rank, s.world));
    if (*rank >= *world)
      throw UsageError(fmt::format("{}={}: must be less than {}={}", s.rank, *rank, s.world, *world));
    env.rank = *rank;
    env.world = *world;
    env.local_rank = read_int(lookup, s.local, 0, *world - 1).value_or(0);
    env.local_world = read_int(lookup, s.local_world, env.local_rank + 1, *world).value_or(1);
    break;
  }
  if (!env.distributed()) return env;
  const char* addr = lookup("MASTER_ADDR");
  if (!addr || !*addr)
    throw UsageError(fmt::format("MASTER_ADDR is not set: {} ranks need the host of rank 0", env.world));
  env.master_addr = addr;
  const auto port = read_int(lookup, "MASTER_PORT", 1, 65535);
  if (!port) throw UsageError(fmt::format("MASTER_PORT is not set: {} ranks need the port of rank 0's store", env.world));
  env.port = static_cast<int>(*port);
  return env;
}

}  // namespace matvae
