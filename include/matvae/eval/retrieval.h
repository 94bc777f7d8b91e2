// Retrieval with Matryoshka codes: the test images query the training set (the database), an item
// is relevant when it has the query's label. Per prefix: mAP@k, precision@k and recall@k of exact
// L2 search; and funnel (adaptive) retrieval as in MRL: a short list from a small prefix over the
// whole database, re-ranked with ever larger prefixes on ever shorter lists (200 -> 100 -> ... -> k),
// which costs a fraction of exact search at the full size.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace matvae {

/// Ranking quality of `neighbours` [T, k] (database indices, best first) for queries labelled
/// query_y [T] against database labels db_y [N]:
///   precision@k = mean over queries of (relevant among the k) / k;
///   recall@k    = mean of (relevant among the k) / (relevant in the database);
///   mAP@k       = mean of AP@k = sum_{i <= k} precision@i * rel_i / min(k, relevant in the database).
struct RetrievalScores {
  int64_t k = 0;
  double map = 0, precision = 0, recall = 0;
};
RetrievalScores retrieval_scores(const torch::Tensor& neighbours, const torch::Tensor& db_y,
                                 const torch::Tensor& query_y);

/// The same by a double loop over every query and database item in float64 (ties to the lower
/// index): the definition, for tests. db: [N, m], queries: [T, m].
RetrievalScores retrieval_scores_reference(const torch::Tensor& db, const torch::Tensor& db_y,
                                           const torch::Tensor& queries, const torch::Tensor& query_y, int64_t k);

/// One stage of a funnel: rank the current candidates by the prefix of size m, keep the best `keep`.
struct FunnelStage {
  int64_t m = 0;
  int64_t keep = 0;
};

/// The funnel's result list per query: stage 0 searches the whole database with db[:, :m_0]; each
/// later stage re-ranks the previous stage's list with its m (by distance, then by the lower index).
/// db: [N, D], queries: [T, D] -> [T, last keep] database indices, best first.
torch::Tensor funnel_search(const torch::Tensor& db, const torch::Tensor& queries, const std::vector<FunnelStage>& stages);

/// One later stage of a funnel: each query's candidates list [T, have] (database indices) ranked by
/// the exact float64 distance at prefix m (then by the lower index), the best `keep` -> [T, keep].
torch::Tensor rerank(const torch::Tensor& db, const torch::Tensor& queries, const torch::Tensor& list, int64_t m,
                     int64_t keep);

/// The same in tensor operations (the candidates gathered to [T, have, m], sorted by index, then
/// stably by distance): the plain path rerank is tested and benchmarked against. Memory grows as
/// T * have * m doubles, several times over.
torch::Tensor rerank_plain(const torch::Tensor& db, const torch::Tensor& queries, const torch::Tensor& list, int64_t m,
                           int64_t keep);

/// Distance computations' floating-point operations per query, in millions: 2 * N * m for the first
/// stage (a multiply-add per coordinate and item), then 2 * (previous keep) * m per stage. Exact search
/// at m is the one-stage funnel.
double funnel_mflops(int64_t database, const std::vector<FunnelStage>& stages);

/// MRL's cascade over a nesting list from `first_m` on: short lists 200, 100, 50, ... halving per
/// stage, the last stage keeping `k`. E.g. nesting 2..64, first_m 8, k 10: (8, 200), (16, 100),
/// (32, 50), (64, 10).
std::vector<FunnelStage> default_funnel(const std::vector<int64_t>& nesting, int64_t first_m, int64_t k,
                                        int64_t database);

}  // namespace matvae
