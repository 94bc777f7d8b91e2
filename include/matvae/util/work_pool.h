// Independent pieces of work run on a few threads at once: the experiment trains and evaluates
// its models this way, one core each, because two of these small models side by side on one
// thread each run 1.3-1.7x faster than one after the other on two threads (README, Performance).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

namespace matvae {

struct WorkPoolOptions {
  int64_t workers = 1;                           // threads; items run one at a time on each
  std::function<void()> setup = nullptr;         // runs first on every worker (per-thread settings)
  const std::atomic<bool>* stop = nullptr;       // watched: when it is set, `halt` is raised
  std::function<bool()> halt_when = nullptr;     // watched too: when it returns true, `halt` is raised
};

/// Runs item(i) for every i that `claim` hands out, each on one worker, as workers come free;
/// `claim` (called by the workers, one at a time) returns nothing when no work is left.
/// Items watch `halt` to end early. When `stop` is set, or an item or a claim throws, `halt` is
/// raised and no further item starts; the first exception is rethrown once every worker has ended.
void run_claimed_work(const std::function<std::optional<size_t>()>& claim, const std::function<void(size_t)>& item,
                      std::atomic<bool>& halt, const WorkPoolOptions& options = {});

/// Runs item(0), ..., item(n - 1), each on one worker, in index order as workers come free.
/// Items watch `halt` to end early. When `stop` is set, or an item throws, `halt` is raised and no
/// further item starts; the first exception is rethrown once every worker has ended.
void run_work_pool(size_t n, const std::function<void(size_t)>& item, std::atomic<bool>& halt,
                   const WorkPoolOptions& options = {});

}  // namespace matvae
