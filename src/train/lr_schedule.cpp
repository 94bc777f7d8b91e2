// The learning rate per step; see lr_schedule.h.
#include "matvae/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace matvae {

double scheduled_lr(double lr, LrSchedule schedule, int64_t step, int64_t steps) {
  switch (schedule) {
    case LrSchedule::kConstant:
      return lr;
    case LrSchedule::kCosine: {
      if (steps <= 0) return lr;
      const double t = static_cast<double>(std::clamp<int64_t>(step, 0, steps)) / static_cast<double>(steps);
      return lr * 0.5 * (1.0 + std::cos(M_PI * t));
    }
  }
  return lr;
}

}  // namespace matvae
