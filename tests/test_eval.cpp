// Tests of the evaluation layer: the linear probe (separable blobs, chance on random labels, no test
// data in the choice of lambda, train-only standardisation, the optimality conditions of a fit),
// exact k-NN (the fast path against the double loop, ties included, and a hand-worked answer, every
// tiling against a full sort), PCA (orthonormal and sorted, reconstruction error = discarded
// variance, agreement with an SVD), cosine 1-NN exact where float32 cannot resolve it, and one
// model's evaluations sharing its features (same numbers).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "matvae/eval/knn.h"
#include "matvae/eval/linear_probe.h"
#include "matvae/eval/pca.h"
#include "matvae/eval/code_metrics.h"
#include "matvae/train/build_model.h"
#include "test_util.h"

namespace {

using matvae::KnnOptions;
using matvae::ProbeOptions;
using matvae::ProbeResult;
using matvae_test::contains;
using matvae_test::tensors_close;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
const auto kI64 = torch::TensorOptions().dtype(torch::kInt64);

class LinearProbe : public matvae_test::SeededTest {};
class Knn : public matvae_test::SeededTest {};
class PcaFit : public matvae_test::SeededTest {};
class CodeMetrics : public matvae_test::SeededTest {};
class SharedFeatures : public matvae_test::SeededTest {};

void expect_check_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << part;
  } catch (const c10::Error& e) {
    EXPECT_TRUE(contains(e.what(), part));
  }
}

struct Labelled {
  torch::Tensor x;  // [N, m]
  torch::Tensor y;  // [N] int64
};

/// n points around centres [C, m] with isotropic noise of std `noise`; labels cycle over the classes.
Labelled make_blobs(const torch::Tensor& centres, int64_t n, double noise) {
  const auto y = torch::arange(n, kI64).remainder(centres.size(0));
  return {centres.index_select(0, y) + noise * torch::randn({n, centres.size(1)}, centres.options()), y};
}

/// Fails the test unless `result` is the same choice of lambda as `other`, bit for bit.
void expect_same_choice(const ProbeResult& result, const ProbeResult& other) {
  EXPECT_EQ(result.chosen_l2, other.chosen_l2);
  EXPECT_EQ(result.validation_accuracy, other.validation_accuracy);
  EXPECT_EQ(result.selection_iterations, other.selection_iterations);
  EXPECT_EQ(result.train_accuracy, other.train_accuracy);
  EXPECT_EQ(result.iterations, other.iterations);
}

// ---- linear probe ----

TEST_F(LinearProbe, SeparatesGaussianBlobs) {
  const auto centres = 4.0 * torch::randn({5, 8});
  ASSERT_GT(torch::cdist(centres, centres).add(torch::eye(5) * 1e3).min().item<double>(), 6.0);
  const auto train = make_blobs(centres, 1000, 1.0);
  const auto test = make_blobs(centres, 1000, 1.0);
  const ProbeResult r = matvae::linear_probe(train.x, train.y, test.x, test.y, 5);
  EXPECT_GE(r.test_accuracy, 0.99);
  EXPECT_GE(r.train_accuracy, 0.99);
  EXPECT_EQ(r.grid, ProbeOptions{}.grid);
  ASSERT_EQ(r.validation_accuracy.size(), r.grid.size());
  EXPECT_NE(std::find(r.grid.begin(), r.grid.end(), r.chosen_l2), r.grid.end());
  EXPECT_GT(r.iterations, 0);
  EXPECT_GT(r.selection_iterations, 0);
}

TEST_F(LinearProbe, SeparatesBlobsAtAnyScaleAndOffset) {
  // Standardisation makes features in the thousands, offset by 1e4, as easy as unit ones.
  const auto centres = 4.0 * torch::randn({3, 6});
  const auto train = make_blobs(centres, 600, 1.0);
  const auto test = make_blobs(centres, 600, 1.0);
  const ProbeResult plain = matvae::linear_probe(train.x, train.y, test.x, test.y, 3);
  const ProbeResult scaled = matvae::linear_probe(train.x * 1000.0 + 1e4, train.y, test.x * 1000.0 + 1e4, test.y, 3);
  EXPECT_GE(plain.test_accuracy, 0.98);
  EXPECT_GE(scaled.test_accuracy, 0.98);
  EXPECT_NEAR(scaled.test_accuracy, plain.test_accuracy, 0.005);
}

TEST_F(LinearProbe, StaysAtChanceOnRandomLabels) {
  // Labels independent of the features: test accuracy is Binomial(4000, 0.1) / 4000, std 0.005.
  const int64_t classes = 10;
  const auto train_x = torch::randn({2000, 32});
  const auto train_y = torch::randint(classes, {2000}, kI64);
  const auto test_x = torch::randn({4000, 32});
  const auto test_y = torch::randint(classes, {4000}, kI64);
  const ProbeResult r = matvae::linear_probe(train_x, train_y, test_x, test_y, classes);
  EXPECT_GE(r.test_accuracy, 0.07);
  EXPECT_LE(r.test_accuracy, 0.13);
}

