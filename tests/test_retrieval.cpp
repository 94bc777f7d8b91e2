// Retrieval and adaptive classification against known answers: a hand-computed mAP, the fast
// metrics against a brute-force double loop, a funnel whose first short list is the whole database
// equal to exact search, its re-ranking stage against the same as tensor operations, the MFLOPs of a
// funnel, and the cascade's two limits.
#include <gtest/gtest.h>

#include "matvae/eval/cascade.h"
#include "matvae/eval/knn.h"
#include "matvae/eval/retrieval.h"
#include "test_util.h"

namespace {
using matvae_test::SeededTest;
const auto kI64 = torch::kInt64;

TEST(Retrieval, HandComputedAveragePrecision) {
  // One query of class 1; the database has 3 items of class 1. Ranked list (k = 4): 1, 0, 1, 1.
  // AP@4 = (1/1 + 2/3 + 3/4) / min(4, 3) = 0.8056; precision@4 = 3/4; recall@4 = 3/3.
  const auto db_y = torch::tensor({1, 0, 1, 1, 0, 0}, kI64);
  const auto neighbours = torch::tensor({{0, 1, 2, 3}}, kI64);
  const auto s = matvae::retrieval_scores(neighbours, db_y, torch::tensor({1}, kI64));
  EXPECT_NEAR(s.map, (1.0 + 2.0 / 3 + 3.0 / 4) / 3, 1e-12);
  EXPECT_NEAR(s.precision, 0.75, 1e-12);
  EXPECT_NEAR(s.recall, 1.0, 1e-12);
  // A second query of class 0 with nothing relevant retrieved first: 0, 2 are class 1.
  const auto two = matvae::retrieval_scores(torch::tensor({{0, 1, 2, 3}, {0, 2, 4, 5}}, kI64), db_y,
                                            torch::tensor({1, 0}, kI64));
  // AP@4 of the second: hits at ranks 3 and 4: (1/3 + 2/4) / min(4, 3).
  EXPECT_NEAR(two.map, ((1.0 + 2.0 / 3 + 3.0 / 4) / 3 + (1.0 / 3 + 2.0 / 4) / 3) / 2, 1e-12);
}

class RetrievalData : public SeededTest {};

TEST_F(RetrievalData, FastMetricsEqualTheDoubleLoop) {
  // Integer codes, so both paths compute distances exactly and break ties alike (by the lower index).
  const auto db = torch::randint(-3, 4, {300, 6}).to(torch::kFloat32);
  const auto db_y = torch::randint(5, {300}, kI64);
  const auto q = torch::randint(-3, 4, {40, 6}).to(torch::kFloat32);
  const auto q_y = torch::randint(5, {40}, kI64);
  for (const int64_t k : {1, 10, 25}) {
    SCOPED_TRACE(k);
    const auto fast = matvae::retrieval_scores(matvae::knn_neighbours(db, q, k), db_y, q_y);
    const auto ref = matvae::retrieval_scores_reference(db, db_y, q, q_y, k);
    EXPECT_NEAR(fast.map, ref.map, 1e-12);
    EXPECT_NEAR(fast.precision, ref.precision, 1e-12);
    EXPECT_NEAR(fast.recall, ref.recall, 1e-12);
    EXPECT_GT(ref.precision, 0);
  }
}

TEST_F(RetrievalData, AFunnelOverTheWholeDatabaseIsExactSearch) {
  const auto db = torch::randint(-3, 4, {200, 8}).to(torch::kFloat32);
  const auto q = torch::randint(-3, 4, {30, 8}).to(torch::kFloat32);
  // First stage keeps everything (its small prefix decides nothing); the last ranks by the full code.
  const auto funnel = matvae::funnel_search(db, q, {{2, 200}, {4, 50}, {8, 10}});
  const auto whole = matvae::funnel_search(db, q, {{2, 200}, {8, 10}});
  EXPECT_TRUE(torch::equal(whole, matvae::knn_neighbours(db, q, 10)));
  // A real funnel's list comes from its short lists: a subset of the 50 the middle stage kept.
  const auto middle = matvae::funnel_search(db, q, {{2, 200}, {4, 50}});
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 10; ++j) EXPECT_TRUE(middle[i].eq(funnel[i][j]).any().item<bool>());
  EXPECT_THROW(matvae::funnel_search(db, q, {{2, 20}, {8, 30}}), c10::Error);  // keeps more than it is given
}

