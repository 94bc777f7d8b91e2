// The training objective: its per-prefix terms against the losses computed by hand, and the
// reduction of the Matryoshka models to the plain ones when the nesting list is {D}.
#include <gtest/gtest.h>

#include "matvae/losses/kl.h"
#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/train/objective.h"
#include "test_util.h"

namespace {
using matvae::TrainConfig;
using matvae_test::tensors_close;

TrainConfig small_config(const std::string& model) {
  TrainConfig c;
  c.model = matvae::parse_model_kind(model);
  c.latent = 8;
  c.hidden = {16};
  c.nesting = {};
  matvae::resolve(c);
  return c;
}

matvae::Vae build(const TrainConfig& c, int64_t pixels, uint64_t seed) {
  torch::manual_seed(seed);
  return matvae::Vae(matvae::VaeOptions(pixels, c.latent).hidden(c.hidden).nesting(c.nesting));
}

/// Loss of one model on one batch, with fixed generators.
matvae::LossTerms loss_of(const TrainConfig& c, const torch::Tensor& x) {
  auto model = build(c, x.size(1), 42);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto out = model->forward(x, gen);
  return matvae::Objective(c)(out, x, gen);
}

TEST(ObjectiveTest, MrlWithNestingDEqualsPlainModel) {
  torch::manual_seed(3);
  const auto x = torch::rand({16, 20});
  for (const auto& [mrl, plain] : {std::pair{"mrl-mmd", "mmd"}, std::pair{"mrl-vae", "vae"}}) {
    SCOPED_TRACE(mrl);
    TrainConfig a = small_config(plain);
    TrainConfig b;
    b.model = matvae::parse_model_kind(mrl);
    b.latent = 8;
    b.hidden = {16};
    b.nesting = {8};
    matvae::resolve(b);
    const auto la = loss_of(a, x), lb = loss_of(b, x);
    EXPECT_TRUE(tensors_close(la.total, lb.total, 0));
    EXPECT_GT(la.total.item<double>(), 0);
  }
}

TEST(ObjectiveTest, TermsMatchTheLossesComputedByHand) {
  torch::manual_seed(4);
  const auto x = torch::rand({12, 20});
  TrainConfig c = small_config("mrl-mmd");  // nesting 2, 4, 8
  c.weights = {0.5, 1.0, 2.0};
  c.lambda = 10;
  auto model = build(c, 20, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto out = model->forward(x, gen);
  const auto prior_state = gen.get_state();
  const auto terms = matvae::Objective(c)(out, x, gen);

  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(0);
  gen2.set_state(prior_state);
  const auto prior = at::randn({12, 8}, gen2, torch::TensorOptions());
  matvae::MmdOptions mo;
  mo.bandwidth = c.bandwidth;
  double expected = 0;
  for (int k = 0; k < 3; ++k) {
    const int64_t m = c.nesting[k];
    const double rec = matvae::loss_recon(model->decode(out.z.narrow(1, 0, m)), x, matvae::Likelihood::kBernoulli)
                           .mean()
                           .item<double>();
    const double mmd = matvae::loss_mmd(out.z.narrow(1, 0, m), prior.narrow(1, 0, m), mo).item<double>();
    EXPECT_NEAR(terms.recon[k].item<double>(), rec, 1e-3 * std::abs(rec));
    EXPECT_NEAR(terms.divergence[k].item<double>(), mmd, 1e-5);
    expected += c.weights[k] * (rec + c.lambda * mmd);
  }
  EXPECT_NEAR(terms.total.item<double>(), expected, 1e-4 * std::abs(expected));
}

TEST(ObjectiveTest, SampledPrefixesGiveTheirTermsScaledByKOverS) {
  torch::manual_seed(8);
  const auto x = torch::rand({10, 20});
  for (const char* name : {"mrl-mmd", "mrl-vae"}) {
    SCOPED_TRACE(name);
    TrainConfig c = small_config(name);  // nesting 2, 4, 8
    c.weights = {3.0, 1.0, 0.5};
    auto model = build(c, 20, 3);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
    const auto state = gen.get_state();
    const auto all = matvae::Objective(c)(model->forward(x, gen), x, gen);
    for (const std::vector<int64_t>& which : std::vector<std::vector<int64_t>>{{0}, {0, 2}, {1, 2}}) {
      SCOPED_TRACE(::testing::PrintToString(which));
      gen.set_state(state);  // the same z and prior draws as the all-prefix pass
      const auto some = matvae::Objective(c)(model->forward(x, gen, which), x, gen);
      const auto rows = torch::tensor(which);
      EXPECT_TRUE(tensors_close(some.recon, all.recon.index_select(0, rows), 1e-5));
      EXPECT_TRUE(tensors_close(some.divergence, all.divergence.index_select(0, rows), 1e-6));
      const double share = 3.0 / static_cast<double>(which.size()), lambda = c.uses_mmd() ? c.lambda : c.beta;
      double expected = 0;
      for (size_t s = 0; s < which.size(); ++s)
        expected += share * c.weights[which[s]] *
                    (some.recon[s].item<double>() + lambda * some.divergence[s].item<double>());
      EXPECT_NEAR(some.total.item<double>(), expected, 1e-4 * std::abs(expected));
    }
  }
}

TEST(ObjectiveTest, DrawPrefixesIsUniformDistinctAndOffByDefault) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto state = gen.get_state();
  // Off (0) or all (>= K): every prefix, and no random number taken.
  for (int64_t s : {0, 6, 9}) EXPECT_EQ(matvae::Objective::draw_prefixes(6, s, gen), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(torch::equal(gen.get_state(), state));
  std::vector<int64_t> count(6, 0);
  const int64_t draws = 3000;
  for (int64_t i = 0; i < draws; ++i) {
    const auto which = matvae::Objective::draw_prefixes(6, 2, gen);
    ASSERT_EQ(which.size(), 2u);
    ASSERT_LT(which[0], which[1]);  // distinct and ascending
    for (int64_t k : which) ++count.at(static_cast<size_t>(k));
  }
  // Each prefix in 1/3 of the steps: 1000 expected, sd ~26.
  for (int64_t n : count) EXPECT_NEAR(static_cast<double>(n), 1000.0, 120.0);
  // Seeded: the same generator state draws the same prefixes.
  gen.set_state(state);
  const auto a = matvae::Objective::draw_prefixes(6, 3, gen);
  gen.set_state(state);
  EXPECT_EQ(matvae::Objective::draw_prefixes(6, 3, gen), a);
}

TEST(ObjectiveTest, PerPrefixLambdasAndWarmupScaleOnlyTheDivergence) {
  torch::manual_seed(6);
  const auto x = torch::rand({10, 20});
  TrainConfig c = small_config("mrl-mmd");  // nesting 2, 4, 8
  c.weights = {3.0, 1.0, 0.5};
  c.lambdas = {50.0, 5.0, 0.0};
  auto model = build(c, 20, 3);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto out = model->forward(x, gen);
  const auto state = gen.get_state();
  const double scale = 0.25;
  const auto terms = matvae::Objective(c)(out, x, gen, scale);
  double expected = 0;
  for (int k = 0; k < 3; ++k)
    expected += c.weights[k] * (terms.recon[k].item<double>() + scale * c.lambdas[k] * terms.divergence[k].item<double>());
  EXPECT_NEAR(terms.total.item<double>(), expected, 1e-4 * std::abs(expected));
  // The same draws with lambdas empty and lambda = 5: every prefix gets 5.
  TrainConfig same = c;
  same.lambdas = {};
  same.lambda = 5;
  gen.set_state(state);
  const auto t2 = matvae::Objective(same)(out, x, gen, 1.0);
  double expected2 = 0;
  for (int k = 0; k < 3; ++k)
    expected2 += c.weights[k] * (t2.recon[k].item<double>() + 5.0 * t2.divergence[k].item<double>());
  EXPECT_NEAR(t2.total.item<double>(), expected2, 1e-4 * std::abs(expected2));
  EXPECT_TRUE(tensors_close(t2.divergence, terms.divergence, 0));
}

TEST(ObjectiveTest, WarmupRampsLinearlyOverItsEpochs) {
  TrainConfig c = small_config("mmd");
  EXPECT_EQ(matvae::Objective::warmup_scale(c, 0, 10), 1.0);  // off
  c.warmup = 2.0;
  EXPECT_EQ(matvae::Objective::warmup_scale(c, 0, 10), 0.0);
  EXPECT_DOUBLE_EQ(matvae::Objective::warmup_scale(c, 5, 10), 0.25);
  EXPECT_DOUBLE_EQ(matvae::Objective::warmup_scale(c, 15, 10), 0.75);
  EXPECT_EQ(matvae::Objective::warmup_scale(c, 20, 10), 1.0);
  EXPECT_EQ(matvae::Objective::warmup_scale(c, 1000, 10), 1.0);
}

TEST(ObjectiveTest, VaeDivergenceIsThePrefixKl) {
  torch::manual_seed(5);
  const auto x = torch::rand({6, 20});
  TrainConfig c = small_config("mrl-vae");
  auto model = build(c, 20, 2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto out = model->forward(x, gen);
  const auto terms = matvae::Objective(c)(out, x, gen);
  for (int k = 0; k < 3; ++k) {
    const int64_t m = c.nesting[k];
    EXPECT_NEAR(terms.divergence[k].item<double>(),
                matvae::loss_kl(out.mu.narrow(1, 0, m), out.logvar.narrow(1, 0, m)).item<double>(), 1e-4);
  }
}

}  // namespace
