// The Bernoulli reconstruction loss of every prefix, forward and backward, at a training step's
// shapes (6 prefixes of N images of 784 pixels): the fused kernel (bernoulli_nll_prefixes) against
// the plain ATen path the objective used before it (binary_cross_entropy_with_logits over the
// target expanded to [S * N, P]).
#include "bench_check.h"
#include "matvae/losses/bernoulli_prefixes.h"

namespace {
constexpr int64_t kPrefixes = 6, kPixels = 784;

/// Logits as a trained decoder gives them (a few units either side of 0), MNIST-like intensities
/// (mostly 0, some 1, the rest between).
std::pair<torch::Tensor, torch::Tensor> batch(int64_t n) {
  const auto logits = (torch::randn({kPrefixes, n, kPixels}) * 4.0).requires_grad_(true);
  const auto u = torch::rand({n, kPixels});
  const auto x = torch::where(u < 0.6, torch::zeros_like(u), torch::where(u < 0.8, torch::ones_like(u), u));
  return {logits, x};
}

/// The loss's value and its gradient, as the objective takes them (a mean over images per prefix).
template <class Loss>
std::pair<torch::Tensor, torch::Tensor> value_and_grad(Loss loss, const torch::Tensor& logits, const torch::Tensor& x) {
  const auto l = logits.detach().clone().requires_grad_(true);
  const auto v = loss(l, x);
  v.mean(1).sum().backward();
  return {v.detach(), l.grad()};
}

template <class Loss>
void run(benchmark::State& state, Loss loss) {
  matvae_bench::setup(1, state.range(1));
  const auto [logits, x] = batch(state.range(0));
  const auto [fused, fused_grad] = value_and_grad(matvae::bernoulli_nll_prefixes, logits, x);
  const auto [plain, plain_grad] = value_and_grad(matvae::bernoulli_nll_prefixes_plain, logits, x);
  // Row sums of ~800 pixels are a few hundred nats: float rounding is ~1e-4 of them.
  if (!matvae_bench::checked(state, fused, plain, 1e-3, "Bernoulli loss") ||
      !matvae_bench::checked(state, fused_grad, plain_grad, 1e-7, "Bernoulli gradient"))
    return;
  for (auto _ : state) {
    loss(logits, x).mean(1).sum().backward();
    benchmark::DoNotOptimize(logits.grad().data_ptr());
    // As in training, where the logits are no leaf: the gradient is handed on, not accumulated.
    logits.mutable_grad().reset();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_BernoulliFused(benchmark::State& state) { run(state, matvae::bernoulli_nll_prefixes); }
void BM_BernoulliPlain(benchmark::State& state) { run(state, matvae::bernoulli_nll_prefixes_plain); }

void args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{128, 256}, matvae_bench::kThreads})->ArgNames({"batch", "threads"});
}

}  // namespace

BENCHMARK(BM_BernoulliFused)->Apply(args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BernoulliPlain)->Apply(args)->Unit(benchmark::kMicrosecond);
