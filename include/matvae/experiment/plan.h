// The experiment's plan: which models it trains and which evaluations it runs on them, each a Task
// with its cache file. Planning reads nothing from disk and trains nothing; schedule.h runs the plan.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "matvae/data/dataset.h"
#include "matvae/experiment/catalogue.h"
#include "matvae/experiment/tuning.h"
#include "matvae/train/config.h"

namespace matvae {

/// One model to train. Its run folder is named by its settings' hash, so that the same model is
/// trained once however many rows use it, and found again by a rerun. A model may grow out of
/// another: warm-started from its weights (config.init_from names it) or, for a longer run of the
/// same settings, extended from its resume state.
struct ModelJob {
  std::string dataset;
  TrainConfig config;  // resolved
  std::filesystem::path dir;
  std::shared_ptr<const ModelJob> source;  // the run it grows out of (trained first, on the same worker)
  bool extends_source = false;             // a copy of `source`'s run folder, extended to config.epochs
};

/// How a task measures codes (eval/code_metrics.h).
enum class EvalKind {
  kPrefixes,   // the model's own prefixes z[:m], m in its nesting list
  kTruncated,  // a model trained without MRL, z[:m] zero-padded to D
  kCodePca,    // the model's full codes reduced to m by PCA fitted on its training codes
  kPixelPca,   // no model: PCA of the pixels
  kAdaptive,   // the Matryoshka model's funnel retrieval and classification cascade (under m = D)
};

/// One evaluation for one row: of a model, trained first unless its run folder holds it, or of the
/// pixels (kPixelPca: no model, job.dir empty).
struct Task {
  std::string dataset, row;
  std::string family, candidate;  // tuning tasks only: the family and candidate measured
  uint64_t seed = 0;
  ModelJob job;
  EvalKind kind = EvalKind::kPrefixes;
  const TrainTest* data = nullptr;  // the codes' train and test sets (the test set, or a validation split)
  std::filesystem::path cache;      // the evaluation's cache file
  std::vector<int64_t> dims;
  // Filled by the schedule:
  nlohmann::ordered_json result;     // per m; null if interrupted
  std::set<std::string> evaluated_by;  // the builds that computed `result`
};

/// What evaluations measure and on how much data, and its short hash, which cache file names carry
/// so that a change of either is never served a stale number.
struct EvalSettings {
  nlohmann::ordered_json json;
  std::string tag;
};
EvalSettings eval_settings(const ExperimentProfile& profile);

struct PlanContext;
/// The settings every model of a data set and profile shares.
TrainConfig base_config(const PlanContext& ctx, uint64_t seed);
/// Resolves `config` and names its run folder under runs/<dataset>/.
ModelJob make_job(const std::string& dataset, TrainConfig config, const std::filesystem::path& runs);

/// The epochs at which one Matryoshka model of `mrl` costs as much compute as the separately trained
/// models of the nesting list together, each trained `mrl.epochs` (forward multiply-adds per image,
/// models/vae.h), rounded up.
int64_t compute_matched_epochs(const TrainConfig& mrl, int64_t pixels);

/// The rows the test evaluations use: seeded random subsets of train and test of the profile's
/// sizes (a split may be sorted by class, so never its first rows).
TrainTest evaluation_data(const TrainTest& full, const ExperimentProfile& profile);

/// Where the attempts are measured: the last tenth of train, which no attempt model (nor its
/// reference) trains on. The probe and k-NN fit on codes of the other nine tenths.
struct ValidationSplit {
  TrainTest data;
  int64_t fit_rows = 0;     // train rows [0, fit_rows) may be trained on
  int64_t train_limit = 0;  // the attempt models' `limit`
};
ValidationSplit validation_split(const Dataset& train, const ExperimentProfile& profile);

/// What planning one data set needs.
struct PlanContext {
  std::string dataset;
  std::filesystem::path data_dir, runs;
  int64_t pixels = 0;
  int64_t classes = 0;    // counted from the labels
  bool features = false;  // feature rows, trained with the normal likelihood
  ExperimentProfile profile;
  std::set<std::string> rows;
  std::vector<int64_t> dims;
  int64_t job_threads = 1;
  std::string eval_tag;
  bool all_variants = false;  // --attempts: the mrl-mmd family tries every variant, not its few
};

/// The tuning of one data set: every candidate of every family the rows use, trained with `seed`
/// on the validation split's training rows for the profile's tuning epochs, measured on its
/// validation rows (judge_tuning chooses).
std::vector<Task> plan_tuning(const PlanContext& ctx, uint64_t seed, const ValidationSplit& validation);

/// Every requested row's tasks for one data set and seed, measured on `data` (the test set), with
/// the settings `choice` names. Returns the Matryoshka model's job (for its figures and training time).
ModelJob plan_seed(const PlanContext& ctx, uint64_t seed, const Choice& choice, const TrainTest& data,
                   std::vector<Task>& tasks);

}  // namespace matvae
