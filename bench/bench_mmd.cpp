// MMD^2 of every Matryoshka prefix at once, forward and backward, at a training batch's shapes:
// the fused pair loop (loss_mmd_prefixes on CPU float32), the same in ATen operations
// (loss_mmd_prefixes_aten: per-block distances summed over blocks), and one loss_mmd per prefix.
#include "bench_check.h"
#include "matvae/losses/mmd.h"

namespace {
const std::vector<int64_t> kNesting = {2, 4, 8, 16, 32, 64};

std::pair<torch::Tensor, torch::Tensor> batch(int64_t n) {
  return {torch::randn({n, 64}).requires_grad_(true), torch::randn({n, 64})};
}

torch::Tensor per_prefix(const torch::Tensor& x, const torch::Tensor& y) {
  std::vector<torch::Tensor> v;
  for (int64_t m : kNesting) v.push_back(matvae::loss_mmd(x.narrow(1, 0, m), y.narrow(1, 0, m)));
  return torch::stack(v);
}

void BM_MmdAllPrefixes(benchmark::State& state) {
  matvae_bench::setup(1, state.range(1));
  const auto [x, y] = batch(state.range(0));
  if (!matvae_bench::checked(state, matvae::loss_mmd_prefixes(x, y, kNesting), per_prefix(x, y), 1e-5, "MMD"))
    return;
  for (auto _ : state) {
    const auto v = matvae::loss_mmd_prefixes(x, y, kNesting);
    v.sum().backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_MmdAllPrefixesAten(benchmark::State& state) {
  matvae_bench::setup(1, state.range(1));
  const auto [x, y] = batch(state.range(0));
  for (auto _ : state) {
    const auto v = matvae::loss_mmd_prefixes_aten(x, y, kNesting);
    v.sum().backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_MmdOnePerPrefix(benchmark::State& state) {
  matvae_bench::setup(1, state.range(1));
  const auto [x, y] = batch(state.range(0));
  for (auto _ : state) {
    per_prefix(x, y).sum().backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{128, 256}, matvae_bench::kThreads})->ArgNames({"batch", "threads"});
}

}  // namespace

BENCHMARK(BM_MmdAllPrefixes)->Apply(args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmdAllPrefixesAten)->Apply(args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmdOnePerPrefix)->Apply(args)->Unit(benchmark::kMicrosecond);
