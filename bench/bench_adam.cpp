// FusedAdam's one-pass update against LibTorch's Adam, on the default MRL-MMD-VAE's parameters
// (about 1.1 million floats).
#include "bench_check.h"
#include "matvae/models/vae.h"
#include "matvae/train/fused_adam.h"

namespace {

/// The parameters of the default model with seeded gradients.
matvae::Vae model_with_grads() {
  torch::manual_seed(3);
  matvae::Vae vae(matvae::VaeOptions(784, 64).nesting({2, 4, 8, 16, 32, 64}));
  for (auto& p : vae->parameters()) p.mutable_grad() = torch::randn_like(p);
  return vae;
}

template <typename Optimizer>
void BM_Adam(benchmark::State& state) {
  matvae_bench::setup(3, state.range(0));
  auto plain = model_with_grads(), fast = model_with_grads();
  torch::optim::Adam reference(plain->parameters(), torch::optim::AdamOptions(1e-3));
  Optimizer timed(fast->parameters(), torch::optim::AdamOptions(1e-3));
  for (int i = 0; i < 3; ++i) {
    reference.step();
    timed.step();
  }
  if (!matvae_bench::checked(state, torch::cat(torch::nn::utils::parameters_to_vector(fast->parameters())),
                             torch::cat(torch::nn::utils::parameters_to_vector(plain->parameters())), 1e-6, "Adam"))
    return;
  int64_t n = 0;
  for (const auto& p : fast->parameters()) n += p.numel();
  for (auto _ : state) timed.step();
  state.SetItemsProcessed(state.iterations() * n);  // parameters updated
}

}  // namespace

BENCHMARK_TEMPLATE(BM_Adam, matvae::FusedAdam)
    ->ArgsProduct({matvae_bench::kThreads})
    ->ArgNames({"threads"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_Adam, torch::optim::Adam)
    ->ArgsProduct({matvae_bench::kThreads})
    ->ArgNames({"threads"})
    ->Unit(benchmark::kMicrosecond);

// ================================================================================================
// A thread team's step (2 ranks, both parts on this one thread): the sum stored, then read by the
// update (what the team did until session 15: an all-reduce into every rank's gradients, then
// update_part), against update_part_of_sum, which sums the ranks' gradients as it reads them.
// ================================================================================================

namespace {

/// The default model, and a second rank's model sharing its weights with gradients of its own.
struct TwoRanks {
  matvae::Vae root = model_with_grads(), other = model_with_grads();
  std::vector<std::vector<torch::Tensor>> parameters;
  TwoRanks() {
    torch::NoGradGuard no_grad;
    const auto mine = other->parameters(), roots = root->parameters();
    for (size_t i = 0; i < mine.size(); ++i) {
      torch::Tensor w = mine[i];
      w.set_data(roots[i]);
      w.mutable_grad().mul_(0.5);  // a gradient unlike rank 0's
    }
    parameters = {root->parameters(), other->parameters()};
  }
};

/// The all-reduce's pass for 2 ranks: each element's sum written into both ranks' gradients.
/// `scale` 0.5 (the mean) keeps repeated passes finite in the timed loop; the traffic is the same.
void sum_into_both(TwoRanks& t, float scale) {
  for (size_t i = 0; i < t.parameters[0].size(); ++i) {
    float* __restrict a = t.parameters[0][i].mutable_grad().data_ptr<float>();
    float* __restrict b = t.parameters[1][i].mutable_grad().data_ptr<float>();
    const int64_t n = t.parameters[0][i].numel();
    for (int64_t j = 0; j < n; ++j) a[j] = b[j] = (a[j] + b[j]) * scale;
  }
}

void BM_TeamAdam(benchmark::State& state) {
  const bool summed_in_update = state.range(0) == 1;
  matvae_bench::setup(3, 1);
  TwoRanks plain, fast;
  matvae::FusedAdam reference(plain.root->parameters(), torch::optim::AdamOptions(1e-3));
  matvae::FusedAdam timed(fast.root->parameters(), torch::optim::AdamOptions(1e-3));
  // One step each way from the same weights and gradients: the same bits.
  sum_into_both(plain, 1.0f);
  reference.plan_step();
  reference.update_part(0, 1);
  timed.plan_step();
  timed.update_part_of_sum(0, 1, fast.parameters);
  if (!matvae_bench::checked(state, torch::cat(torch::nn::utils::parameters_to_vector(fast.root->parameters())),
                             torch::cat(torch::nn::utils::parameters_to_vector(plain.root->parameters())), 0.0,
                             "update_part_of_sum"))
    return;
  int64_t n = 0;
  for (const auto& p : fast.root->parameters()) n += p.numel();
  for (auto _ : state) {
    timed.plan_step();
    if (summed_in_update) {
      timed.update_part_of_sum(0, 2, fast.parameters);
      timed.update_part_of_sum(1, 2, fast.parameters);
    } else {
      sum_into_both(fast, 0.5f);
      timed.update_part(0, 2);
      timed.update_part(1, 2);
    }
  }
  state.SetItemsProcessed(state.iterations() * n);  // parameters updated
}

}  // namespace

BENCHMARK(BM_TeamAdam)->ArgNames({"summed_in_update"})->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
