// Retrieval metrics and funnel search; see retrieval.h.
#include "matvae/eval/retrieval.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "matvae/eval/knn.h"

namespace matvae {
namespace {

void check_labels(const torch::Tensor& db_y, const torch::Tensor& query_y, int64_t queries) {
  TORCH_CHECK(db_y.dim() == 1 && db_y.scalar_type() == torch::kInt64, "retrieval: expected int64 database labels [N]");
  TORCH_CHECK(query_y.dim() == 1 && query_y.size(0) == queries && query_y.scalar_type() == torch::kInt64,
              "retrieval: expected int64 query labels [", queries, "], got ", query_y.sizes());
}

/// The relevant items in the database for each query: its label's count there.
torch::Tensor relevant_counts(const torch::Tensor& db_y, const torch::Tensor& query_y) {
  const int64_t classes = std::max(db_y.max().item<int64_t>(), query_y.max().item<int64_t>()) + 1;
  return torch::bincount(db_y, {}, classes).index_select(0, query_y).to(torch::kFloat64);  // [T]
}

}  // namespace

RetrievalScores retrieval_scores(const torch::Tensor& neighbours, const torch::Tensor& db_y,
                                 const torch::Tensor& query_y) {
  TORCH_CHECK(neighbours.dim() == 2 && neighbours.scalar_type() == torch::kInt64,
              "retrieval_scores: expected int64 neighbours [T, k], got ", neighbours.sizes());
  check_labels(db_y, query_y, neighbours.size(0));
  const int64_t t = neighbours.size(0), k = neighbours.size(1);
  const auto rel = db_y.index_select(0, neighbours.reshape(-1)).view({t, k}).eq(query_y.unsqueeze(1)).to(torch::kFloat64);
  const auto hits = rel.cumsum(1);                                                // [T, k]
  const auto ranks = torch::arange(1, k + 1, torch::kFloat64).unsqueeze(0);      // 1..k
  const auto relevant = relevant_counts(db_y, query_y);                           // [T]
  const auto found = hits.select(1, k - 1);
  RetrievalScores s;
  s.k = k;
  s.precision = (found / static_cast<double>(k)).mean().item<double>();
  s.recall = (found / relevant.clamp_min(1)).mean().item<double>();
  s.map = ((hits / ranks * rel).sum(1) / relevant.clamp_max(static_cast<double>(k)).clamp_min(1)).mean().item<double>();
  return s;
}

RetrievalScores retrieval_scores_reference(const torch::Tensor& db, const torch::Tensor& db_y,
                                           const torch::Tensor& queries, const torch::Tensor& query_y, int64_t k) {
  check_labels(db_y, query_y, queries.size(0));
  const auto b = db.to(torch::kFloat64).contiguous(), a = queries.to(torch::kFloat64).contiguous();
  const auto ba = b.accessor<double, 2>(), aa = a.accessor<double, 2>();
  const auto yb = db_y.contiguous(), yq = query_y.contiguous();
  const auto by = yb.accessor<int64_t, 1>(), qy = yq.accessor<int64_t, 1>();
  const int64_t n = b.size(0), t = a.size(0), m = b.size(1);
  double map = 0, precision = 0, recall = 0;
  std::vector<std::pair<double, int64_t>> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < t; ++i) {
    int64_t relevant = 0;
    for (int64_t j = 0; j < n; ++j) {
      double d = 0;
      for (int64_t c = 0; c < m; ++c) d += (aa[i][c] - ba[j][c]) * (aa[i][c] - ba[j][c]);
      order[j] = {d, j};
      relevant += by[j] == qy[i];
    }
    std::sort(order.begin(), order.end());
    double hits = 0, ap = 0;
    for (int64_t r = 0; r < k; ++r) {
      if (by[order[r].second] != qy[i]) continue;
      hits += 1;
      ap += hits / static_cast<double>(r + 1);
    }
    precision += hits / static_cast<double>(k);
    recall += relevant ? hits / static_cast<double>(relevant) : 0;
    map += ap / static_cast<double>(std::max<int64_t>(1, std::min(k, relevant)));
  }
  return {k, map / t, precision / t, recall / t};
}

torch::Tensor funnel_search(const torch::Tensor& db, const torch::Tensor& queries, const std::vector<FunnelStage>& stages) {
  TORCH_CHECK(!stages.empty(), "funnel_search: expected at least one stage");
  TORCH_CHECK(db.dim() == 2 && queries.dim() == 2 && db.size(1) == queries.size(1),
              "funnel_search: expected db [N, D] and queries [T, D], got ", db.sizes(), " and ", queries.sizes());
  for (size_t s = 0; s < stages.size(); ++s) {
    TORCH_CHECK(stages[s].m >= 1 && stages[s].m <= db.size(1), "funnel_search: stage ", s, " has m = ", stages[s].m,
                ", outside 1..", db.size(1));
    TORCH_CHECK(stages[s].keep >= 1 && stages[s].keep <= (s == 0 ? db.size(0) : stages[s - 1].keep),
                "funnel_search: stage ", s, " keeps ", stages[s].keep, ", more than it is given");
  }
  torch::NoGradGuard no_grad;
  const int64_t m0 = stages[0].m;
  auto list = knn_neighbours(db.narrow(1, 0, m0), queries.narrow(1, 0, m0), stages[0].keep);  // [T, keep]
  for (size_t s = 1; s < stages.size(); ++s) list = rerank(db, queries, list, stages[s].m, stages[s].keep);
  return list;
}

