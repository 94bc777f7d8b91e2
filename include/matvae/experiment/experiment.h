// The comparison experiment (docs/design.md): for each data set, seed and prefix size m, train
// every row's models, embed train and test with mu(x), and measure the linear probe, k-NN,
// reconstruction and MMD to the prior. Trained models and their evaluations are cached in run
// folders named by a hash of their config, so a rerun skips finished work and an interrupted one
// resumes. Its stages, one file each: catalogue (rows, profiles), plan (the tasks), schedule (the
// work pool), cache (cached evaluations), tuning (candidates and the rule), results (results.json),
// figures (the Matryoshka model's pictures).
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "matvae/experiment/catalogue.h"

namespace matvae {

class RankGroup;

struct ExperimentOptions {
  std::string profile = "quick";                        // quick | full | tiny (tests)
  std::vector<std::string> datasets = {"mnist", "fashion-mnist"};
  std::vector<int64_t> dims = {};                       // default: the profile's 2, 4, ..., latent
  std::vector<uint64_t> seeds = {};                     // default: the profile's
  std::vector<std::string> rows = {};                   // default: every row
  std::filesystem::path data_root = "data";
  std::filesystem::path out = {};                       // default: results/<profile>
  int64_t threads = 0;                                  // 0 = every core
  int64_t jobs = 0;       // models trained or evaluated at once, threads/jobs threads each (0 = threads)
  int64_t epochs = 0;     // 0 = the profile's; else every model trains this many epochs
  std::string lr_schedule = "";  // "" = the profile's; else every model's: constant | cosine
  int64_t eval_train_limit = -1;  // training codes the probe and k-NN fit on: -1 = the profile's, 0 = all
  int tune = -1;          // every tuned row chooses its settings on validation data (tuning.h): 1 yes, 0 no, -1 the profile's
  bool attempts = false;  // tune, the mrl-mmd row among every Matryoshka variant (tuning.h), not the profile's few
  std::function<void(const std::string&)> log = nullptr;
  const std::atomic<bool>* stop = nullptr;              // checked between and inside models
  /// The ranks of a distributed experiment (null: this process alone). Every rank runs the same
  /// options; each model is trained and evaluated by one of them (schedule.h), and rank 0 writes
  /// the results. Its results folder may be shared by every rank or its own: a rank that does not
  /// see rank 0's folder sends it the files of every model it trains.
  RankGroup* ranks = nullptr;
};

struct ExperimentResult {
  bool interrupted = false;
  std::filesystem::path results_json, report_md;  // empty on ranks other than 0
};

/// Checks the options as run_experiment does first, without doing anything: a launcher checks
/// them once before starting the ranks. Throws UsageError naming the flag.
void check_experiment_options(const ExperimentOptions& options);

/// Runs (or resumes) the experiment and writes results.json, REPORT.md, plots and image grids
/// into options.out. Throws UsageError for bad options, Error for run-time failures.
ExperimentResult run_experiment(const ExperimentOptions& options);

}  // namespace matvae
