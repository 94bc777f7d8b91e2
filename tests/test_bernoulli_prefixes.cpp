// The fused Bernoulli loss of all prefixes against the plain ATen path and float64: values and
// gradients (saturated logits included), shapes that do not fill the vector lanes or the kernel's
// blocks, the same bits on any number of threads, the fallback for what the kernel does not take,
// and loss_recon_prefixes routing every likelihood.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <limits>

#include "matvae/losses/bernoulli_prefixes.h"
#include "matvae/losses/recon.h"
#include "test_util.h"

namespace {
using matvae::bernoulli_nll_prefixes;
using matvae::bernoulli_nll_prefixes_plain;
using matvae_test::tensors_close;

/// Every element within rel * |expected| + abs of expected (float64 comparison).
::testing::AssertionResult relatively_close(const torch::Tensor& actual, const torch::Tensor& expected, double rel,
                                            double abs) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " differs from " << expected.sizes();
  const auto a = actual.detach().to(torch::kFloat64), e = expected.detach().to(torch::kFloat64);
  const auto excess = ((a - e).abs() - (rel * e.abs() + abs)).reshape({-1});
  if (!torch::isfinite(a).all().item<bool>()) return ::testing::AssertionFailure() << "non-finite values";
  const auto worst = excess.argmax().item<int64_t>();
  if (excess[worst].item<double>() <= 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << worst << ": " << a.reshape({-1})[worst].item<double>()
                                       << " vs " << e.reshape({-1})[worst].item<double>();
}

/// Logits of every size with the saturated values sprinkled in, and intensities that are 0, 1 or
/// fractional, as MNIST's are.
std::pair<torch::Tensor, torch::Tensor> inputs(int64_t s, int64_t n, int64_t p) {
  auto logits = torch::randn({s, n, p}) * 4.0;
  const auto special = torch::tensor({30.0f, -30.0f, 80.0f, -80.0f, 0.0f, 100.0f, -100.0f, 87.5f, -87.5f});
  auto flat = logits.view({-1});
  const auto where = torch::randint(flat.numel(), {std::max<int64_t>(1, flat.numel() / 10)}, torch::kInt64);
  flat.index_put_({where}, special.index({torch::randint(special.numel(), {where.numel()}, torch::kInt64)}));
  auto x = torch::rand({n, p});
  const auto pick = torch::rand({n, p});
  x = torch::where(pick < 0.3, torch::zeros_like(x), torch::where(pick < 0.5, torch::ones_like(x), x));
  return {logits, x};
}

/// The loss and d(sum(loss * weights)) / d logits of `f`, at float32 logits.
template <class F>
std::pair<torch::Tensor, torch::Tensor> loss_and_grad(F f, const torch::Tensor& logits, const torch::Tensor& x,
                                                      const torch::Tensor& weights) {
  const auto l = logits.detach().clone().requires_grad_(true);
  const auto loss = f(l, x);
  (loss * weights).sum().backward();
  return {loss.detach(), l.grad()};
}

std::string node_name(const torch::Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : "(none)"; }

class BernoulliPrefixes : public matvae_test::SeededTest {};

TEST_F(BernoulliPrefixes, MatchesPlainPathAndFloat64InValueAndGradient) {
  // P below, at and above the 16 lanes and the 256-pixel blocks; one prefix, one image.
  const std::vector<std::array<int64_t, 3>> shapes = {{6, 8, 784}, {1, 3, 37}, {3, 1, 17}, {2, 5, 1},
                                                      {4, 3, 256}, {2, 2, 300}, {1, 1, 15}, {5, 7, 513}};
  for (const auto& [s, n, p] : shapes) {
    SCOPED_TRACE("S=" + std::to_string(s) + " N=" + std::to_string(n) + " P=" + std::to_string(p));
    const auto [logits, x] = inputs(s, n, p);
    const auto weights = torch::rand({s, n}) + 0.5;
    const auto [fused, fused_grad] = loss_and_grad(bernoulli_nll_prefixes, logits, x, weights);
    const auto [plain, plain_grad] = loss_and_grad(bernoulli_nll_prefixes_plain, logits, x, weights);
    // Float64 through the plain path: what both should approximate.
    const auto [exact, exact_grad] =
        loss_and_grad(bernoulli_nll_prefixes_plain, logits.to(torch::kFloat64), x.to(torch::kFloat64),
                      weights.to(torch::kFloat64));
    ASSERT_EQ(fused.sizes(), torch::IntArrayRef({s, n}));
    EXPECT_EQ(fused.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(relatively_close(fused, plain, 1e-5, 1e-5));
    EXPECT_TRUE(relatively_close(fused, exact, 1e-5, 1e-6));
    // Gradients are (sigmoid(l) - x) * weight, at most 1.5 in size: absolute tolerances.
    EXPECT_TRUE(tensors_close(fused_grad, plain_grad, 1e-6));
    EXPECT_TRUE(tensors_close(fused_grad, exact_grad, 1e-6));
  }
}

TEST_F(BernoulliPrefixes, TakesTheFusedKernelForCpuFloat) {
  // Without this the comparisons above could pass by falling back to the plain path.
  const auto [logits, x] = inputs(2, 3, 10);
  const auto loss = bernoulli_nll_prefixes(logits.requires_grad_(true), x);
  EXPECT_TRUE(matvae_test::contains(node_name(loss), "BernoulliPrefixes"));
  EXPECT_FALSE(matvae_test::contains(node_name(bernoulli_nll_prefixes_plain(logits, x)), "BernoulliPrefixes"));
}

TEST_F(BernoulliPrefixes, SaturatedLogitsGiveTheExactLimits) {
  // loss(l, x) = max(l, 0) - l x + log1p(exp(-|l|)): at |l| >= 30 the log1p term is below 1e-13,
  // so the loss is max(l, 0) - l x to float rounding; the gradient is 0 or 1 minus x.
  const auto logits = torch::tensor({30.0f, -30.0f, 80.0f, -80.0f, 100.0f, -100.0f, 0.0f}).view({1, 1, 7});
  for (const float xv : {0.0f, 1.0f, 0.25f}) {
    SCOPED_TRACE("x = " + std::to_string(xv));
    const auto x = torch::full({1, 7}, xv);
    const auto [loss, grad] = loss_and_grad(bernoulli_nll_prefixes, logits, x, torch::ones({1, 1}));
    const auto l = logits.view({7}).to(torch::kFloat64);
    const auto want = (l.clamp_min(0) - l * xv + torch::log1p(torch::exp(-l.abs()))).sum().view({1, 1});
    EXPECT_TRUE(relatively_close(loss, want, 1e-6, 1e-6));
    const auto want_grad = torch::tensor({1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.5}).view({1, 1, 7}) - xv;
    EXPECT_TRUE(tensors_close(grad, want_grad, 1e-7));
  }
}

TEST_F(BernoulliPrefixes, NanLogitsGiveNanLosses) {
  // A diverging run must show as NaN (the trainer stops on it), not be clamped into a number.
  auto logits = torch::zeros({2, 1, 20});
  logits[1][0][17] = std::numeric_limits<float>::quiet_NaN();
  const auto loss = bernoulli_nll_prefixes(logits, torch::full({1, 20}, 0.5f));
  EXPECT_TRUE(std::isfinite(loss[0][0].item<float>()));
  EXPECT_TRUE(std::isnan(loss[1][0].item<float>()));
}

TEST_F(BernoulliPrefixes, SameBitsOnOneAndTwoThreads) {
  const int threads = at::get_num_threads();
  const auto [logits, x] = inputs(6, 128, 784);  // 768 rows: several parallel tasks
  const auto weights = torch::rand({6, 128});
  at::set_num_threads(1);
  const auto [one, one_grad] = loss_and_grad(bernoulli_nll_prefixes, logits, x, weights);
  at::set_num_threads(2);
  const auto [two, two_grad] = loss_and_grad(bernoulli_nll_prefixes, logits, x, weights);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
  EXPECT_TRUE(torch::equal(one_grad, two_grad));
}

TEST_F(BernoulliPrefixes, WithoutGradientGivesTheSameValues) {
  const auto [logits, x] = inputs(3, 4, 100);
  const auto with = bernoulli_nll_prefixes(logits.clone().requires_grad_(true), x);
  torch::NoGradGuard no_grad;
  const auto without = bernoulli_nll_prefixes(logits, x);
  EXPECT_FALSE(without.requires_grad());
  EXPECT_TRUE(torch::equal(with.detach(), without));
}

TEST_F(BernoulliPrefixes, FallsBackToThePlainPath) {
  const auto [logits, x] = inputs(3, 4, 21);
  {
    SCOPED_TRACE("float64");
    const auto l = logits.to(torch::kFloat64), xd = x.to(torch::kFloat64);
    const auto got = bernoulli_nll_prefixes(l, xd);
    EXPECT_EQ(got.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(torch::equal(got, bernoulli_nll_prefixes_plain(l, xd)));
  }
  {
    SCOPED_TRACE("non-contiguous logits and x");
    const auto l = logits.transpose(1, 2).contiguous().transpose(1, 2);  // [S, N, P] with P not innermost
    const auto xt = x.t().contiguous().t();
    ASSERT_FALSE(l.is_contiguous());
    ASSERT_FALSE(xt.is_contiguous());
    const auto [got, got_grad] = loss_and_grad(bernoulli_nll_prefixes, l, xt, torch::ones({3, 4}));
    const auto [want, want_grad] = loss_and_grad(bernoulli_nll_prefixes_plain, logits, x, torch::ones({3, 4}));
    EXPECT_TRUE(torch::equal(got, want));
    EXPECT_TRUE(torch::equal(got_grad, want_grad));
  }
  {
    SCOPED_TRACE("x requiring a gradient");
    const auto xg = x.clone().requires_grad_(true);
    const auto got = bernoulli_nll_prefixes(logits, xg);
    EXPECT_FALSE(matvae_test::contains(node_name(got), "BernoulliPrefixes"));
    got.sum().backward();
    ASSERT_TRUE(xg.grad().defined());
    // d/dx of sum over prefixes of (max(l, 0) - l x + ...) = -sum_s l[s].
    EXPECT_TRUE(tensors_close(xg.grad(), -logits.sum(0), 1e-4));
  }
}

TEST_F(BernoulliPrefixes, PlainGradientMatchesFiniteDifferences) {
  // The reference itself, in float64: central differences of the plain path's loss.
  const auto [logits32, x32] = inputs(2, 2, 5);
  const auto logits = (logits32.clamp(-8, 8)).to(torch::kFloat64), x = x32.to(torch::kFloat64);
  const auto weights = torch::rand({2, 2}, torch::kFloat64) + 0.5;
  const auto [loss, grad] = loss_and_grad(bernoulli_nll_prefixes_plain, logits, x, weights);
  const double h = 1e-6;
  auto numeric = torch::zeros_like(logits);
  for (int64_t i = 0; i < logits.numel(); ++i) {
    auto up = logits.clone(), down = logits.clone();
    up.view({-1})[i] += h;
    down.view({-1})[i] -= h;
    const auto f = [&](const torch::Tensor& l) { return (bernoulli_nll_prefixes_plain(l, x) * weights).sum(); };
    numeric.view({-1})[i] = (f(up) - f(down)) / (2 * h);
  }
  EXPECT_TRUE(tensors_close(grad, numeric, 1e-7));
  // And the fused kernel's float32 gradient is that gradient to float rounding.
  const auto [fused, fused_grad] = loss_and_grad(bernoulli_nll_prefixes, logits32.clamp(-8, 8), x32,
                                                 weights.to(torch::kFloat32));
  EXPECT_TRUE(tensors_close(fused_grad, numeric, 1e-6));
}

TEST_F(BernoulliPrefixes, RejectsMismatchedShapes) {
  EXPECT_THROW(bernoulli_nll_prefixes(torch::zeros({2, 3, 4}), torch::zeros({3, 5})), c10::Error);
  EXPECT_THROW(bernoulli_nll_prefixes(torch::zeros({2, 3, 4}), torch::zeros({2, 4})), c10::Error);
  EXPECT_THROW(bernoulli_nll_prefixes(torch::zeros({3, 4}), torch::zeros({3, 4})), c10::Error);
  EXPECT_THROW(matvae::loss_recon_prefixes(torch::zeros({2, 3, 4}), torch::zeros({3, 5}), matvae::Likelihood::kNormal),
               c10::Error);
}

TEST_F(BernoulliPrefixes, ReconPrefixesEqualsLossReconOfEachPrefix) {
  const auto [logits, x] = inputs(3, 5, 40);
  for (const auto likelihood :
       {matvae::Likelihood::kBernoulli, matvae::Likelihood::kGaussian, matvae::Likelihood::kNormal}) {
    SCOPED_TRACE(matvae::to_string(likelihood));
    const auto got = matvae::loss_recon_prefixes(logits, x, likelihood);
    ASSERT_EQ(got.sizes(), torch::IntArrayRef({3, 5}));
    for (int64_t s = 0; s < 3; ++s)
      EXPECT_TRUE(relatively_close(got[s], matvae::loss_recon(logits[s], x, likelihood), 1e-5, 1e-5));
  }
}

}  // namespace
