// Tests of the MMD^2 estimators (against a float64 double loop, known zeros, unbiasedness, growth
// with a mean shift, fast prefix path = reference path, finite-difference gradients) and of the
// reconstruction losses and the loss-name parsers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {

using matvae::MmdKernel;
using matvae::MmdOptions;
using matvae_test::contains;
using matvae_test::tensors_close;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

class Mmd : public matvae_test::SeededTest {};
class Recon : public matvae_test::SeededTest {};

/// Every combination of kernel, estimator and bandwidth (default and an override) the tests sweep.
std::vector<MmdOptions> all_options() {
  std::vector<MmdOptions> out;
  for (const auto kernel : {MmdKernel::kGaussian, MmdKernel::kImq})
    for (const bool unbiased : {false, true})
      for (const double bandwidth : {0.0, 3.0}) out.push_back(MmdOptions{kernel, unbiased, bandwidth});
  return out;
}

std::string describe(const MmdOptions& o) {
  return matvae::to_string(o.kernel) + (o.unbiased ? " unbiased" : " biased") +
         " bandwidth=" + std::to_string(o.bandwidth);
}

/// The definition, written out: a float64 double loop over all pairs.
double mmd_loop(const torch::Tensor& x_in, const torch::Tensor& y_in, const MmdOptions& o) {
  const auto x = x_in.detach().to(torch::kFloat64).contiguous();
  const auto y = y_in.detach().to(torch::kFloat64).contiguous();
  const auto xa = x.accessor<double, 2>();
  const auto ya = y.accessor<double, 2>();
  const int64_t n = x.size(0), m = y.size(0), d = x.size(1);
  const auto k = [&](auto a, auto b) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += (a[t] - b[t]) * (a[t] - b[t]);
    if (o.kernel == MmdKernel::kGaussian) {
      const double width = o.bandwidth > 0 ? o.bandwidth * d : static_cast<double>(d) * d;
      return std::exp(-s / width);
    }
    const double c = o.bandwidth > 0 ? o.bandwidth * d : 2.0 * d * 1.0;  // sigma^2 = 1
    return c / (c + s);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (!o.unbiased || i != j) xx += k(xa[i], xa[j]);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j)
      if (!o.unbiased || i != j) yy += k(ya[i], ya[j]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) xy += k(xa[i], ya[j]);
  const double nx = o.unbiased ? n * (n - 1.0) : static_cast<double>(n) * n;
  const double ny = o.unbiased ? m * (m - 1.0) : static_cast<double>(m) * m;
  return xx / nx + yy / ny - 2.0 * xy / (static_cast<double>(n) * m);
}

/// Central-difference gradient of the scalar f at t (double), element by element.
torch::Tensor numeric_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& t,
                           double eps = 1e-6) {
  auto grad = torch::zeros_like(t);
  auto flat = grad.view({-1});
  for (int64_t i = 0; i < t.numel(); ++i) {
    auto plus = t.clone();
    auto minus = t.clone();
    plus.view({-1})[i] += eps;
    minus.view({-1})[i] -= eps;
    flat[i] = (f(plus).item<double>() - f(minus).item<double>()) / (2.0 * eps);
  }
  return grad;
}

/// Runs f, expecting a c10::Error (TORCH_CHECK) whose message contains `part`.
void expect_check_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << part;
  } catch (const c10::Error& e) {
    EXPECT_TRUE(contains(e.what(), part));
  }
}

TEST_F(Mmd, BiasedIsZeroForIdenticalSamples) {
  const auto x = torch::randn({20, 6});
  for (const auto kernel : {MmdKernel::kGaussian, MmdKernel::kImq}) {
    for (const double bandwidth : {0.0, 0.5}) {
      const MmdOptions o{kernel, false, bandwidth};
      SCOPED_TRACE(describe(o));
      EXPECT_LT(std::abs(matvae::loss_mmd(x, x, o).item<double>()), 1e-6);
      EXPECT_TRUE(tensors_close(matvae::loss_mmd_prefixes(x, x, {1, 3, 6}, o), torch::zeros({3}), 1e-6));
    }
  }
}

