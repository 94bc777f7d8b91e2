// The experiment's cached evaluations: one file per evaluation in its model's run folder (or, for
// the pixel PCA, beside them), keyed by prefix size m, each m with the build that computed it, in
// the integrity envelope of util/checked_file.h. A rerun computes only the m it lacks.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace matvae {

/// The evaluation in `file` at `dims`: the cached m as they are, the missing ones from
/// `compute(missing)` (then cached). The builds that computed the returned m are added to `by`.
/// Null if `compute` stopped early (the m it did are cached). Throws Error for a damaged file.
nlohmann::ordered_json cached_eval(const std::filesystem::path& file, const std::vector<int64_t>& dims,
                                   const std::function<nlohmann::ordered_json(const std::vector<int64_t>&)>& compute,
                                   std::set<std::string>* by);

/// Whether `file` holds the evaluation at every m of `dims` (false for a missing or damaged file).
bool cache_complete(const std::filesystem::path& file, const std::vector<int64_t>& dims);

/// What a killed experiment may have left half-written: temporaries of its results, report and
/// pictures in `out`, and of cached evaluations and run files under out/runs/<dataset>.
void remove_stale_outputs(const std::filesystem::path& out, const std::vector<std::string>& datasets);

}  // namespace matvae
