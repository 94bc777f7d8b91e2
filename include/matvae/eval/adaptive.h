// The adaptive uses of a Matryoshka code, as JSON for results and reports: retrieval at every
// prefix and through funnels (eval/retrieval.h), and classification by a cascade of per-prefix
// probes (eval/cascade.h).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "matvae/eval/linear_probe.h"

namespace matvae {

/// db: [N, D] training codes (the database) with labels db_y, queries: [T, D] with query_y. For each
/// m of `nesting`: exact search scored at k ({"exact": {"<m>": {map, precision, recall, mflops}}}); and
/// the funnel starting at each m before the last ({"funnels": [{start, stages, map, ..., mflops}]}).
/// exact_lists: exact search's lists, one [T, k] per m (knn_neighbours of the prefixes), as the
/// per-prefix evaluation makes them.
nlohmann::ordered_json adaptive_retrieval(const torch::Tensor& db, const torch::Tensor& db_y, const torch::Tensor& queries,
                                          const torch::Tensor& query_y, const std::vector<int64_t>& nesting, int64_t k,
                                          const std::vector<torch::Tensor>& exact_lists);

/// The cascade over `nesting` as JSON: every threshold's validation and test accuracy and expected
/// dimensions, the full code's accuracy, and the chosen threshold. probes: one per m, fitted on these
/// codes with `seed` (cascade.h).
nlohmann::ordered_json adaptive_classification_json(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                                    const torch::Tensor& test_x, const torch::Tensor& test_y,
                                                    const std::vector<int64_t>& nesting,
                                                    const std::vector<const ProbeResult*>& probes, uint64_t seed);

}  // namespace matvae
