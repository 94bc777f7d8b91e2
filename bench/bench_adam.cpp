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