TEST_F(Mmd, EqualsDoubleLoop) {
  const auto x = torch::randn({7, 3}, kF64) + 0.3;  // N = 7
  const auto y = torch::randn({5, 3}, kF64);        // M = 5 != N, so N and M cannot be swapped unnoticed
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const double want = mmd_loop(x, y, o);
    EXPECT_NEAR(matvae::loss_mmd(x, y, o).item<double>(), want, 1e-12);
    EXPECT_NEAR(matvae::loss_mmd(x.to(torch::kFloat32), y.to(torch::kFloat32), o).item<double>(), want, 1e-5);
    EXPECT_NEAR(matvae::loss_mmd_prefixes(x, y, {3}, o)[0].item<double>(), want, 1e-12);
  }
}

TEST_F(Mmd, KnownTwoPointValue) {
  // One point each, d = 1, a = 0, b = 1: biased MMD^2 = 1 + 1 - 2 k(a, b).
  const auto a = torch::zeros({1, 1}, kF64);
  const auto b = torch::ones({1, 1}, kF64);
  EXPECT_NEAR(matvae::loss_mmd(a, b, {MmdKernel::kGaussian, false, 0.0}).item<double>(), 2.0 - 2.0 * std::exp(-1.0),
              1e-15);
  EXPECT_NEAR(matvae::loss_mmd(a, b, {MmdKernel::kImq, false, 0.0}).item<double>(), 2.0 - 2.0 * (2.0 / 3.0), 1e-15);
}

TEST_F(Mmd, BandwidthOverrideScalesWithD) {
  // imq's default C = 2 d is the override 2 at every d; gaussian's default d^2 is the override d.
  const auto x = torch::randn({6, 4}, kF64);
  const auto y = torch::randn({5, 4}, kF64);
  const auto imq = matvae::loss_mmd_prefixes(x, y, {1, 2, 4}, {MmdKernel::kImq, true, 0.0});
  EXPECT_TRUE(tensors_close(matvae::loss_mmd_prefixes(x, y, {1, 2, 4}, {MmdKernel::kImq, true, 2.0}), imq, 1e-14));
  EXPECT_NEAR(matvae::loss_mmd(x, y, {MmdKernel::kGaussian, true, 4.0}).item<double>(),
              matvae::loss_mmd(x, y, {MmdKernel::kGaussian, true, 0.0}).item<double>(), 1e-14);
}

TEST_F(Mmd, UnbiasedIsCentredUnderTheNull) {
  // Repeated independent draws of N(0, I) against N(0, I): the unbiased estimates average to 0
  // within 4 standard errors, while the biased ones sit clearly above 0 (so the test has power).
  const int reps = 60;
  const int64_t n = 100, m = 80, d = 4;
  for (const auto kernel : {MmdKernel::kGaussian, MmdKernel::kImq}) {
    SCOPED_TRACE(matvae::to_string(kernel));
    std::vector<double> unbiased, biased;
    for (int r = 0; r < reps; ++r) {
      const auto x = torch::randn({n, d}, kF64);
      const auto y = torch::randn({m, d}, kF64);
      unbiased.push_back(matvae::loss_mmd(x, y, {kernel, true, 0.0}).item<double>());
      biased.push_back(matvae::loss_mmd(x, y, {kernel, false, 0.0}).item<double>());
    }
    const auto u = torch::tensor(unbiased, kF64);
    const auto b = torch::tensor(biased, kF64);
    const double u_se = u.std().item<double>() / std::sqrt(static_cast<double>(reps));
    const double b_se = b.std().item<double>() / std::sqrt(static_cast<double>(reps));
    EXPECT_LT(std::abs(u.mean().item<double>()), 4.0 * u_se) << "mean " << u.mean().item<double>();
    EXPECT_LT(u.min().item<double>(), 0.0);  // an unbiased estimate of 0 must sometimes be negative
    EXPECT_GT(b.mean().item<double>(), 4.0 * b_se) << "mean " << b.mean().item<double>();
  }
}

