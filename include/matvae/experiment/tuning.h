// Equal tuning (docs/design.md, "Tuning"): every tuned row chooses among the same number of
// candidate settings, by the same rule, on the same validation data (the last tenth of train, which
// no candidate trains on), at the same seed and epochs. A candidate is a named edit of the row's
// base settings; a family is the candidates of one kind of model. Rows that train a model at each
// m (mmd-at-m, vae-at-m) choose at each m; the others choose one setting for every m.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "matvae/train/config.h"

namespace matvae {

struct Candidate {
  std::string name;
  std::string description;                  // one line for the report
  std::function<void(TrainConfig&)> apply;  // edits a resolved config of the family's model
  /// Starts from the full-size MMD-VAE of the same seed and data (the planner sets init_from to it)
  /// and trains half the epochs with the Matryoshka loss.
  bool warm_start = false;
};

struct Family {
  std::string name;  // mrl-mmd, mmd, vae, mrl-vae, nested-dropout, taildrop
  ModelKind model;
  bool per_m;        // a model of size m for every m; else one of size D for all of them
  std::vector<Candidate> candidates;  // the first is the untuned default
};

/// Every family, mrl-mmd first.
const std::vector<Family>& families();
/// The family named `name`; throws UsageError for an unknown name.
const Family& family(const std::string& name);
/// The family a row's models belong to ("" for pca, which trains nothing).
std::string family_of_row(const std::string& row);

/// Every Matryoshka variant there is (what --attempts tries); the mrl-mmd family holds a profile's
/// chosen few of them.
const std::vector<Candidate>& mrl_variants();
/// The candidate of `fam` named `name` (for mrl-mmd, any of mrl_variants()). Throws UsageError for
/// an unknown name.
const Candidate& candidate(const Family& fam, const std::string& name);
/// That candidate applied to `config` (resolved first and after).
void apply_candidate(const Family& fam, const std::string& name, TrainConfig& config);

// --- the rule ---------------------------------------------------------------------------------

/// What a candidate scored on validation data at one m.
struct ValidationScore {
  double probe = 0, knn1 = 0, recon = 0;
};
using ScoresByM = std::map<int64_t, ValidationScore>;

/// A candidate's regret: at every m and for each of probe, 1-NN and reconstruction, how far it is
/// behind the best candidate there, in points of accuracy and, for reconstruction, in half-nats
/// (so that 2 nats weigh as one point, the targets' exchange rate).
struct Regret {
  double worst = 0;  // the largest over m and metrics
  double mean = 0;   // their mean
};
/// One regret per candidate; every candidate must have every m of the first.
std::vector<Regret> regrets(const std::vector<ScoresByM>& candidates);
/// The index of the candidate to use: the smallest worst regret; within 0.1 of it, the smallest
/// mean; then the earlier candidate.
size_t choose_candidate(const std::vector<Regret>& regrets);

// --- what tuning chose ------------------------------------------------------------------------

/// The candidate each family uses, at each m for per-m families (m = 0 for the others).
class Choice {
 public:
  /// The family's first candidate (its default) wherever nothing was chosen.
  const std::string& of(const Family& fam, int64_t m) const;
  void set(const Family& fam, int64_t m, const std::string& name) { chosen_[{fam.name, fam.per_m ? m : 0}] = name; }
  /// For the mrl-mmd family, when nothing is tuned: the profile's variant.
  void set_default(const Family& fam, const std::string& name) { defaults_[fam.name] = name; }

 private:
  std::map<std::pair<std::string, int64_t>, std::string> chosen_;
  std::map<std::string, std::string> defaults_;
};

struct Task;
/// The tuning tasks of one data set (plan_tuning's, run), judged: results.json's record of every
/// candidate's validation numbers and regret, and the choice.
struct TuningVerdict {
  nlohmann::ordered_json record;  // {family: {per_m, candidates: {name: {...}}, regret, chosen}}
  Choice choice;
};
TuningVerdict judge_tuning(const std::vector<Task>& tasks, const std::vector<int64_t>& dims);

}  // namespace matvae
