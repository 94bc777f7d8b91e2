// The linear probe's loss and gradient (written out, classes on the outer axis), as one L-BFGS
// function evaluation on 18,000 training codes, against autograd through log_softmax.
#include "bench_check.h"
#include "matvae/eval/linear_probe.h"

namespace {
constexpr int64_t kRows = 18000, kClasses = 10;

struct Inputs {
  torch::Tensor x, y, weight_t, bias;
};
Inputs inputs(int64_t m) {
  return {torch::randn({kRows, m}), torch::randint(kClasses, {kRows}, torch::kInt64), torch::randn({kClasses, m}) * 0.1,
          torch::zeros({kClasses})};
}

/// The plain path: autograd of the same objective over [N, C] logits.
std::pair<torch::Tensor, torch::Tensor> autograd_loss(const Inputs& in, double l2) {
  auto w = in.weight_t.t().clone().requires_grad_(true);
  auto b = in.bias.clone().requires_grad_(true);
  const auto loss = torch::nll_loss(torch::log_softmax(torch::addmm(b, in.x, w), 1), in.y) + 0.5 * l2 * w.square().sum();
  loss.backward();
  return {w.grad().t(), b.grad()};
}

void BM_ProbeLoss(benchmark::State& state) {
  matvae_bench::setup(5, state.range(1));
  const Inputs in = inputs(state.range(0));
  const auto objective = matvae::probe_objective(in.x, in.y, kClasses, 1e-3);
  const auto fast = matvae::probe_loss(objective, in.weight_t, in.bias);
  if (!matvae_bench::checked(state, fast.grad_weight_t, autograd_loss(in, 1e-3).first, 1e-5, "probe gradient")) return;
  for (auto _ : state)
    benchmark::DoNotOptimize(matvae::probe_loss(objective, in.weight_t, in.bias).grad_weight_t.data_ptr());
  state.SetItemsProcessed(state.iterations() * kRows);
}

void BM_ProbeLossAutograd(benchmark::State& state) {
  matvae_bench::setup(5, state.range(1));
  const Inputs in = inputs(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(autograd_loss(in, 1e-3).first.data_ptr());
  state.SetItemsProcessed(state.iterations() * kRows);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{2, 64}, matvae_bench::kThreads})->ArgNames({"m", "threads"});
}

}  // namespace

BENCHMARK(BM_ProbeLoss)->Apply(args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProbeLossAutograd)->Apply(args)->Unit(benchmark::kMicrosecond);
