// Adaptive retrieval and classification as JSON; see adaptive.h.
#include "matvae/eval/adaptive.h"

#include "matvae/eval/cascade.h"
#include "matvae/eval/retrieval.h"

namespace matvae {
namespace {

nlohmann::ordered_json scores_json(const RetrievalScores& s, double mflops) {
  return {{"map", s.map}, {"precision", s.precision}, {"recall", s.recall}, {"mflops", mflops}};
}

}  // namespace

nlohmann::ordered_json adaptive_retrieval(const torch::Tensor& db, const torch::Tensor& db_y, const torch::Tensor& queries,
                                          const torch::Tensor& query_y, const std::vector<int64_t>& nesting, int64_t k,
                                          const std::vector<torch::Tensor>& exact_lists) {
  TORCH_CHECK(exact_lists.size() == nesting.size(), "adaptive_retrieval: expected one exact list per prefix size (",
              nesting.size(), "), got ", exact_lists.size());
  torch::NoGradGuard no_grad;
  const int64_t n = db.size(0);
  nlohmann::ordered_json out;
  out["k"] = k;
  out["database"] = n;
  for (size_t i = 0; i < nesting.size(); ++i) {
    const int64_t m = nesting[i];
    const std::vector<FunnelStage> exact = {{m, k}};
    const auto& list = exact_lists[i];
    TORCH_CHECK(list.dim() == 2 && list.size(0) == queries.size(0) && list.size(1) == k,
                "adaptive_retrieval: expected an exact list [", queries.size(0), ", ", k, "] at m = ", m, ", got ",
                list.sizes());
    out["exact"][std::to_string(m)] = scores_json(retrieval_scores(list, db_y, query_y), funnel_mflops(n, exact));
  }
  out["funnels"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i + 1 < nesting.size(); ++i) {
    const auto stages = default_funnel(nesting, nesting[i], k, n);
    auto f = scores_json(retrieval_scores(funnel_search(db, queries, stages), db_y, query_y), funnel_mflops(n, stages));
    f["start"] = nesting[i];
    for (const auto& s : stages) f["stages"].push_back({{"m", s.m}, {"keep", s.keep}});
    out["funnels"].push_back(f);
  }
  return out;
}

nlohmann::ordered_json adaptive_classification_json(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                                    const torch::Tensor& test_x, const torch::Tensor& test_y,
                                                    const std::vector<int64_t>& nesting,
                                                    const std::vector<const ProbeResult*>& probes, uint64_t seed) {
  const CascadeResult r = adaptive_classification(train_x, train_y, test_x, test_y, nesting, probes, seed);
  nlohmann::ordered_json out;
  out["full_validation_accuracy"] = r.full_validation_accuracy;
  out["full_test_accuracy"] = r.full_test_accuracy;
  for (const auto& p : r.points)
    out["points"].push_back({{"threshold", p.threshold},
                             {"validation_accuracy", p.validation_accuracy},
                             {"validation_dims", p.validation_dims},
                             {"test_accuracy", p.test_accuracy},
                             {"test_dims", p.test_dims}});
  out["chosen"] = r.chosen;
  return out;
}

}  // namespace matvae