torch::Tensor rerank(const torch::Tensor& db, const torch::Tensor& queries, const torch::Tensor& list, int64_t m,
                     int64_t keep) {
  TORCH_CHECK(db.dim() == 2 && queries.dim() == 2 && db.size(1) == queries.size(1) && m >= 1 && m <= db.size(1),
              "rerank: expected db [N, D] and queries [T, D] with 1 <= m <= D, got ", db.sizes(), ", ",
              queries.sizes(), " and m = ", m);
  TORCH_CHECK(list.dim() == 2 && list.size(0) == queries.size(0) && list.scalar_type() == torch::kInt64,
              "rerank: expected an int64 list [", queries.size(0), ", have], got ", list.sizes());
  TORCH_CHECK(keep >= 1 && keep <= list.size(1), "rerank: keeps ", keep, " of a list of ", list.size(1));
  TORCH_CHECK(list.numel() == 0 || (list.min().item<int64_t>() >= 0 && list.max().item<int64_t>() < db.size(0)),
              "rerank: the list names an item outside the database of ", db.size(0));
  // Exact distances in float64, each query against its own candidates' rows: the [T, have, m]
  // gathered copies this replaces ran to a gigabyte per stage at 10,000 queries, 200 candidates, m = 64.
  const auto b = db.narrow(1, 0, m).to(torch::kFloat64).contiguous();
  const auto a = queries.narrow(1, 0, m).to(torch::kFloat64).contiguous();
  const auto candidates = list.contiguous();
  const int64_t t = list.size(0), have = list.size(1);
  auto out = torch::empty({t, keep}, torch::kInt64);
  const double* bp = b.data_ptr<double>();
  const double* ap = a.data_ptr<double>();
  const int64_t* cp = candidates.data_ptr<int64_t>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, t, 64, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<double, int64_t>> ranked(static_cast<size_t>(have));
    for (int64_t r = begin; r < end; ++r) {
      const double* q = ap + r * m;
      for (int64_t j = 0; j < have; ++j) {
        const int64_t item = cp[r * have + j];
        const double* row = bp + item * m;
        double d = 0;
        for (int64_t c = 0; c < m; ++c) d += (row[c] - q[c]) * (row[c] - q[c]);
        ranked[static_cast<size_t>(j)] = {d, item};
      }
      // By distance, then by the lower database index.
      std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end());
      for (int64_t j = 0; j < keep; ++j) op[r * keep + j] = ranked[static_cast<size_t>(j)].second;
    }
  });
  return out;
}

torch::Tensor rerank_plain(const torch::Tensor& db, const torch::Tensor& queries, const torch::Tensor& list, int64_t m,
                           int64_t keep) {
  torch::NoGradGuard no_grad;
  const int64_t t = list.size(0), have = list.size(1);
  const auto c = db.narrow(1, 0, m).to(torch::kFloat64).index_select(0, list.reshape(-1)).view({t, have, m});
  const auto d = (c - queries.narrow(1, 0, m).to(torch::kFloat64).unsqueeze(1)).square().sum(2);  // [T, have]
  const auto by_index = std::get<1>(list.sort(1));
  const auto order = std::get<1>(d.gather(1, by_index).sort(/*stable=*/true, /*dim=*/1, /*descending=*/false));
  return list.gather(1, by_index).gather(1, order).narrow(1, 0, keep).contiguous();
}

double funnel_mflops(int64_t database, const std::vector<FunnelStage>& stages) {
  double flops = 0;
  int64_t candidates = database;
  for (const auto& s : stages) {
    flops += 2.0 * static_cast<double>(candidates) * static_cast<double>(s.m);
    candidates = s.keep;
  }
  return flops / 1e6;
}

std::vector<FunnelStage> default_funnel(const std::vector<int64_t>& nesting, int64_t first_m, int64_t k,
                                        int64_t database) {
  std::vector<FunnelStage> stages;
  int64_t keep = std::min<int64_t>(200, database);
  for (const int64_t m : nesting) {
    if (m < first_m) continue;
    stages.push_back({m, std::max(keep, k)});
    keep = std::max<int64_t>(keep / 2, k);
  }
  TORCH_CHECK(!stages.empty(), "default_funnel: no prefix of the nesting list is at least ", first_m);
  stages.back().keep = std::min(k, stages.size() == 1 ? database : stages[stages.size() - 2].keep);
  return stages;
}

}  // namespace matvae
