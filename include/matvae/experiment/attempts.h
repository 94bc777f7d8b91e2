// Attempts at closing the gap between the Matryoshka model's small prefixes and MMD-VAEs trained at
// that size: named changes to the MRL-MMD-VAE's config (the literature's usual levers), and the rule
// that picks one from validation numbers. The experiment trains each variant, measures it on a
// validation part of train (never on test) and records all of them in the report's appendix.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "matvae/train/config.h"

namespace matvae {

struct MrlVariant {
  std::string name;
  std::string description;                    // one line for the report
  std::function<void(TrainConfig&)> apply;    // edits an MRL-MMD config whose nesting is resolved
};

/// Every variant, "naive" (the plain Matryoshka loss) first.
const std::vector<MrlVariant>& mrl_variants();

/// Applies the named variant to `config` (resolving it first, as variants read the nesting list).
/// Throws UsageError for an unknown name.
void apply_mrl_variant(const std::string& name, TrainConfig& config);

/// Validation probe accuracy per prefix size, for the reference (MMD-VAEs trained at each m) and
/// for one variant.
using AccuracyByM = std::map<int64_t, double>;

struct VariantScore {
  double worst_gap = 0;  // max over m of reference - variant (positive: the variant is worse)
  double mean_gap = 0;
  double mean_accuracy = 0;
};
/// Compares a variant with the reference at every m the reference has; the variant must have them all.
VariantScore score_variant(const AccuracyByM& reference, const AccuracyByM& variant);

/// The variant to use: the smallest worst gap; within 0.001 of it, the higher mean accuracy; then
/// the earlier in mrl_variants() order. `scores` is keyed by name and must not be empty.
std::string choose_variant(const std::map<std::string, VariantScore>& scores);

struct Task;
struct ValidationSplit;

/// The attempts of one data set, judged: results.json's record of every reference and variant
/// (validation metrics, runs, gaps) and the variant chosen.
struct AttemptsVerdict {
  nlohmann::ordered_json record;
  std::string chosen;
};
/// `trials` as plan_attempts made them and the schedule filled them: the references at `dims`, then
/// every variant. `train_rows`: the size of the full training set.
AttemptsVerdict judge_attempts(const std::vector<Task>& trials, const std::vector<int64_t>& dims, uint64_t seed,
                               const ValidationSplit& validation, int64_t train_rows);

}  // namespace matvae
