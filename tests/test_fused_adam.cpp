// FusedAdam against LibTorch's Adam: the same trajectory to float rounding, the same state
// (interchangeable save files), and Adam itself for what the fused loop does not cover.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "matvae/train/fused_adam.h"
#include "test_util.h"

namespace {
using matvae::FusedAdam;
using matvae_test::tensors_close;

/// Two identical small MLPs (seeded), as the plain and the fused optimiser's parameters.
torch::nn::Sequential mlp(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Linear(7, 33), torch::nn::ReLU(), torch::nn::Linear(33, 5));
}

/// `steps` steps of a regression loss on fixed random data.
void train(torch::nn::Sequential& net, torch::optim::Optimizer& opt, int steps) {
  torch::manual_seed(99);
  const auto x = torch::randn({64, 7}), y = torch::randn({64, 5});
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::mse_loss(net->forward(x), y).backward();
    opt.step();
  }
}

TEST(FusedAdam, FollowsAdamToFloatRounding) {
  for (const double decay : {0.0, 0.01}) {
    SCOPED_TRACE("weight_decay " + std::to_string(decay));
    auto a = mlp(1), b = mlp(1);
    torch::optim::Adam plain(a->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(decay));
    FusedAdam fused(b->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(decay));
    train(a, plain, 40);
    train(b, fused, 40);
    const auto pa = a->parameters(), pb = b->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(tensors_close(pb[i], pa[i], 1e-5)) << "parameter " << i;
      // And the parameters moved: a no-op optimiser would fail above only if Adam did not move.
      EXPECT_FALSE(tensors_close(pa[i], mlp(1)->parameters()[i], 1e-3)) << "parameter " << i;
    }
    // The same state, under the same keys.
    ASSERT_EQ(fused.state().size(), plain.state().size());
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto& sa = static_cast<const torch::optim::AdamParamState&>(
          *plain.state().at(c10::guts::to_string(pa[i].unsafeGetTensorImpl())));
      const auto& sb = static_cast<const torch::optim::AdamParamState&>(
          *fused.state().at(c10::guts::to_string(pb[i].unsafeGetTensorImpl())));
      EXPECT_EQ(sb.step(), sa.step());
      EXPECT_TRUE(tensors_close(sb.exp_avg(), sa.exp_avg(), 1e-6));
      EXPECT_TRUE(tensors_close(sb.exp_avg_sq(), sa.exp_avg_sq(), 1e-8));
    }
  }
}

TEST(FusedAdam, AStepPlannedOnceAndUpdatedInPartsIsTheWholeStepToTheBit) {
  // What a thread team does: one rank plans, each of 3 updates its third of every parameter
  // (7 x 33 and 33 x 5 weights, biases of 33 and 5: no count divides by 3).
  auto a = mlp(1), b = mlp(1);
  FusedAdam whole(a->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(0.01));
  FusedAdam parts(b->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(0.01));
  torch::manual_seed(99);
  const auto x = torch::randn({64, 7}), y = torch::randn({64, 5});
  for (int i = 0; i < 5; ++i) {
    whole.zero_grad();
    torch::mse_loss(a->forward(x), y).backward();
    whole.step();
    parts.zero_grad();
    torch::mse_loss(b->forward(x), y).backward();
    parts.plan_step();
    for (const int64_t r : {2, 0, 1}) parts.update_part(r, 3);  // any order
  }
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pb[i], pa[i])) << "parameter " << i;
    EXPECT_FALSE(torch::equal(pa[i], mlp(1)->parameters()[i])) << "parameter " << i;  // it moved
  }
}

TEST(FusedAdam, SaveFilesAreInterchangeableWithAdam) {
  // Fused for 10 steps, saved, loaded into a plain Adam that goes on; against plain all along.
  auto a = mlp(2), b = mlp(2);
  FusedAdam fused(a->parameters(), torch::optim::AdamOptions(1e-2));
  train(a, fused, 10);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive out;
    fused.save(out);
    out.save_to(buffer);
  }
  torch::optim::Adam plain(a->parameters(), torch::optim::AdamOptions(1e-2));
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  plain.load(in);
  train(a, plain, 10);

  torch::optim::Adam reference(b->parameters(), torch::optim::AdamOptions(1e-2));
  train(b, reference, 20);
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(tensors_close(pa[i], pb[i], 1e-5)) << "parameter " << i;
}

TEST(FusedAdam, FallsBackToAdamForAmsgrad) {
  auto a = mlp(3), b = mlp(3);
  torch::optim::Adam plain(a->parameters(), torch::optim::AdamOptions(3e-3).amsgrad(true));
  FusedAdam fused(b->parameters(), torch::optim::AdamOptions(3e-3).amsgrad(true));
  train(a, plain, 15);
  train(b, fused, 15);
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

}  // namespace