/// Two classes that differ along feature 0 only, with 49 noise features and few rows: a weak penalty
/// overfits, so validation accuracy depends on lambda and the choice has teeth.
struct NoisyProblem {
  Labelled train, test;
  ProbeOptions options;
};
NoisyProblem make_noisy_problem() {
  NoisyProblem p;
  auto centres = torch::zeros({2, 50});
  centres[0][0] = -0.6;
  centres[1][0] = 0.6;
  p.train = make_blobs(centres, 300, 1.0);
  p.test = make_blobs(centres, 2000, 1.0);
  p.options.grid = {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0};
  p.options.validation_fraction = 0.3;
  p.options.seed = 7;
  return p;
}

TEST_F(LinearProbe, ChoiceOfL2NeverSeesTestData) {
  const auto p = make_noisy_problem();
  const ProbeResult real = matvae::linear_probe(p.train.x, p.train.y, p.test.x, p.test.y, 2, p.options);
  // Validation accuracy must vary over the grid, or any choice would look the same.
  const auto& acc = real.validation_accuracy;
  ASSERT_GT(*std::max_element(acc.begin(), acc.end()), *std::min_element(acc.begin(), acc.end()));

  // Other test features and flipped test labels: a probe that scored lambdas on test would now
  // prefer the worst-generalising one. Everything about the choice must be bit-identical.
  const auto other_x = torch::randn_like(p.test.x) * 3.0;
  const ProbeResult flipped = matvae::linear_probe(p.train.x, p.train.y, p.test.x, 1 - p.test.y, 2, p.options);
  const ProbeResult other = matvae::linear_probe(p.train.x, p.train.y, other_x, 1 - p.test.y, 2, p.options);
  expect_same_choice(flipped, real);
  expect_same_choice(other, real);
  EXPECT_NEAR(flipped.test_accuracy, 1.0 - real.test_accuracy, 1e-12);  // the test data did change

  // choose_l2 takes no test data at all, and linear_probe's choice is its choice.
  const matvae::L2Choice choice = matvae::choose_l2(p.train.x, p.train.y, 2, p.options);
  EXPECT_EQ(choice.chosen_l2, real.chosen_l2);
  EXPECT_EQ(choice.validation_accuracy, real.validation_accuracy);
  // The choice is the best validation accuracy, a tie going to the larger lambda.
  double best = -1.0, best_l2 = 0.0;
  for (size_t g = 0; g < acc.size(); ++g) {
    if (acc[g] > best || (acc[g] == best && p.options.grid[g] > best_l2)) {
      best = acc[g];
      best_l2 = p.options.grid[g];
    }
  }
  EXPECT_EQ(real.chosen_l2, best_l2);
}

TEST_F(LinearProbe, ValidationSplitIsSeededAndHeldOut) {
  const auto a = matvae::probe_split(100, 0.1, 3);
  const auto b = matvae::probe_split(100, 0.1, 3);
  const auto c = matvae::probe_split(100, 0.1, 4);
  ASSERT_EQ(a.validation.numel(), 10);
  ASSERT_EQ(a.fit.numel(), 90);
  EXPECT_TRUE(torch::equal(a.validation, b.validation));
  EXPECT_FALSE(torch::equal(a.validation, c.validation));
  // Disjoint and together all of 0..99.
  EXPECT_TRUE(torch::equal(std::get<0>(torch::cat({a.fit, a.validation}).sort()), torch::arange(100, kI64)));
  // At least one row each side, however small the fraction or the set.
  EXPECT_EQ(matvae::probe_split(5, 0.01, 0).validation.numel(), 1);
  EXPECT_EQ(matvae::probe_split(2, 0.9, 0).fit.numel(), 1);

  // The same seed gives the same probe; another seed another split, so other validation accuracies.
  const auto p = make_noisy_problem();
  auto options = p.options;
  const ProbeResult first = matvae::linear_probe(p.train.x, p.train.y, p.test.x, p.test.y, 2, options);
  const ProbeResult again = matvae::linear_probe(p.train.x, p.train.y, p.test.x, p.test.y, 2, options);
  expect_same_choice(again, first);
  EXPECT_EQ(again.test_accuracy, first.test_accuracy);
  options.seed = 8;
  const ProbeResult reseeded = matvae::linear_probe(p.train.x, p.train.y, p.test.x, p.test.y, 2, options);
  EXPECT_NE(reseeded.validation_accuracy, first.validation_accuracy);
}

TEST_F(LinearProbe, ValidationAccuracyIsOnHeldOutRows) {
  // The weakest penalty overfits the noisy problem: its accuracy on the rows it was fitted to is well
  // above that on the held-out rows, and the latter is what choose_l2 reports.
  const auto p = make_noisy_problem();
  const auto choice = matvae::choose_l2(p.train.x, p.train.y, 2, p.options);
  const auto split = matvae::probe_split(p.train.x.size(0), p.options.validation_fraction, p.options.seed);
  const auto acc = [&](const matvae::ProbeModel& model, const torch::Tensor& rows) {
    return matvae::probe_predict(model, p.train.x.index_select(0, rows))
        .eq(p.train.y.index_select(0, rows))
        .to(torch::kFloat64)
        .mean()
        .item<double>();
  };
  ASSERT_EQ(p.options.grid[0], 1e-4);
  const auto model = matvae::fit_probe(p.train.x.index_select(0, split.fit), p.train.y.index_select(0, split.fit), 2,
                                       p.options.grid[0]);
  const double seen = acc(model, split.fit), held_out = acc(model, split.validation);
  ASSERT_GT(seen - held_out, 0.1);
  // choose_l2 reached this fit by warm starts from larger lambdas: the same optimum, up to a row or two.
  EXPECT_NEAR(choice.validation_accuracy[0], held_out, 0.025);
}