TEST_F(Mmd, GrowsWithMeanShift) {
  const int64_t n = 400, d = 4;
  const auto x = torch::randn({n, d}, kF64);
  const auto y0 = torch::randn({n, d}, kF64);
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    std::vector<double> values;
    for (const double shift : {0.0, 0.5, 1.0, 2.0}) values.push_back(matvae::loss_mmd(x, y0 + shift, o).item<double>());
    EXPECT_LT(std::abs(values[0]), 0.02);
    for (size_t i = 1; i < values.size(); ++i) EXPECT_GT(values[i], values[i - 1]) << "shift step " << i;
    // A fast-path check on the same data: the prefix path sees the same growth.
    EXPECT_NEAR(matvae::loss_mmd_prefixes(x, y0 + 2.0, {2, d}, o)[1].item<double>(), values[3], 1e-10);
  }
}

TEST_F(Mmd, PrefixesEqualReferenceOnSlices) {
  const int64_t d = 8;
  const auto x64 = torch::randn({9, d}, kF64) * 1.3 + 0.2;
  const auto y64 = torch::randn({6, d}, kF64);
  for (const auto& nesting : {std::vector<int64_t>{1, 2, 5, 8}, std::vector<int64_t>{d}, std::vector<int64_t>{3, 4, 8}}) {
    for (const auto& o : all_options()) {
      SCOPED_TRACE(describe(o) + " nesting size " + std::to_string(nesting.size()));
      for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
        const auto x = x64.to(dtype), y = y64.to(dtype);
        const auto got = matvae::loss_mmd_prefixes(x, y, nesting, o);
        ASSERT_EQ(got.sizes(), torch::IntArrayRef({static_cast<int64_t>(nesting.size())}));
        EXPECT_EQ(got.scalar_type(), dtype);
        std::vector<double> want;
        for (const int64_t m : nesting)
          want.push_back(matvae::loss_mmd(x.narrow(1, 0, m), y.narrow(1, 0, m), o).item<double>());
        EXPECT_TRUE(tensors_close(got, torch::tensor(want, kF64), dtype == torch::kFloat64 ? 1e-12 : 2e-5));
      }
    }
  }
}

TEST_F(Mmd, EvaluationValueEqualsReference) {
  // mmd_value (matmul distances, one kernel block at a time) against loss_mmd, every kernel and
  // estimator, float32 inputs included (mmd_value works in float64 whatever it is given).
  const auto x64 = torch::randn({40, 5}, kF64) * 1.3 + 0.2;
  const auto y64 = torch::randn({31, 5}, kF64);
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const double want = matvae::loss_mmd(x64, y64, o).item<double>();
    EXPECT_NEAR(matvae::mmd_value(x64, y64, o), want, 1e-12);
    EXPECT_NEAR(matvae::mmd_value(x64.to(torch::kFloat32), y64.to(torch::kFloat32), o), want, 1e-6);
    EXPECT_GT(std::abs(want), 1e-4);  // a value to get right, not a trivial zero
  }
  expect_check_error([&] { matvae::mmd_value(x64, torch::randn({3, 4}, kF64)); }, "same number of columns");
}

TEST_F(Mmd, GradientMatchesFiniteDifferences) {
  const auto x = torch::randn({5, 3}, kF64);
  const auto y = torch::randn({4, 3}, kF64) + 0.4;
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const auto xg = x.clone().requires_grad_();
    const auto yg = y.clone().requires_grad_();
    matvae::loss_mmd(xg, yg, o).backward();
    const auto num_x = numeric_grad([&](const torch::Tensor& t) { return matvae::loss_mmd(t, y, o); }, x);
    const auto num_y = numeric_grad([&](const torch::Tensor& t) { return matvae::loss_mmd(x, t, o); }, y);
    ASSERT_GT(num_x.abs().max().item<double>(), 1e-3);  // a gradient worth checking
    EXPECT_TRUE(tensors_close(xg.grad(), num_x, 1e-8));
    EXPECT_TRUE(tensors_close(yg.grad(), num_y, 1e-8));
  }
}