TEST_F(RetrievalData, RerankEqualsThePlainTensorPath) {
  // Real-valued codes (no ties) and small integers (many ties, broken by the lower index); each list
  // in no particular order, as a short list from another prefix is; one and two threads.
  const int64_t n = 500, t = 70, have = 120;
  for (const bool integer : {false, true}) {
    SCOPED_TRACE(integer);
    const auto db = integer ? torch::randint(-2, 3, {n, 16}).to(torch::kFloat32) : torch::randn({n, 16});
    const auto q = integer ? torch::randint(-2, 3, {t, 16}).to(torch::kFloat32) : torch::randn({t, 16});
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < t; ++i) rows.push_back(torch::randperm(n, kI64).narrow(0, 0, have));
    const auto list = torch::stack(rows);
    const int threads = at::get_num_threads();
    for (const int count : {1, 2}) {  // 70 queries: two parallel tasks on two threads
      at::set_num_threads(count);
      for (const auto& [m, keep] : std::vector<std::pair<int64_t, int64_t>>{{4, 60}, {16, 10}, {16, have}}) {
        SCOPED_TRACE(m);
        EXPECT_TRUE(torch::equal(matvae::rerank(db, q, list, m, keep), matvae::rerank_plain(db, q, list, m, keep)));
      }
    }
    at::set_num_threads(threads);
  }
  EXPECT_THROW(matvae::rerank(torch::zeros({5, 4}), torch::zeros({2, 4}), torch::full({2, 3}, 5, kI64), 4, 2),
               c10::Error);  // an item outside the database
  EXPECT_THROW(matvae::rerank(torch::zeros({5, 4}), torch::zeros({2, 4}), torch::zeros({2, 3}, kI64), 4, 4),
               c10::Error);  // keeps more than it is given
}

TEST(Retrieval, FunnelCostAndTheDefaultCascade) {
  // 60,000 items: exact at 64 costs 2 * 60000 * 64 = 7.68 MFLOPs; 8 > 16 > 32 > 64 costs
  // 2 * (60000 * 8 + 200 * 16 + 100 * 32 + 50 * 64) = 0.9792 MFLOPs.
  EXPECT_NEAR(matvae::funnel_mflops(60000, {{64, 10}}), 7.68, 1e-12);
  const auto stages = matvae::default_funnel({2, 4, 8, 16, 32, 64}, 8, 10, 60000);
  ASSERT_EQ(stages.size(), 4u);
  EXPECT_EQ(stages[0].m, 8);
  EXPECT_EQ(stages[0].keep, 200);
  EXPECT_EQ(stages[1].keep, 100);
  EXPECT_EQ(stages[2].keep, 50);
  EXPECT_EQ(stages[3].m, 64);
  EXPECT_EQ(stages[3].keep, 10);
  EXPECT_NEAR(matvae::funnel_mflops(60000, stages), 0.9792, 1e-12);
}

TEST(Cascade, ThresholdZeroStopsAtTheSmallestPrefixAndAboveOneAtTheLargest) {
  const auto probs = std::vector<torch::Tensor>{torch::tensor({{0.6, 0.4}, {0.3, 0.7}}),
                                                torch::tensor({{0.1, 0.9}, {0.95, 0.05}})};
  const auto zero = matvae::cascade_decide(probs, 0.0);
  EXPECT_TRUE(torch::equal(zero.stopped_at, torch::tensor({0, 0}, kI64)));
  EXPECT_TRUE(torch::equal(zero.predictions, torch::tensor({0, 1}, kI64)));
  const auto above = matvae::cascade_decide(probs, 1.5);
  EXPECT_TRUE(torch::equal(above.stopped_at, torch::tensor({1, 1}, kI64)));
  EXPECT_TRUE(torch::equal(above.predictions, torch::tensor({1, 0}, kI64)));
  // In between, each image stops at its first confident prefix: 0.65 passes 0.7 only at the second.
  const auto mid = matvae::cascade_decide(probs, 0.65);
  EXPECT_TRUE(torch::equal(mid.stopped_at, torch::tensor({1, 0}, kI64)));
}

TEST_F(RetrievalData, AdaptiveClassificationMatchesTheFullCodeWithFewerDimensions) {
  // Class in the first coordinate (easy from m = 1) for most rows, in the last for the rest.
  const int64_t n = 600;
  auto x = torch::randn({n, 4}) * 0.1;
  const auto y = torch::randint(2, {n}, kI64);
  x.select(1, 0).add_(y.to(torch::kFloat32) * 4 - 2);
  const auto test_x = x.narrow(0, 400, 200), test_y = y.narrow(0, 400, 200);
  const auto r = matvae::adaptive_classification(x.narrow(0, 0, 400), y.narrow(0, 0, 400), test_x, test_y, {1, 2, 4},
                                                 2, 0);
  ASSERT_GE(r.chosen, 0);
  const auto& p = r.points[static_cast<size_t>(r.chosen)];
  EXPECT_GE(p.validation_accuracy, r.full_validation_accuracy);
  EXPECT_LT(p.test_dims, 2.0);  // mostly decided by the first prefix
  EXPECT_GE(p.test_accuracy, r.full_test_accuracy - 0.02);
}

}  // namespace