TEST_F(LinearProbe, StandardisesWithTrainStatisticsOnly) {
  // Classes at -2 and +2 along feature 0. Shifting every test point by +4 along it moves class 0 onto
  // class 1: with train statistics half the test set is now wrong; had the test set been standardised
  // with its own mean, the shift would have vanished.
  auto centres = torch::zeros({2, 4});
  centres[0][0] = -2.0;
  centres[1][0] = 2.0;
  const auto train = make_blobs(centres, 800, 1.0);
  const auto test = make_blobs(centres, 800, 1.0);
  auto shifted = test.x.clone();
  shifted.select(1, 0).add_(4.0);
  const ProbeResult plain = matvae::linear_probe(train.x, train.y, test.x, test.y, 2);
  const ProbeResult moved = matvae::linear_probe(train.x, train.y, shifted, test.y, 2);
  EXPECT_GE(plain.test_accuracy, 0.95);
  EXPECT_LT(moved.test_accuracy, 0.7);
  expect_same_choice(moved, plain);

  // The fitted statistics are the training set's (1/N std), and a constant feature keeps scale 1.
  auto x = train.x.clone();
  x.select(1, 3).fill_(3.0);
  const auto model = matvae::fit_probe(x, train.y, 2, 1e-3);
  EXPECT_TRUE(tensors_close(model.mean, x.to(torch::kFloat64).mean(0), 1e-6));
  const auto sd = x.to(torch::kFloat64).std(0, /*unbiased=*/false);
  EXPECT_TRUE(tensors_close(model.scale.narrow(0, 0, 3), sd.narrow(0, 0, 3), 1e-6));
  EXPECT_EQ(model.scale[3].item<double>(), 1.0);
  EXPECT_TRUE(torch::isfinite(model.weight).all().item<bool>());
  EXPECT_GE(matvae::probe_predict(model, test.x).eq(test.y).to(torch::kFloat64).mean().item<double>(), 0.95);
}

TEST_F(LinearProbe, FitMeetsOptimalityConditions) {
  // At the minimum of mean CE + l2 / 2 ||W||^2 (bias unpenalised) the gradient vanishes:
  // xs^T (P - Y) / N + l2 W = 0 and sum_n (P - Y) / N = 0, xs the standardised features.
  const auto centres = torch::randn({3, 4});
  auto data = make_blobs(centres, 300, 1.0);
  data.y = torch::cat({data.y.narrow(0, 0, 250), torch::zeros({50}, kI64)});  // unequal classes, a non-zero bias
  const double l2 = 0.05;
  const auto model = matvae::fit_probe(data.x, data.y, 3, l2);
  const auto w = model.weight.to(torch::kFloat64), b = model.bias.to(torch::kFloat64);
  const auto xs = (data.x.to(torch::kFloat64) - model.mean) / model.scale;
  const auto logits = torch::addmm(b, xs, w);
  EXPECT_TRUE(tensors_close(matvae::probe_logits(model, data.x), logits, 1e-4));
  // The fit stops when its (float32) gradient or loss settles: well inside 5e-5 of stationary.
  const auto g = (torch::softmax(logits, 1) - torch::one_hot(data.y, 3).to(torch::kFloat64)) / 300.0;
  EXPECT_TRUE(tensors_close(xs.t().matmul(g), -l2 * w, 5e-5));
  EXPECT_TRUE(tensors_close(g.sum(0), torch::zeros({3}, kF64), 5e-5));
  EXPECT_GT(model.bias.abs().max().item<double>(), 0.1);
  EXPECT_GT(model.weight.abs().max().item<double>(), 0.1);
  EXPECT_GT(model.iterations, 0);
}

TEST_F(LinearProbe, WorksUnderNoGradGuard) {
  const auto centres = 4.0 * torch::randn({3, 5});
  const auto train = make_blobs(centres, 300, 1.0);
  const auto test = make_blobs(centres, 300, 1.0);
  const ProbeResult with_grad = matvae::linear_probe(train.x, train.y, test.x, test.y, 3);
  torch::NoGradGuard no_grad;  // as the experiment's evaluation runs
  const ProbeResult without = matvae::linear_probe(train.x, train.y, test.x, test.y, 3);
  expect_same_choice(without, with_grad);
  EXPECT_EQ(without.test_accuracy, with_grad.test_accuracy);
  EXPECT_GE(without.test_accuracy, 0.98);
}