TEST_F(Mmd, PrefixGradientMatchesFiniteDifferences) {
  const std::vector<int64_t> nesting = {2, 3, 6};
  const auto x = torch::randn({5, 6}, kF64);
  const auto y = torch::randn({4, 6}, kF64) - 0.3;
  // Unequal weights, so that each prefix's own gradient matters, not only their sum.
  const auto weights = torch::tensor({1.0, 2.0, 0.5}, kF64);
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const auto total = [&](const torch::Tensor& a, const torch::Tensor& b) {
      return (matvae::loss_mmd_prefixes(a, b, nesting, o) * weights).sum();
    };
    const auto xg = x.clone().requires_grad_();
    const auto yg = y.clone().requires_grad_();
    total(xg, yg).backward();
    const auto num_x = numeric_grad([&](const torch::Tensor& t) { return total(t, y); }, x);
    const auto num_y = numeric_grad([&](const torch::Tensor& t) { return total(x, t); }, y);
    ASSERT_GT(num_x.abs().max().item<double>(), 1e-3);
    EXPECT_TRUE(tensors_close(xg.grad(), num_x, 1e-8));
    EXPECT_TRUE(tensors_close(yg.grad(), num_y, 1e-8));
    // And the plain sum, as the training loss uses with c_m = 1.
    const auto xs = x.clone().requires_grad_();
    matvae::loss_mmd_prefixes(xs, y, nesting, o).sum().backward();
    const auto num_sum =
        numeric_grad([&](const torch::Tensor& t) { return matvae::loss_mmd_prefixes(t, y, nesting, o).sum(); }, x);
    EXPECT_TRUE(tensors_close(xs.grad(), num_sum, 1e-8));
  }
}

TEST_F(Mmd, FusedFloatPathEqualsFloat64ReferenceInValueAndGradient) {
  // loss_mmd_prefixes on CPU float32 is the fused pair loop (mmd_pair_sums.h); float64 takes the
  // ATen path. Batch-sized shapes, the point counts not multiples of the vector width, codes off the
  // prior so that every term matters, unequal weights per prefix; every kernel and estimator.
  const std::vector<int64_t> nesting = {2, 4, 8, 16, 32, 64};
  const auto x64 = torch::randn({77, 64}, kF64) * 0.8 + 0.3;
  const auto y64 = torch::randn({61, 64}, kF64);
  const auto weights = torch::tensor({1.0, 0.5, 2.0, 1.0, 3.0, 0.25}, kF64);
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const auto x32 = x64.to(torch::kFloat32).requires_grad_(), xd = x64.clone().requires_grad_();
    const auto y32 = y64.to(torch::kFloat32).requires_grad_(), yd = y64.clone().requires_grad_();
    const auto fused = matvae::loss_mmd_prefixes(x32, y32, nesting, o);
    const auto plain = matvae::loss_mmd_prefixes(xd, yd, nesting, o);
    EXPECT_EQ(fused.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(tensors_close(fused, plain, 2e-6));
    (fused * weights.to(torch::kFloat32)).sum().backward();
    (plain * weights).sum().backward();
    ASSERT_GT(xd.grad().abs().max().item<double>(), 1e-5);  // a gradient worth checking
    EXPECT_TRUE(tensors_close(x32.grad(), xd.grad(), 1e-6));
    EXPECT_TRUE(tensors_close(y32.grad(), yd.grad(), 1e-6));
    // And against the ATen formulation at the same float32 precision.
    const auto xa = x64.to(torch::kFloat32).requires_grad_();
    (matvae::loss_mmd_prefixes_aten(xa, y64.to(torch::kFloat32), nesting, o) * weights.to(torch::kFloat32))
        .sum()
        .backward();
    EXPECT_TRUE(tensors_close(x32.grad(), xa.grad(), 1e-6));
  }
}

