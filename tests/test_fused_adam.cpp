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
    ASSERT_TRUE(parts.plan_step());
    for (const int64_t r : {2, 0, 1}) parts.update_part(r, 3);  // any order
  }
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pb[i], pa[i])) << "parameter " << i;
    EXPECT_FALSE(torch::equal(pa[i], mlp(1)->parameters()[i])) << "parameter " << i;  // it moved
  }
}

/// A net of 12,000 + 1,500 weights (parts larger than update_part_of_sum's chunks), and `ranks - 1`
/// more whose parameters share its memory, each with gradients of its own: a thread team's models.
std::vector<torch::nn::Sequential> team_of(int ranks) {
  std::vector<torch::nn::Sequential> team;
  for (int r = 0; r < ranks; ++r) {
    torch::manual_seed(5);
    team.push_back(torch::nn::Sequential(torch::nn::Linear(40, 300), torch::nn::ReLU(), torch::nn::Linear(300, 5)));
    if (r == 0) continue;
    const auto mine = team.back()->parameters(), roots = team.front()->parameters();
    for (size_t i = 0; i < mine.size(); ++i) {
      torch::Tensor w = mine[i];
      w.set_data(roots[i]);
    }
  }
  return team;
}

/// Each rank's backward of the loss on its share of the batch, into its own gradients.
void backward_shares(std::vector<torch::nn::Sequential>& team, const torch::Tensor& x, const torch::Tensor& y) {
  for (size_t r = 0; r < team.size(); ++r) {
    for (auto& w : team[r]->parameters()) w.mutable_grad() = torch::Tensor();
    const auto rows = torch::arange(static_cast<int64_t>(r), x.size(0), static_cast<int64_t>(team.size()));
    torch::mse_loss(team[r]->forward(x.index_select(0, rows)), y.index_select(0, rows)).backward();
  }
}

TEST(FusedAdam, TheRanksGradientsSummedAsTheUpdateReadsThemAreTheAllReduceThenTheStepToTheBit) {
  // Reference: the gradients summed in rank order into rank 0's (what an all-reduce did), then step().
  // 1, 2 and 3 ranks: each of update_part_of_sum's loops.
  for (const int ranks : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    auto a = team_of(ranks), b = team_of(ranks);
    FusedAdam whole(a[0]->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(0.01));
    FusedAdam parts(b[0]->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(0.01));
    torch::manual_seed(99);
    const auto x = torch::randn({96, 40}), y = torch::randn({96, 5});
    std::vector<std::vector<torch::Tensor>> ranks_parameters;
    for (auto& net : b) ranks_parameters.push_back(net->parameters());
    for (int i = 0; i < 4; ++i) {
      backward_shares(a, x, y);
      const auto p0 = a[0]->parameters();
      for (int r = 1; r < ranks; ++r) {
        const auto pr = a[r]->parameters();
        for (size_t j = 0; j < p0.size(); ++j) p0[j].mutable_grad() = p0[j].grad() + pr[j].grad();
      }
      whole.step();
      backward_shares(b, x, y);
      ASSERT_TRUE(parts.plan_step());
      for (const int64_t r : {2, 0, 1}) parts.update_part_of_sum(r, 3, ranks_parameters);  // any order
    }
    const auto pa = a[0]->parameters(), pb = b[0]->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(torch::equal(pb[i], pa[i])) << "parameter " << i;
      EXPECT_FALSE(torch::equal(pa[i], team_of(1)[0]->parameters()[i])) << "parameter " << i;  // it moved
    }
    // Another net's parameters (their own memory) are not the ranks' of this optimizer.
    auto stranger = team_of(1);
    backward_shares(b, x, y);
    backward_shares(stranger, x, y);
    ranks_parameters.back() = stranger[0]->parameters();
    ASSERT_TRUE(parts.plan_step());
    EXPECT_THROW(parts.update_part_of_sum(0, 3, ranks_parameters), c10::Error);
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
