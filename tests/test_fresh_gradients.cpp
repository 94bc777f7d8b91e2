// Dropping gradients before backward (fresh_gradients.h) against Optimizer::zero_grad: the same
// trajectory to the bit, also when prefix sampling leaves a decoder without a gradient for a step.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "matvae/models/vae.h"
#include "matvae/train/build_model.h"
#include "matvae/train/fresh_gradients.h"
#include "matvae/train/fused_adam.h"
#include "matvae/train/objective.h"

namespace {

enum class Clearing { kZeroGrad, kDrop };

/// `steps` MRL-MMD-VAE steps with separate decoders, one prefix of three drawn per step, on fixed
/// synthetic images; returns the parameters after them.
std::vector<torch::Tensor> train(Clearing clearing, int steps) {
  matvae::TrainConfig c;
  c.model = matvae::parse_model_kind("mrl-mmd");
  c.decoder = matvae::DecoderForm::kSeparate;
  c.latent = 8;
  c.nesting = {2, 4, 8};
  c.hidden = {16};
  c.prefix_sample = 1;
  c.data = "synthetic";  // resolve() asks for a data path; nothing reads it here
  matvae::resolve(c);
  matvae::Vae model = matvae::build_model(c, 20, 5);
  matvae::FusedAdam adam(model->parameters(), torch::optim::AdamOptions(1e-2));
  const matvae::Objective objective(c);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  torch::manual_seed(3);
  const auto x = torch::rand({24, 20});
  for (int i = 0; i < steps; ++i) {
    std::vector<bool> had;
    if (clearing == Clearing::kZeroGrad) adam.zero_grad();
    else had = matvae::drop_gradients(model->parameters());
    const auto which = matvae::Objective::draw_prefixes(3, c.prefix_sample, gen);
    const auto terms = objective(model->forward(x, gen, which), x, gen);
    terms.total.backward();
    if (clearing == Clearing::kDrop) matvae::restore_zero_gradients(model->parameters(), had);
    adam.step();
  }
  std::vector<torch::Tensor> out;
  for (const auto& w : model->parameters()) out.push_back(w.detach().clone());
  return out;
}

TEST(FreshGradients, TrainsToTheSameBitsAsZeroGradWithUndrawnDecoders) {
  const auto zeroed = train(Clearing::kZeroGrad, 12), dropped = train(Clearing::kDrop, 12);
  ASSERT_EQ(zeroed.size(), dropped.size());
  for (size_t i = 0; i < zeroed.size(); ++i) EXPECT_TRUE(torch::equal(zeroed[i], dropped[i])) << "parameter " << i;
  // Without the zeros given back, Adam would skip an undrawn decoder that it moves on its moments
  // with zero_grad: the run would differ, which is what this test would then catch.
}

TEST(FreshGradients, GivesZerosBackOnlyToParametersThatHadAGradient) {
  auto a = torch::ones({3}, torch::requires_grad()), b = torch::ones({2}, torch::requires_grad()),
       c = torch::ones({4}, torch::requires_grad());
  a.mutable_grad() = torch::full({3}, 5.0f);
  b.mutable_grad() = torch::full({2}, 7.0f);
  const std::vector<torch::Tensor> params{a, b, c};
  const auto had = matvae::drop_gradients(params);
  EXPECT_EQ(had, (std::vector<bool>{true, true, false}));
  for (const auto& w : params) EXPECT_FALSE(w.grad().defined());
  (b * 3).sum().backward();  // only b gets a gradient this step
  matvae::restore_zero_gradients(params, had);
  EXPECT_TRUE(torch::equal(a.grad(), torch::zeros({3})));
  EXPECT_TRUE(torch::equal(b.grad(), torch::full({2}, 3.0f)));
  EXPECT_FALSE(c.grad().defined());
}

}  // namespace