TEST_F(Mmd, FusedPathGivesTheSameBitsOnAnyThreadCount) {
  const std::vector<int64_t> nesting = {2, 4, 8};
  const auto x = torch::randn({130, 8}), y = torch::randn({130, 8});
  const auto run = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    const auto xg = x.clone().requires_grad_();
    const auto v = matvae::loss_mmd_prefixes(xg, y, nesting);
    v.sum().backward();
    at::set_num_threads(before);
    return std::make_pair(v, xg.grad());
  };
  const auto [v1, g1] = run(1);
  const auto [v2, g2] = run(2);
  EXPECT_TRUE(torch::equal(v1, v2));
  EXPECT_TRUE(torch::equal(g1, g2));
}

TEST_F(Mmd, SharesOfTheRowsSumToTheWholeAndGiveEachItsCodesGradient) {
  // Three ranks' shares (uneven, as BatchShard splits 77 codes and 61 draws): their values sum to
  // loss_mmd_prefixes, and each share's gradient is the whole MMD's on its own code rows, 0 elsewhere.
  const std::vector<int64_t> nesting = {2, 4, 8, 16};
  const auto x = torch::randn({77, 16}) * 0.8 + 0.3, y = torch::randn({61, 16});
  const auto weights = torch::tensor({1.0f, 0.5f, 2.0f, 3.0f});
  const std::vector<matvae::RowShare> codes = {{0, 26}, {26, 26}, {52, 25}}, draws = {{0, 21}, {21, 20}, {41, 20}};
  for (const auto& o : all_options()) {
    SCOPED_TRACE(describe(o));
    const auto xw = x.clone().requires_grad_();
    const auto whole = matvae::loss_mmd_prefixes(xw, y, nesting, o);
    (whole * weights).sum().backward();
    auto sum = torch::zeros({4});
    for (size_t r = 0; r < codes.size(); ++r) {
      const auto xr = x.clone().requires_grad_(), yr = y.clone().requires_grad_();
      const auto share = matvae::loss_mmd_prefix_share(xr, yr, nesting, o, codes[r], draws[r]);
      sum += share.detach();
      (share * weights).sum().backward();
      const auto mine = xr.grad().narrow(0, codes[r].begin, codes[r].count);
      ASSERT_GT(mine.abs().max().item<double>(), 1e-5);  // a gradient worth checking
      EXPECT_TRUE(tensors_close(mine, xw.grad().narrow(0, codes[r].begin, codes[r].count), 1e-6));
      auto others = xr.grad().clone();
      others.narrow(0, codes[r].begin, codes[r].count).zero_();
      EXPECT_EQ(others.abs().max().item<float>(), 0.0f);  // nothing on the others' rows
      EXPECT_EQ(yr.grad().abs().sum().item<float>(), 0.0f);
    }
    EXPECT_TRUE(tensors_close(sum, whole.detach(), 1e-6));
  }
}

TEST_F(Mmd, RejectsBadInputs) {
  const auto x = torch::randn({4, 3});
  const auto y = torch::randn({5, 3});
  expect_check_error([&] { matvae::loss_mmd(x, torch::randn({5, 2})); }, "[5, 2]");
  expect_check_error([&] { matvae::loss_mmd(torch::randn({4}), y); }, "[4]");
  expect_check_error([&] { matvae::loss_mmd(x, y.to(torch::kFloat64)); }, "dtype");
  expect_check_error([&] { matvae::loss_mmd(torch::randn({1, 3}), y, {MmdKernel::kGaussian, true, 0.0}); }, "[1, 3]");
  expect_check_error([&] { matvae::loss_mmd(x, y, {MmdKernel::kImq, false, -1.0}); }, "-1");
  expect_check_error([&] { matvae::loss_mmd_prefixes(x, y, {2, 2, 3}); }, "[2, 2, 3]");
  expect_check_error([&] { matvae::loss_mmd_prefixes(x, y, {1, 2}); }, "D = 3");
  expect_check_error([&] { matvae::loss_mmd_prefixes(x, y, {}); }, "non-empty");
  expect_check_error([&] { matvae::loss_mmd_prefixes(x, torch::randn({1, 3}), {3}, {MmdKernel::kImq, true, 0.0}); },
                     "unbiased");
}

