// Exact k-NN classification (blocked products and a k-best scan per row) at the evaluation's
// shapes: 2,000 test codes against 20,000 training codes, per prefix size m. Checked against the
// float64 double loop on a slice first. And the neighbour lists alone at retrieval's shapes: a
// funnel's first short list (k = 200 at m = 2 and 8) and exact search's (k = 10 at m = 64), 2,000
// queries against a 60,000-item database, checked on integer codes against a full sort of the
// distances. Beside them, BM_KnnNeighboursTopk: the plain ATen way, blocks of distances through
// addmm and a sorted topk (its order of exact ties is arbitrary, so it is not checked here).
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

void BM_KnnNeighbours(benchmark::State& state) {
  matvae_bench::setup(4, state.range(2));
  const int64_t m = state.range(0), k = state.range(1);
  const auto db = torch::randn({60000, m}), queries = torch::randn({2000, m});
  // Checked on integer codes (exact distances both ways, many ties): the plain path sorts every
  // distance of a few queries by (distance, index).
  const auto int_db = torch::randint(-8, 8, {60000, m}).to(torch::kFloat32);
  const auto int_q = torch::randint(-8, 8, {8, m}).to(torch::kFloat32);
  const auto d = (int_q.unsqueeze(1) - int_db.unsqueeze(0)).square().sum(2);  // [8, N]
  const auto plain = std::get<1>(d.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false)).narrow(1, 0, k);
  if (!matvae_bench::checked(state, matvae::knn_neighbours(int_db, int_q, k), plain, 0, "k-NN neighbour lists"))
    return;
  for (auto _ : state) benchmark::DoNotOptimize(matvae::knn_neighbours(db, queries, k).data_ptr());
  state.SetItemsProcessed(state.iterations() * queries.size(0));  // queries
}

void BM_KnnNeighboursTopk(benchmark::State& state) {
  matvae_bench::setup(4, state.range(2));
  const int64_t m = state.range(0), k = state.range(1);
  const auto db = torch::randn({60000, m}), queries = torch::randn({2000, m});
  const auto bt = db.t().contiguous(), b_sq = db.square().sum(1).unsqueeze(0);
  for (auto _ : state) {
    std::vector<torch::Tensor> lists;
    for (int64_t start = 0; start < queries.size(0); start += 128) {
      const auto d = torch::addmm(b_sq, queries.narrow(0, start, std::min<int64_t>(128, queries.size(0) - start)), bt,
                                  /*beta=*/1, /*alpha=*/-2);
      lists.push_back(std::get<1>(d.topk(k, 1, /*largest=*/false, /*sorted=*/true)));
    }
    benchmark::DoNotOptimize(torch::cat(lists).data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * queries.size(0));  // queries
}

// {m, k}: a funnel's first short list at m = 2 and 8, the evaluation's lists (k = 10: 1-NN, 5-NN
// and mAP@10) at m = 2, 8 and 64.
void neighbours_args(benchmark::internal::Benchmark* b) {
  for (const auto& [m, k] : std::vector<std::pair<int64_t, int64_t>>{{2, 200}, {8, 200}, {2, 10}, {8, 10}, {64, 10}})
    for (int64_t t : matvae_bench::kThreads) b->Args({m, k, t});
  b->ArgNames({"m", "k", "threads"});
}

}  // namespace

BENCHMARK(BM_KnnNeighbours)->Apply(neighbours_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KnnNeighboursTopk)->Apply(neighbours_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Knn)
    ->ArgsProduct({{2, 16, 64}, matvae_bench::kThreads})
    ->ArgNames({"m", "threads"})
    ->Unit(benchmark::kMillisecond);
