// The report's statistics on hand-made numbers with known answers: the paired difference and its
// 95% t interval, and the verdict its sign gives (not one standard deviation).
#include <gtest/gtest.h>

#include "matvae/report/stats.h"

namespace {
using json = nlohmann::ordered_json;

/// {"<seed>": {"probe": value}} from a list of values, seeds 0, 1, ...
json cells(const std::vector<double>& values) {
  json j;
  for (size_t i = 0; i < values.size(); ++i) j[std::to_string(i)]["probe"] = values[i];
  return j;
}

TEST(Stats, TQuantilesAreTheTabulatedOnes) {
  EXPECT_NEAR(matvae::t_quantile_975(1), 12.706, 1e-3);
  EXPECT_NEAR(matvae::t_quantile_975(4), 2.776, 1e-3);
  EXPECT_NEAR(matvae::t_quantile_975(30), 2.042, 1e-3);
  EXPECT_NEAR(matvae::t_quantile_975(60), 2.000, 2e-3);
  EXPECT_NEAR(matvae::t_quantile_975(1000), 1.962, 2e-3);
  EXPECT_TRUE(std::isnan(matvae::t_quantile_975(0)));
}

TEST(Stats, PairedDifferenceByHand) {
  // Differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), half-width 2.776 * sqrt(2.5) / sqrt(5).
  const auto d = matvae::paired_difference(cells({11, 12, 13, 14, 15}), cells({10, 10, 10, 10, 10}), "probe");
  EXPECT_EQ(d.n, 5);
  EXPECT_DOUBLE_EQ(d.mean, 3.0);
  EXPECT_NEAR(d.half_width, 2.7764 * std::sqrt(2.5) / std::sqrt(5.0), 1e-9);
  EXPECT_EQ(matvae::verdict_of(d, true), matvae::Verdict::kWin);
  EXPECT_EQ(matvae::verdict_of(d, false), matvae::Verdict::kLoss);  // lower is better: a higher loss loses
}

TEST(Stats, PairingIsBySeedNotByMeans) {
  // Both rows vary a lot between seeds (one standard deviation would call it a tie) but a is ahead
  // by about 0.01 on every seed: the paired interval calls it a win.
  const auto a = cells({0.80, 0.90, 0.85, 0.70, 0.95}), b = cells({0.79, 0.89, 0.835, 0.69, 0.94});
  const auto d = matvae::paired_difference(a, b, "probe");
  EXPECT_NEAR(d.mean, 0.011, 1e-12);
  EXPECT_EQ(matvae::verdict_of(d, true), matvae::Verdict::kWin);
  const auto sa = matvae::stat_of(a, "probe"), sb = matvae::stat_of(b, "probe");
  EXPECT_LT(std::abs(sa.mean - sb.mean), std::max(sa.std, sb.std));  // what the old rule called a tie
}

TEST(Stats, AnIntervalHoldingZeroIsATieAndOneSeedDecidesNothing) {
  const auto tie = matvae::paired_difference(cells({1, 2, 3}), cells({2, 1, 3}), "probe");
  EXPECT_EQ(matvae::verdict_of(tie, true), matvae::Verdict::kTie);
  const auto one = matvae::paired_difference(cells({0.9}), cells({0.8}), "probe");
  EXPECT_EQ(one.n, 1);
  EXPECT_NEAR(one.mean, 0.1, 1e-12);
  EXPECT_EQ(matvae::verdict_of(one, true), matvae::Verdict::kUndecided);
  // Only seeds both rows have are paired.
  json b = cells({5, 5, 5});
  b.erase("1");
  EXPECT_EQ(matvae::paired_difference(cells({6, 100, 7}), b, "probe").n, 2);
}

}  // namespace
