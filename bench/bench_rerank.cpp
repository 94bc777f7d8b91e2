// A funnel's re-ranking stage (retrieval.h: rerank, each query's candidates' exact float64 distances
// in one pass and a partial sort) against the same in tensor operations (rerank_plain: the candidates
// gathered to [T, have, m], two sorts), at an adaptive evaluation's shapes: 200 candidates per query
// from a 60,000-item database, re-ranked at m = 16 and 64 to the next stage's 100. 2,000 queries (the
// evaluation has 10,000, where the plain path's temporaries reach a gigabyte).
#include "bench_check.h"
#include "matvae/eval/retrieval.h"

namespace {
constexpr int64_t kDatabase = 60000, kQueries = 2000, kHave = 200, kKeep = 100;

struct Inputs {
  torch::Tensor db, queries, list;
};

Inputs inputs() {
  Inputs in{torch::randn({kDatabase, 64}), torch::randn({kQueries, 64}), {}};
  in.list = torch::randint(kDatabase, {kQueries, kHave}, torch::kInt64);  // candidates in no particular order
  return in;
}

template <class F>
void run(benchmark::State& state, F f) {
  matvae_bench::setup(6, state.range(1));
  const Inputs in = inputs();
  const int64_t m = state.range(0);
  if (!matvae_bench::checked(state, matvae::rerank(in.db, in.queries, in.list, m, kKeep),
                             matvae::rerank_plain(in.db, in.queries, in.list, m, kKeep), 0, "rerank"))
    return;
  for (auto _ : state) benchmark::DoNotOptimize(f(in.db, in.queries, in.list, m, kKeep).data_ptr());
  state.SetItemsProcessed(state.iterations() * kQueries);
}

void BM_Rerank(benchmark::State& s) { run(s, matvae::rerank); }
void BM_RerankPlain(benchmark::State& s) { run(s, matvae::rerank_plain); }

void args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{16, 64}, matvae_bench::kThreads})->ArgNames({"m", "threads"});
}

}  // namespace

BENCHMARK(BM_Rerank)->Apply(args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RerankPlain)->Apply(args)->Unit(benchmark::kMillisecond);