TEST_F(LinearProbe, HandWrittenGradientMatchesAutograd) {
  // The fit's fast path (probe_loss, classes on the outer axis, gradient written out) against the
  // plain one: nll_loss of log_softmax over [N, C] logits, differentiated by autograd, in float64.
  const int64_t n = 257, m = 6, classes = 4;
  const double l2 = 0.03;
  const auto x = torch::randn({n, m});
  const auto y = torch::randint(classes, {n}, kI64);
  const auto weight_t = torch::randn({classes, m});
  const auto bias = torch::randn({classes});
  const auto fast = matvae::probe_loss(matvae::probe_objective(x, y, classes, l2), weight_t, bias);

  auto w = weight_t.t().to(kF64).clone().requires_grad_(true);
  auto b = bias.to(kF64).clone().requires_grad_(true);
  const auto plain = torch::nll_loss(torch::log_softmax(torch::addmm(b, x.to(kF64), w), 1), y) +
                     0.5 * l2 * w.square().sum();
  plain.backward();
  EXPECT_NEAR(fast.value, plain.item<double>(), 1e-5);
  EXPECT_TRUE(tensors_close(fast.grad_weight_t.to(kF64), w.grad().t(), 1e-5));
  EXPECT_TRUE(tensors_close(fast.grad_bias.to(kF64), b.grad(), 1e-5));
  // Not trivially small: a wrong sign or a dropped term would show.
  EXPECT_GT(w.grad().abs().max().item<double>(), 1e-2);
}

TEST_F(LinearProbe, RejectsBadInputs) {
  const auto x = torch::randn({20, 3});
  const auto y = torch::arange(20, kI64).remainder(2);
  expect_check_error([&] { matvae::linear_probe(x, y + 1, x, y, 2); }, "got one 2");
  expect_check_error([&] { matvae::linear_probe(x, y - 1, x, y, 2); }, "got one -1");
  expect_check_error([&] { matvae::linear_probe(x, y, x, y * 5, 2); }, "test labels in [0, 2)");
  expect_check_error([&] { matvae::linear_probe(x, y.to(torch::kFloat32), x, y, 2); }, "Float");
  expect_check_error([&] { matvae::linear_probe(x, y.narrow(0, 0, 19), x, y, 2); }, "[19]");
  expect_check_error([&] { matvae::linear_probe(x, y, torch::randn({20, 4}), y, 2); }, "[20, 4]");
  expect_check_error([&] { matvae::linear_probe(x, y, x, y, 1); }, "num_classes >= 2, got 1");
  auto nan_x = x.clone();
  nan_x[3][1] = std::numeric_limits<float>::quiet_NaN();
  expect_check_error([&] { matvae::linear_probe(nan_x, y, x, y, 2); }, "NaN");
  ProbeOptions o;
  o.grid = {};
  expect_check_error([&] { matvae::linear_probe(x, y, x, y, 2, o); }, "non-empty");
  o.grid = {1e-3, -1.0};
  expect_check_error([&] { matvae::choose_l2(x, y, 2, o); }, "-1");
  o = ProbeOptions{};
  o.validation_fraction = 1.0;
  expect_check_error([&] { matvae::linear_probe(x, y, x, y, 2, o); }, "validation_fraction in (0, 1), got 1");
  o = ProbeOptions{};
  o.max_iter = 0;
  expect_check_error([&] { matvae::linear_probe(x, y, x, y, 2, o); }, "max_iter >= 1, got 0");
  expect_check_error([&] { matvae::probe_split(1, 0.1, 0); }, "got 1");
}

// ---- k-NN ----

TEST_F(Knn, WorkedExampleWithTies) {
  // Train points on a line with labels 3, 1, 2, 0, 1. Worked by hand:
  //   a = 0.5:  distances .25 .25 2.25 .25 2.25 -> order 0 1 3 2 4 -> labels 3 1 0 2 1
  //   a = 1.5:  distances 2.25 .25 6.25 .25 .25 -> order 1 3 4 0 2 -> labels 1 0 1 3 2
  //   a = -0.6: distances .36 2.56 .16 2.56 6.76 -> order 2 0 1 3 4 -> labels 2 3 1 0 1
  // k = 1..4 at a = 0.5: all votes tied, so the nearest (lowest index of three at .25) wins: 3, not 1.
  const auto train_x = torch::tensor({0.0, 1.0, -1.0, 1.0, 2.0}).view({5, 1});
  const auto train_y = torch::tensor({3, 1, 2, 0, 1}, kI64);
  const auto test_x = torch::tensor({0.5, 1.5, -0.6}).view({3, 1});
  const std::vector<int64_t> ks = {1, 2, 3, 4, 5};
  const auto want = torch::tensor({3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 1, 1, 1}, kI64).view({5, 3});
  EXPECT_TRUE(torch::equal(matvae::knn_predict_reference(train_x, train_y, test_x, ks), want));
  EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks), want));
  EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks, KnnOptions{1}), want));
}

