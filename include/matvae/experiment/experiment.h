// The comparison experiment of design.md: for each data set, seed and prefix size m, train every
// row's models, embed train and test with mu(x), and measure the linear probe, k-NN, reconstruction
// and MMD to the prior. Trained models and their evaluations are cached in run folders named by a
// hash of their config, so a rerun skips finished work and an interrupted one resumes.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace matvae {

/// The rows of the comparison, in report order.
const std::vector<std::string>& experiment_rows();
/// A row's one-line description for the report.
std::string row_title(const std::string& row);

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
  bool attempts = false;  // train every MRL variant (attempts.h), choose one on validation, report all
  std::function<void(const std::string&)> log = nullptr;
  const std::atomic<bool>* stop = nullptr;              // checked between and inside models
};

/// What a profile sets: training length and size of everything.
struct ExperimentProfile {
  int64_t epochs = 0;
  int64_t train_limit = 0;             // images the models train on (0 = all); evaluation uses all
  int64_t latent = 64;
  std::vector<int64_t> hidden;
  std::vector<uint64_t> seeds;
  int64_t eval_train_limit = 0;        // training codes the probe and k-NN use (0 = all)
  int64_t eval_test_limit = 0;         // test codes evaluated (0 = all)
  std::string mrl_variant = "naive";   // the mrl-mmd row's variant when attempts do not choose one
};
ExperimentProfile experiment_profile(const std::string& name);

struct ExperimentResult {
  bool interrupted = false;
  std::filesystem::path results_json, report_md;
};

/// Runs (or resumes) the experiment and writes results.json, REPORT.md, plots and image grids
/// into options.out. Throws UsageError for bad options, Error for run-time failures.
ExperimentResult run_experiment(const ExperimentOptions& options);

}  // namespace matvae
