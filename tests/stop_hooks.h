// Training hooks that interrupt a run part-way, as a Ctrl-C would: for the tests of stopping,
// resuming and what an interrupted run leaves behind.
#pragma once

#include <atomic>
#include <cstdint>

#include "matvae/train/trainer.h"

namespace matvae_test {

/// Hooks that set `stop` on the `at`-th step they see. `at` is read at every step, so a caller may
/// move it between runs (never stops for at <= 0); the count goes on across runs given these hooks.
inline matvae::TrainHooks stop_at_step(std::atomic<bool>& stop, const int64_t& at) {
  matvae::TrainHooks hooks;
  hooks.stop = &stop;
  hooks.on_step = [&stop, &at, steps = int64_t{0}](const matvae::StepProgress&) mutable {
    if (++steps == at) stop = true;
  };
  return hooks;
}

}  // namespace matvae_test