TEST_F(Knn, MatchesDoubleLoopOnIntegerGridWithTies) {
  // Points on a 3 x 3 grid: duplicates and equal distances everywhere, computed exactly in both paths.
  const auto train_x = torch::randint(0, 3, {80, 2}, kI64).to(torch::kFloat32);
  const auto train_y = torch::randint(0, 4, {80}, kI64);
  const auto test_x = torch::randint(0, 3, {50, 2}, kI64).to(torch::kFloat32);
  const std::vector<int64_t> ks = {1, 2, 3, 5, 8, 13};
  const auto want = matvae::knn_predict_reference(train_x, train_y, test_x, ks);
  // For most test rows the 5th and 6th nearest are equally far (so a tie rule is being tested).
  const auto d = torch::cdist(test_x.to(torch::kFloat64), train_x.to(torch::kFloat64)).square();
  const auto sorted = std::get<0>(d.sort(1));
  ASSERT_GT(sorted.select(1, 4).eq(sorted.select(1, 5)).to(torch::kFloat64).mean().item<double>(), 0.5);
  // Tiles of 1 and 7 columns: the first k = 13 neighbours span tiles, and a tile's tail is shorter
  // than the scan's vector block (16 floats, 8 doubles); 37 columns: two blocks and a tail.
  for (const auto& [block, tile] : std::vector<std::pair<int64_t, int64_t>>{{1024, 1024}, {7, 37}, {1, 7}, {3, 1}}) {
    SCOPED_TRACE("block_rows " + std::to_string(block) + ", tile_columns " + std::to_string(tile));
    EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks, KnnOptions{block, tile}), want));
    EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x.to(torch::kFloat64), train_y, test_x.to(torch::kFloat64), ks,
                                                 KnnOptions{block, tile}),
                             want));
  }
}

TEST_F(Knn, PicksLowestIndicesAmongManyEqualNeighbours) {
  // A far point (index 0), then 30 copies of the test point: the 5 nearest must be indices 1..5
  // (labels 1 2 2 3 3: a 2-2 tie won by class 2, met first), whatever order topk returns equal
  // values in. The other 25 copies are class 9, so k = 10 gives 9.
  auto train_x = torch::zeros({31, 3});
  train_x[0].fill_(10.0);
  auto train_y = torch::full({31}, 9, kI64);
  train_y.narrow(0, 1, 5).copy_(torch::tensor({1, 2, 2, 3, 3}, kI64));
  const auto test_x = torch::zeros({4, 3});
  const std::vector<int64_t> ks = {1, 5, 10};
  const auto want = torch::tensor({1, 2, 9}, kI64).view({3, 1}).expand({3, 4});
  EXPECT_TRUE(torch::equal(matvae::knn_predict_reference(train_x, train_y, test_x, ks), want));
  for (const int64_t block : {1024, 3})
    EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks, KnnOptions{block}), want));
}

TEST_F(Knn, MatchesDoubleLoopOnRandomData) {
  const auto train_x = torch::randn({400, 6});
  const auto train_y = torch::randint(0, 5, {400}, kI64);
  const auto test_x = torch::randn({150, 6});
  const std::vector<int64_t> ks = {1, 5};
  const auto want = matvae::knn_predict_reference(train_x, train_y, test_x, ks);
  EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks), want));
  EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks, KnnOptions{32}), want));
  EXPECT_TRUE(torch::equal(matvae::knn_predict(train_x, train_y, test_x, ks, KnnOptions{32, 100}), want));
}

TEST_F(Knn, NeighbourListsDoNotDependOnTheTiling) {
  // Integer codes (exact distances, many ties) and a long list: every tiling gives the full sort's
  // first k, by distance and then by index, in float32 and float64.
  const auto db = torch::randint(-4, 4, {3000, 5}).to(torch::kFloat32);
  const auto queries = torch::randint(-4, 4, {40, 5}).to(torch::kFloat32);
  const auto d = (queries.unsqueeze(1) - db.unsqueeze(0)).square().sum(2);  // [40, 3000]
  const int64_t k = 50;
  const auto want = std::get<1>(d.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false)).narrow(1, 0, k);
  for (const auto& [block, tile] : std::vector<std::pair<int64_t, int64_t>>{{128, 1024}, {5, 33}, {40, 3000}, {1, 49}}) {
    SCOPED_TRACE("block_rows " + std::to_string(block) + ", tile_columns " + std::to_string(tile));
    EXPECT_TRUE(torch::equal(matvae::knn_neighbours(db, queries, k, KnnOptions{block, tile}), want));
    EXPECT_TRUE(torch::equal(
        matvae::knn_neighbours(db.to(torch::kFloat64), queries.to(torch::kFloat64), k, KnnOptions{block, tile}), want));
  }
}

TEST_F(Knn, AccuracyOnBlobs) {
  const auto centres = 5.0 * torch::randn({4, 6});
  const auto train = make_blobs(centres, 400, 1.0);
  const auto test = make_blobs(centres, 200, 1.0);
  const auto r = matvae::knn_accuracy(train.x, train.y, test.x, test.y);
  EXPECT_EQ(r.ks, (std::vector<int64_t>{1, 5}));
  ASSERT_EQ(r.predictions.sizes(), torch::IntArrayRef({2, 200}));
  EXPECT_GE(r.accuracy.at(0), 0.99);
  EXPECT_GE(r.accuracy.at(1), 0.99);
  // The accuracy is the share of correct predictions, against the given labels.
  const auto wrong = (test.y + 1).remainder(4);
  const auto w = matvae::knn_accuracy(train.x, train.y, test.x, wrong, {1});
  EXPECT_NEAR(w.accuracy.at(0), w.predictions[0].eq(wrong).to(torch::kFloat64).mean().item<double>(), 1e-15);
  EXPECT_LE(w.accuracy.at(0), 0.01);
}

