// The learning rate per step (train/lr_schedule.h): constant, or cosine-annealed from lr to 0.
#include <gtest/gtest.h>

#include <cmath>

#include "matvae/train/lr_schedule.h"

using matvae::LrSchedule;
using matvae::scheduled_lr;

TEST(LrSchedule, ConstantIsTheRateAtEveryStep) {
  for (int64_t step : {0, 1, 50, 99, 100}) EXPECT_EQ(scheduled_lr(3e-3, LrSchedule::kConstant, step, 100), 3e-3);
}

TEST(LrSchedule, CosineFallsFromTheRateToZeroThroughHalfOfItHalfway) {
  const double lr = 2e-3;
  const int64_t steps = 1000;
  EXPECT_EQ(scheduled_lr(lr, LrSchedule::kCosine, 0, steps), lr);
  EXPECT_NEAR(scheduled_lr(lr, LrSchedule::kCosine, steps / 2, steps), lr / 2, 1e-15);
  EXPECT_NEAR(scheduled_lr(lr, LrSchedule::kCosine, steps / 4, steps), lr * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_NEAR(scheduled_lr(lr, LrSchedule::kCosine, steps, steps), 0.0, 1e-18);
  // The last step the run takes (steps - 1) still moves, a little.
  const double last = scheduled_lr(lr, LrSchedule::kCosine, steps - 1, steps);
  EXPECT_GT(last, 0.0);
  EXPECT_LT(last, 1e-4 * lr);
  double before = lr;
  for (int64_t step = 1; step <= steps; ++step) {
    const double now = scheduled_lr(lr, LrSchedule::kCosine, step, steps);
    ASSERT_LT(now, before) << step;
    before = now;
  }
  // Outside the run the rate is held at its ends rather than rising again.
  EXPECT_EQ(scheduled_lr(lr, LrSchedule::kCosine, -5, steps), lr);
  EXPECT_NEAR(scheduled_lr(lr, LrSchedule::kCosine, steps + 7, steps), 0.0, 1e-18);
}
