// Exact k-NN classification (blocked products and a k-best scan per row) at the evaluation's
// shapes: 2,000 test codes against 20,000 training codes, per prefix size m. Checked against the
// float64 double loop on a slice first.
#include "bench_check.h"
#include "matvae/eval/knn.h"

namespace {

void BM_Knn(benchmark::State& state) {
  matvae_bench::setup(4, state.range(1));
  const int64_t m = state.range(0);
  // Integer-valued codes, so that both paths compute distances exactly and agree on every tie.
  const auto train = torch::randint(-8, 8, {20000, m}).to(torch::kFloat32);
  const auto labels = torch::randint(10, {20000}, torch::kInt64);
  const auto test = torch::randint(-8, 8, {2000, m}).to(torch::kFloat32);
  const auto slice = test.narrow(0, 0, 20);
  if (!matvae_bench::checked(state, matvae::knn_predict(train, labels, slice, {1, 5}),
                             matvae::knn_predict_reference(train, labels, slice, {1, 5}), 0, "k-NN"))
    return;
  for (auto _ : state) benchmark::DoNotOptimize(matvae::knn_predict(train, labels, test, {1, 5}).data_ptr());
  state.SetItemsProcessed(state.iterations() * test.size(0));  // queries
}

}  // namespace

BENCHMARK(BM_Knn)
    ->ArgsProduct({{2, 16, 64}, matvae_bench::kThreads})
    ->ArgNames({"m", "threads"})
    ->Unit(benchmark::kMillisecond);