TEST_F(Knn, RejectsBadInputs) {
  const auto x = torch::randn({6, 2});
  const auto y = torch::arange(6, kI64).remainder(2);
  expect_check_error([&] { matvae::knn_predict(x, y, x, {0}); }, "got 0");
  expect_check_error([&] { matvae::knn_predict(x, y, x, {7}); }, "N = 6], got 7");
  expect_check_error([&] { matvae::knn_predict(x, y, x, {}); }, "at least one k");
  expect_check_error([&] { matvae::knn_predict(x, y, torch::randn({3, 4}), {1}); }, "[3, 4]");
  expect_check_error([&] { matvae::knn_predict(x, y.to(torch::kFloat32), x, {1}); }, "Float");
  expect_check_error([&] { matvae::knn_predict(x, y - 1, x, {1}); }, "got -1");
  expect_check_error([&] { matvae::knn_predict(x, y, x, {1}, KnnOptions{0}); }, "block_rows >= 1, got 0");
  expect_check_error([&] { matvae::knn_predict(x, y, x, {1}, KnnOptions{8, 0}); }, "tile_columns >= 1, got 0");
  expect_check_error([&] { matvae::knn_accuracy(x, y, x, y.narrow(0, 0, 5), {1}); }, "[5]");
  expect_check_error([&] { matvae::knn_predict_reference(x, y, x, {9}); }, "got 9");
}

// ---- PCA ----

/// Anisotropic, correlated data with an offset: [n, p].
torch::Tensor make_correlated(int64_t n, int64_t p) {
  const auto scales = torch::linspace(3.0, 0.1, p, kF64);
  return torch::randn({n, p}, kF64).mul(scales).matmul(torch::randn({p, p}, kF64)) + 5.0;
}

TEST_F(PcaFit, ComponentsAreOrthonormalSortedAndSignFixed) {
  const auto x = make_correlated(500, 12);
  for (const int64_t k : {1, 5, 12}) {
    SCOPED_TRACE("k " + std::to_string(k));
    const auto pca = matvae::fit_pca(x, k);
    ASSERT_EQ(pca.components.sizes(), torch::IntArrayRef({k, 12}));
    ASSERT_EQ(pca.explained_variance.sizes(), torch::IntArrayRef({k}));
    EXPECT_TRUE(tensors_close(pca.components.matmul(pca.components.t()), torch::eye(k, kF64), 1e-5));
    EXPECT_TRUE(tensors_close(pca.mean, x.mean(0), 1e-12));
    if (k > 1) EXPECT_TRUE(pca.explained_variance.diff().le(0).all().item<bool>());
    // Each row's largest-magnitude entry is positive.
    const auto peak = pca.components.abs().argmax(1, true);
    EXPECT_TRUE(pca.components.gather(1, peak).gt(0).all().item<bool>());
  }
}

TEST_F(PcaFit, ReconstructionErrorIsDiscardedVariance) {
  const auto x = make_correlated(400, 10);
  const double total = x.var(0, /*unbiased=*/false).sum().item<double>();
  for (const int64_t k : {1, 3, 7, 10}) {
    SCOPED_TRACE("k " + std::to_string(k));
    const auto pca = matvae::fit_pca(x, k);
    EXPECT_NEAR(pca.total_variance, total, 1e-9 * total);
    const auto codes = matvae::pca_transform(pca, x);
    ASSERT_EQ(codes.sizes(), torch::IntArrayRef({400, k}));
    const double mse = (matvae::pca_reconstruct(pca, codes) - x).square().sum(1).mean().item<double>();
    const double discarded = total - pca.explained_variance.sum().item<double>();
    EXPECT_NEAR(mse, discarded, 1e-9 * total);
    // The codes are uncorrelated, with the explained variances as their variances (1/N).
    const auto code_cov = codes.t().matmul(codes) / 400.0;
    EXPECT_TRUE(tensors_close(code_cov, torch::diag(pca.explained_variance), 1e-9 * total));
  }
}

TEST_F(PcaFit, AgreesWithSvdOfCentredData) {
  // An independent route: the right singular vectors of the centred data, variances S^2 / N.
  const auto x = make_correlated(300, 8);
  const auto pca = matvae::fit_pca(x, 4);
  const auto [u, s, vh] = torch::linalg_svd(x - x.mean(0), /*full_matrices=*/false);
  EXPECT_TRUE(tensors_close(pca.explained_variance, s.narrow(0, 0, 4).square() / 300.0, 1e-9));
  // Same directions up to sign: |<c_i, v_i>| = 1.
  const auto cosines = (pca.components * vh.narrow(0, 0, 4)).sum(1).abs();
  EXPECT_TRUE(tensors_close(cosines, torch::ones({4}, kF64), 1e-9));
}

