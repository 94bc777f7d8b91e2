// Tests of the closed-form KL term: zero at the prior, a known 1-D value, agreement with a Monte
// Carlo estimate, prefix KL = KL of the sliced tensors, and input checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "matvae/losses/kl.h"
#include "test_util.h"

namespace {

using matvae_test::contains;
using matvae_test::tensors_close;

class Kl : public matvae_test::SeededTest {};

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

TEST_F(Kl, ZeroAtThePrior) {
  const auto zeros = torch::zeros({5, 7});
  EXPECT_EQ(matvae::loss_kl(zeros, zeros).item<double>(), 0.0);
  const auto prefixes = matvae::loss_kl_prefixes(zeros, zeros, {1, 3, 7});
  EXPECT_TRUE(tensors_close(prefixes, torch::zeros({3}), 0.0));
}

TEST_F(Kl, KnownOneDimensionalValues) {
  // KL(N(mu, s^2) || N(0, 1)) = 0.5 (mu^2 + s^2 - 1 - log s^2).
  const auto mu = torch::tensor({{1.0}, {0.0}}, kF64);
  const auto logvar = torch::tensor({{0.0}, {std::log(2.0)}}, kF64);
  const double row0 = 0.5;                           // mu = 1, s^2 = 1
  const double row1 = 0.5 * (1.0 - std::log(2.0));  // mu = 0, s^2 = 2
  EXPECT_NEAR(matvae::loss_kl(mu.narrow(0, 0, 1), logvar.narrow(0, 0, 1)).item<double>(), row0, 1e-15);
  EXPECT_NEAR(matvae::loss_kl(mu.narrow(0, 1, 1), logvar.narrow(0, 1, 1)).item<double>(), row1, 1e-15);
  // The mean over images, not the sum.
  EXPECT_NEAR(matvae::loss_kl(mu, logvar).item<double>(), 0.5 * (row0 + row1), 1e-15);
}

TEST_F(Kl, SumsOverDimensions) {
  // Two identical dimensions give twice the KL of one.
  const auto mu = torch::tensor({{0.3, 0.3}}, kF64);
  const auto logvar = torch::tensor({{-0.7, -0.7}}, kF64);
  const double one = 0.5 * (0.09 + std::exp(-0.7) - 1.0 + 0.7);
  EXPECT_NEAR(matvae::loss_kl(mu, logvar).item<double>(), 2.0 * one, 1e-15);
}

TEST_F(Kl, AgreesWithMonteCarlo) {
  // E_q[log q(z) - log p(z)] with z = mu + sigma * eps; the log 2 pi terms cancel, leaving
  // 0.5 * sum_d (z^2 - eps^2 - logvar).
  const int64_t samples = 200000;
  const auto mu = torch::tensor({{0.5, -1.0, 0.0}, {0.2, 0.7, -0.3}}, kF64);      // [N = 2, D = 3]
  const auto logvar = torch::tensor({{0.0, -0.5, 0.8}, {-1.2, 0.3, 0.1}}, kF64);  // [N, D]
  const auto eps = torch::randn({samples, 2, 3}, kF64);
  const auto z = mu + (0.5 * logvar).exp() * eps;
  // Per draw: the mean over the two images of the summed log ratio, matching loss_kl's reduction.
  const auto log_ratio = (0.5 * (z.square() - eps.square() - logvar)).sum(2).mean(1);  // [samples]
  const double mc = log_ratio.mean().item<double>();
  const double se = log_ratio.std().item<double>() / std::sqrt(static_cast<double>(samples));
  const double exact = matvae::loss_kl(mu, logvar).item<double>();
  ASSERT_GT(se, 0.0);
  EXPECT_NEAR(exact, mc, 4.0 * se) << "exact " << exact << ", Monte Carlo " << mc << " +- " << se;
  EXPECT_GT(exact, 0.1);  // a non-trivial value, so the comparison means something
}

TEST_F(Kl, PrefixesEqualKlOfSlices) {
  const auto mu = torch::randn({6, 8}, kF64);
  const auto logvar = 0.5 * torch::randn({6, 8}, kF64);
  for (const std::vector<int64_t>& nesting : {std::vector<int64_t>{1, 3, 4, 8}, std::vector<int64_t>{8},
                                              std::vector<int64_t>{2, 4, 6, 7, 8}}) {
    const auto got = matvae::loss_kl_prefixes(mu, logvar, nesting);
    ASSERT_EQ(got.sizes(), torch::IntArrayRef({static_cast<int64_t>(nesting.size())}));
    for (size_t k = 0; k < nesting.size(); ++k) {
      const int64_t m = nesting[k];
      const double want = matvae::loss_kl(mu.narrow(1, 0, m), logvar.narrow(1, 0, m)).item<double>();
      EXPECT_NEAR(got[k].item<double>(), want, 1e-12) << "m = " << m;
    }
  }
  EXPECT_NEAR(matvae::loss_kl_prefixes(mu, logvar, {8})[0].item<double>(), matvae::loss_kl(mu, logvar).item<double>(),
              1e-12);
}

TEST_F(Kl, PrefixesAreDifferentiable) {
  const auto mu = torch::randn({4, 5}, kF64).requires_grad_();
  const auto logvar = torch::randn({4, 5}, kF64).requires_grad_();
  matvae::loss_kl_prefixes(mu, logvar, {2, 5}).sum().backward();
  // d/dmu of the summed prefixes: dims < 2 appear in both prefixes, the rest in one; / N for the mean.
  const auto weight = torch::tensor({2.0, 2.0, 1.0, 1.0, 1.0}, kF64);
  EXPECT_TRUE(tensors_close(mu.grad(), mu.detach() * weight / 4.0, 1e-12));
  EXPECT_TRUE(tensors_close(logvar.grad(), 0.5 * (logvar.detach().exp() - 1.0) * weight / 4.0, 1e-12));
}

TEST_F(Kl, RejectsBadInputs) {
  const auto a = torch::zeros({3, 4});
  const auto expect_throw = [&](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning " << part;
    } catch (const c10::Error& e) {
      EXPECT_TRUE(contains(e.what(), part));
    }
  };
  expect_throw([&] { matvae::loss_kl(torch::zeros({3}), torch::zeros({3})); }, "[3]");
  expect_throw([&] { matvae::loss_kl(a, torch::zeros({3, 5})); }, "[3, 5]");
  expect_throw([&] { matvae::loss_kl_prefixes(a, a, {2, 2, 4}); }, "[2, 2, 4]");
  expect_throw([&] { matvae::loss_kl_prefixes(a, a, {1, 3}); }, "D = 4");
  expect_throw([&] { matvae::loss_kl_prefixes(a, a, {0, 4}); }, "[0, 4]");
  expect_throw([&] { matvae::loss_kl_prefixes(a, a, {}); }, "non-empty");
}

}  // namespace
