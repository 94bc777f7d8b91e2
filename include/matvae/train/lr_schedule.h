// The learning rate of each step of a run: constant, or cosine-annealed from the configured rate
// towards 0 over all the run's steps (Loshchilov & Hutter's SGDR without restarts). A short run
// with the rate annealed ends nearer where a longer constant-rate run would: the last steps take
// small moves instead of jittering around the minimum at the full rate.
//
// The rate depends on the step and on the run's total steps, nothing else: a resumed run takes
// the same rates as an uninterrupted one, every rank of a data-parallel run computes the same
// rate, and a run extended to more epochs (train --resume --epochs) would not equal one started
// with them, so extending refuses a run whose schedule is not constant.
#pragma once

#include <cstdint>

#include "matvae/train/config.h"

namespace matvae {

/// The learning rate of step `step` (0-based) of a run of `steps` steps, for base rate `lr`.
double scheduled_lr(double lr, LrSchedule schedule, int64_t step, int64_t steps);

}  // namespace matvae