TEST_F(PcaFit, FindsTheLineThroughPoints) {
  // Points along u = (0.6, 0.8) with a little spread along v = (0.8, -0.6), around (1, -2).
  const auto t = torch::randn({1000, 1}, kF64) * 2.0;
  const auto s = torch::randn({1000, 1}, kF64) * 0.1;
  const auto u = torch::tensor({0.6, 0.8}, kF64), v = torch::tensor({0.8, -0.6}, kF64);
  const auto x = t * u + s * v + torch::tensor({1.0, -2.0}, kF64);
  const auto pca = matvae::fit_pca(x, 2);
  EXPECT_TRUE(tensors_close(pca.components[0], u, 1e-3));
  EXPECT_TRUE(tensors_close(pca.components[1], v, 1e-3));  // sign: 0.8 is the larger entry, positive
  EXPECT_NEAR(pca.explained_variance[0].item<double>(), 4.0, 0.4);
  EXPECT_NEAR(pca.explained_variance[1].item<double>(), 0.01, 0.002);
}

TEST_F(PcaFit, KeepsTheInputDtype) {
  const auto x64 = make_correlated(200, 6);
  const auto x = x64.to(torch::kFloat32);
  const auto pca = matvae::fit_pca(x, 3);
  EXPECT_EQ(pca.components.scalar_type(), torch::kFloat64);
  const auto codes = matvae::pca_transform(pca, x);
  EXPECT_EQ(codes.scalar_type(), torch::kFloat32);
  const auto back = matvae::pca_reconstruct(pca, codes);
  EXPECT_EQ(back.scalar_type(), torch::kFloat32);
  ASSERT_EQ(back.sizes(), x.sizes());
  const auto pca64 = matvae::fit_pca(x.to(torch::kFloat64), 3);
  EXPECT_TRUE(tensors_close(codes, matvae::pca_transform(pca64, x.to(torch::kFloat64)), 1e-3));
  EXPECT_TRUE(tensors_close(back, matvae::pca_reconstruct(pca64, codes.to(torch::kFloat64)), 1e-3));
}

TEST_F(PcaFit, RejectsBadInputs) {
  const auto x = torch::randn({10, 4});
  expect_check_error([&] { matvae::fit_pca(x, 0); }, "got 0");
  expect_check_error([&] { matvae::fit_pca(x, 5); }, "P = 4], got 5");
  expect_check_error([&] { matvae::fit_pca(torch::randn({10}), 1); }, "[10]");
  expect_check_error([&] { matvae::fit_pca(torch::randint(0, 3, {10, 4}, kI64), 1); }, "Long");
  const auto pca = matvae::fit_pca(x, 2);
  expect_check_error([&] { matvae::pca_transform(pca, torch::randn({3, 5})); }, "[3, 5]");
  expect_check_error([&] { matvae::pca_reconstruct(pca, torch::randn({3, 3})); }, "[3, 3]");
  expect_check_error([&] { matvae::pca_transform(matvae::Pca{}, x); }, "fitted");
}

// ---- evaluations of several m: a stop between two m ----

/// 4 x 4 "images" of three blobs (sigmoids of the points), n_train and n_test of them.
matvae::TrainTest blob_images(int64_t n_train, int64_t n_test) {
  matvae::TrainTest data;
  for (auto* d : {&data.train, &data.test}) {
    const auto blobs = make_blobs(torch::randn({3, 16}), d == &data.train ? n_train : n_test, 0.3);
    d->images = torch::sigmoid(blobs.x).to(torch::kFloat32);
    d->labels = blobs.y;
    d->height = 4;
    d->width = 4;
    d->num_classes = 3;
  }
  return data;
}

TEST_F(PcaFit, EvaluationStopsBetweenPrefixSizesAndKeepsThoseDone) {
  const matvae::TrainTest data = blob_images(120, 60);
  const std::vector<int64_t> dims = {2, 4, 8};
  const auto all = matvae::evaluate_pixel_pca(data, dims, 0);
  ASSERT_EQ(all.size(), 3u);
  int checks = 0;
  const auto part = matvae::evaluate_pixel_pca(data, dims, 0, [&] { return ++checks > 2; });
  EXPECT_EQ(checks, 3);  // asked before each m; the third answer stops it
  ASSERT_EQ(part.size(), 2u);
  EXPECT_EQ(part["2"], all["2"]);  // what was done is exactly what a whole run gives
  EXPECT_EQ(part["4"], all["4"]);
  EXPECT_FALSE(part.contains("8"));
  EXPECT_TRUE(matvae::evaluate_pixel_pca(data, dims, 0, [] { return true; }).empty());
}

// ---- the metrics of one prefix's codes ----

TEST_F(CodeMetrics, CosineNeighboursOnTheCircleAreExact) {
  // Float32 codes on an arc of the circle, 1e-5 rad apart, of three radii and alternating labels; each
  // test code lies 2e-6 rad from one of them (8e-6 from the next) and carries its label. The cosine
  // 1-NN must find it, though 2 - 2 cos of either lies below float32's resolution near 1.
  const int64_t n = 2000, t = 200;
  const auto angle = 0.5 + 1e-5 * torch::arange(n, kF64);
  const auto radius = 1.0 + 0.5 * torch::arange(n, kF64).remainder(3);
  const auto train = torch::stack({radius * angle.cos(), radius * angle.sin()}, 1).to(torch::kFloat32);
  const auto train_labels = torch::arange(n, kI64).remainder(2);
  const auto at = 10 * torch::arange(t, kI64) + torch::arange(t, kI64).remainder(2);
  const auto test_angle = angle.index_select(0, at) + 2e-6;
  const auto test = 3.0 * torch::stack({test_angle.cos(), test_angle.sin()}, 1).to(torch::kFloat32);
  const auto test_labels = train_labels.index_select(0, at);
  const auto j = matvae::feature_metrics(train, train_labels, test, test_labels, 2, 0);
  EXPECT_EQ(j["knn1_cos"].get<double>(), 1.0);
  // Float32 unit rows cannot tell them apart: the test above would fail without float64 there.
  const auto unit = [](const torch::Tensor& x) { return x / x.norm(2, 1, true); };
  EXPECT_LT(matvae::knn_accuracy(unit(train), train_labels, unit(test), test_labels, {1}).accuracy.at(0), 0.9);
}

