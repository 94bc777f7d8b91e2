// The fused reparameterisation against its plain ATen path and float64, in value and gradient;
// the gradient against finite differences; NaN kept; the fallbacks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "matvae/models/reparameterize.h"
#include "test_util.h"

namespace {
using matvae::reparameterize;
using matvae::reparameterize_plain;
using matvae_test::tensors_close;

/// z and the gradients of sum(z * w) to mu and logvar.
template <class F>
std::array<torch::Tensor, 3> value_and_grads(F f, const torch::Tensor& mu, const torch::Tensor& logvar,
                                             const torch::Tensor& eps, const torch::Tensor& w) {
  const auto m = mu.detach().clone().requires_grad_(true), lv = logvar.detach().clone().requires_grad_(true);
  const auto z = f(m, lv, eps);
  (z * w).sum().backward();
  return {z.detach(), m.grad(), lv.grad()};
}

class Reparameterize : public matvae_test::SeededTest {};

TEST_F(Reparameterize, MatchesPlainPathAndFloat64) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{256, 64}, {3, 5}, {1, 1}, {1000, 17}}) {
    SCOPED_TRACE(::testing::PrintToString(shape));
    const auto mu = torch::randn(shape), logvar = torch::randn(shape) * 3, eps = torch::randn(shape);
    const auto w = torch::randn(shape);
    const auto fused = value_and_grads(reparameterize, mu, logvar, eps, w);
    const auto plain = value_and_grads(reparameterize_plain, mu, logvar, eps, w);
    const auto exact = value_and_grads(reparameterize_plain, mu.to(torch::kFloat64), logvar.to(torch::kFloat64),
                                       eps.to(torch::kFloat64), w.to(torch::kFloat64));
    for (size_t i = 0; i < 3; ++i) {
      SCOPED_TRACE(i == 0 ? "z" : i == 1 ? "grad mu" : "grad logvar");
      // exp(logvar / 2) reaches ~e^5 here: relative float rounding of that.
      EXPECT_TRUE(tensors_close(fused[i], plain[i], 1e-4));
      EXPECT_TRUE(tensors_close(fused[i], exact[i], 1e-4));
    }
    EXPECT_TRUE(torch::equal(fused[1], w));  // dz/dmu = 1
  }
}

TEST_F(Reparameterize, TakesTheFusedKernelForCpuFloat) {
  const auto mu = torch::randn({4, 3}).requires_grad_(true);
  const auto z = reparameterize(mu, torch::randn({4, 3}), torch::randn({4, 3}));
  ASSERT_TRUE(z.grad_fn());
  EXPECT_TRUE(matvae_test::contains(z.grad_fn()->name(), "Reparameterize"));
}

TEST_F(Reparameterize, GradientMatchesFiniteDifferences) {
  const auto mu = torch::randn({3, 4}, torch::kFloat64), logvar = torch::randn({3, 4}, torch::kFloat64);
  const auto eps = torch::randn({3, 4}, torch::kFloat64), w = torch::randn({3, 4}, torch::kFloat64);
  const auto f = [&](const torch::Tensor& lv) { return (reparameterize_plain(mu, lv, eps) * w).sum().item<double>(); };
  auto numeric = torch::zeros_like(logvar);
  const double h = 1e-6;
  for (int64_t i = 0; i < logvar.numel(); ++i) {
    auto up = logvar.clone(), down = logvar.clone();
    up.view({-1})[i] += h;
    down.view({-1})[i] -= h;
    numeric.view({-1})[i] = (f(up) - f(down)) / (2 * h);
  }
  const auto fused = value_and_grads(reparameterize, mu.to(torch::kFloat32), logvar.to(torch::kFloat32),
                                     eps.to(torch::kFloat32), w.to(torch::kFloat32));
  EXPECT_TRUE(tensors_close(fused[2], numeric, 1e-5));
}

TEST_F(Reparameterize, NanStaysNan) {
  auto logvar = torch::zeros({2, 3});
  logvar[1][1] = std::numeric_limits<float>::quiet_NaN();
  const auto z = reparameterize(torch::zeros({2, 3}), logvar, torch::ones({2, 3}));
  EXPECT_TRUE(std::isnan(z[1][1].item<float>()));
  EXPECT_EQ(torch::isnan(z).sum().item<int64_t>(), 1);
}

TEST_F(Reparameterize, FallsBackToThePlainPath) {
  const auto mu = torch::randn({3, 4}, torch::kFloat64), logvar = torch::randn({3, 4}, torch::kFloat64);
  const auto eps = torch::randn({3, 4}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(reparameterize(mu, logvar, eps), reparameterize_plain(mu, logvar, eps)));
  // A non-contiguous float input still gives the plain path's values.
  const auto m = torch::randn({4, 3}).t(), lv = torch::randn({4, 3}).t(), e = torch::randn({3, 4});
  EXPECT_TRUE(tensors_close(reparameterize(m, lv, e), reparameterize_plain(m, lv, e), 1e-6));
  EXPECT_THROW(reparameterize(torch::zeros({2, 3}), torch::zeros({3, 2}), torch::zeros({2, 3})), c10::Error);
}

}  // namespace