TEST_F(Mmd, ParsesKernelNames) {
  EXPECT_EQ(matvae::parse_mmd_kernel("gaussian"), MmdKernel::kGaussian);
  EXPECT_EQ(matvae::parse_mmd_kernel("imq"), MmdKernel::kImq);
  for (const auto kernel : {MmdKernel::kGaussian, MmdKernel::kImq})
    EXPECT_EQ(matvae::parse_mmd_kernel(matvae::to_string(kernel)), kernel);
  try {
    matvae::parse_mmd_kernel("rbf");
    ADD_FAILURE() << "parse_mmd_kernel accepted 'rbf'";
  } catch (const matvae::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "rbf"));
  }
  EXPECT_THROW(matvae::parse_mmd_kernel("IMQ"), matvae::UsageError);
}

TEST_F(Recon, BernoulliEqualsHandComputedCrossEntropy) {
  const int64_t n = 3, p = 10;
  const auto logits = torch::randn({n, p}, kF64) * 3.0;
  auto x = torch::rand({n, p}, kF64);  // fractional intensities, as MNIST has
  x[0][0] = 0.0;
  x[1][1] = 1.0;
  const auto got = matvae::loss_recon(logits, x, matvae::Likelihood::kBernoulli);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({n}));
  const auto la = logits.accessor<double, 2>();
  const auto xa = x.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    double want = 0;
    for (int64_t j = 0; j < p; ++j) {
      const double q = 1.0 / (1.0 + std::exp(-la[i][j]));
      want -= xa[i][j] * std::log(q) + (1.0 - xa[i][j]) * std::log(1.0 - q);
    }
    EXPECT_NEAR(got[i].item<double>(), want, 1e-10) << "image " << i;
  }
}

TEST_F(Recon, BernoulliIsStableForSaturatedLogits) {
  // log(sigmoid(-100)) underflows if taken naively in float; with logits it is exactly -100.
  const auto logits = torch::tensor({{100.0f, -100.0f, 100.0f}});
  const auto x = torch::tensor({{0.0f, 1.0f, 1.0f}});
  const auto got = matvae::loss_recon(logits, x, matvae::Likelihood::kBernoulli);
  ASSERT_TRUE(torch::isfinite(got).all().item<bool>());
  EXPECT_NEAR(got.item<double>(), 200.0, 1e-3);
}

TEST_F(Recon, GaussianIsSquaredError) {
  const int64_t n = 4, p = 6;
  const auto logits = torch::randn({n, p}, kF64) * 2.0;
  const auto x = torch::rand({n, p}, kF64);
  const auto got = matvae::loss_recon(logits, x, matvae::Likelihood::kGaussian);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({n}));
  const auto la = logits.accessor<double, 2>();
  const auto xa = x.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    double want = 0;
    for (int64_t j = 0; j < p; ++j) {
      const double e = xa[i][j] - 1.0 / (1.0 + std::exp(-la[i][j]));
      want += e * e;
    }
    EXPECT_NEAR(got[i].item<double>(), want, 1e-12) << "image " << i;
  }
}

TEST_F(Recon, RejectsMismatchedShapes) {
  expect_check_error(
      [] { matvae::loss_recon(torch::zeros({2, 5}), torch::zeros({2, 4}), matvae::Likelihood::kBernoulli); },
      "[2, 4]");
  expect_check_error([] { matvae::loss_recon(torch::zeros({5}), torch::zeros({5}), matvae::Likelihood::kGaussian); },
                     "[5]");
}

TEST_F(Recon, ParsesLikelihoodNames) {
  EXPECT_EQ(matvae::parse_likelihood("bernoulli"), matvae::Likelihood::kBernoulli);
  EXPECT_EQ(matvae::parse_likelihood("gaussian"), matvae::Likelihood::kGaussian);
  for (const auto l : {matvae::Likelihood::kBernoulli, matvae::Likelihood::kGaussian})
    EXPECT_EQ(matvae::parse_likelihood(matvae::to_string(l)), l);
  try {
    matvae::parse_likelihood("poisson");
    ADD_FAILURE() << "parse_likelihood accepted 'poisson'";
  } catch (const matvae::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "poisson"));
  }
}

}  // namespace