// ---- one model's evaluations sharing its codes' features ----

TEST_F(SharedFeatures, GiveEveryEvaluationTheSameNumbers) {
  // An untrained Matryoshka model on blobs: what matters is that the numbers do not change.
  const matvae::TrainTest data = blob_images(150, 60);
  matvae::TrainConfig config;
  config.latent = 8;
  config.hidden = {12};
  matvae::resolve(config);
  ASSERT_EQ(config.nesting, (std::vector<int64_t>{2, 4, 8}));
  auto model = matvae::build_model(config, 16, 0);
  const auto prefixes = matvae::evaluate_prefixes(model, config, data, config.nesting, false, 3);
  const auto truncated = matvae::evaluate_prefixes(model, config, data, {4, 8}, true, 3);
  const auto adaptive = matvae::evaluate_adaptive(model, config, data, 3);

  matvae::CodeShare share;
  EXPECT_EQ(matvae::evaluate_prefixes(model, config, data, config.nesting, false, 3, {}, &share), prefixes);
  ASSERT_EQ(share.prefixes.size(), 3u);
  EXPECT_EQ(matvae::evaluate_prefixes(model, config, data, {4, 8}, true, 3, {}, &share), truncated);
  EXPECT_EQ(matvae::evaluate_adaptive(model, config, data, 3, &share), adaptive);
  // The adaptive evaluation takes the shared lists and probes, not its own: spoil one of each and
  // its numbers move.
  share.prefixes.at(2).neighbours = share.prefixes.at(2).neighbours.flip(1).contiguous();
  auto& probe = share.prefixes.at(8).probe;
  probe.model.bias = probe.model.bias + 5 * torch::arange(3);
  probe.validation_model.bias = probe.validation_model.bias + 5 * torch::arange(3);
  const auto spoiled = matvae::evaluate_adaptive(model, config, data, 3, &share);
  EXPECT_NE(spoiled["retrieval"]["exact"]["2"], adaptive["retrieval"]["exact"]["2"]);
  EXPECT_NE(spoiled["cascade"], adaptive["cascade"]);
  // With a prefix's features missing from the share, it computes those and leaves them there.
  matvae::CodeShare partial;
  matvae::evaluate_prefixes(model, config, data, config.nesting, false, 3, {}, &partial);
  partial.prefixes.erase(4);
  EXPECT_EQ(matvae::evaluate_adaptive(model, config, data, 3, &partial), adaptive);
  EXPECT_EQ(partial.prefixes.size(), 3u);
}

TEST_F(SharedFeatures, EveryEvaluationGivesTheSameNumbersAtAnyThreadCount) {
  // Images of 784 pixels, enough rows that the products and sums split over two threads; the
  // numbers must be those of one thread (the experiment's jobs), bit for bit.
  matvae::TrainTest data;
  const auto centres = torch::randn({3, 784});
  for (auto* d : {&data.train, &data.test}) {
    const auto blobs = make_blobs(centres, d == &data.train ? 3000 : 1000, 1.0);
    d->images = torch::sigmoid(blobs.x).to(torch::kFloat32);
    d->labels = blobs.y;
    d->height = d->width = 28;
    d->num_classes = 3;
  }
  matvae::TrainConfig config;
  config.latent = 8;
  config.hidden = {128};
  matvae::resolve(config);
  auto model = matvae::build_model(config, 784, 0);
  matvae::TrainConfig vae;  // a KL model adds the ELBO, from the posterior's spread too
  vae.model = matvae::ModelKind::kVae;
  vae.latent = 8;
  vae.hidden = {128};
  matvae::resolve(vae);
  auto vae_model = matvae::build_model(vae, 784, 0);
  const int threads = at::get_num_threads();
  std::vector<nlohmann::ordered_json> runs;
  for (const int count : {1, 2}) {
    at::set_num_threads(count);
    nlohmann::ordered_json j;
    j["prefixes"] = matvae::evaluate_prefixes(model, config, data, config.nesting, false, 3);
    j["truncated"] = matvae::evaluate_prefixes(model, config, data, {2, 8}, true, 3);
    j["adaptive"] = matvae::evaluate_adaptive(model, config, data, 3);
    j["vae"] = matvae::evaluate_prefixes(vae_model, vae, data, {8}, false, 3);
    runs.push_back(j);
    EXPECT_TRUE(runs.back()["vae"]["8"].contains("neg_elbo"));
  }
  at::set_num_threads(threads);
  EXPECT_EQ(runs[0], runs[1]);
}

}  // namespace
