// What the comparison experiment can run: its rows (docs/design.md, "The rows") and its profiles
// (how long and how large everything is).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "matvae/train/config.h"

namespace matvae {

/// The rows of the comparison, in report order.
const std::vector<std::string>& experiment_rows();
/// A row's one-line description for the report (written into results.json with it).
std::string row_title(const std::string& row);

/// A setting fixed by the profile instead of tuned: `family`'s candidate `candidate` on `dataset`
/// ("" = any) at prefix size `m` (0 = every m).
struct FixedChoice {
  std::string dataset;
  std::string family;
  int64_t m = 0;
  std::string candidate;
};

/// What a profile sets: training length and size of everything.
struct ExperimentProfile {
  int64_t epochs = 0;
  LrSchedule lr_schedule = LrSchedule::kConstant;  // every model's learning rate over its epochs
  int64_t train_limit = 0;             // images the models train on (0 = all); evaluation uses all
  int64_t latent = 64;
  std::vector<int64_t> hidden;
  std::vector<uint64_t> seeds;
  int64_t eval_train_limit = 0;        // training codes the probe and k-NN use (0 = all)
  int64_t eval_test_limit = 0;         // test codes evaluated (0 = all)
  std::string mrl_variant = "naive";   // the mrl-mmd row's variant when nothing is tuned
  /// Other families' candidates when nothing is tuned (absent: the family's first).
  std::vector<FixedChoice> choices;
  std::vector<std::string> rows;       // the rows run unless --rows says otherwise (empty = every row)
  bool tune = false;                   // every tuned row chooses its settings on validation data
  int64_t tune_epochs = 0;             // the candidates' epochs (0 = epochs)
};
/// "quick", "full" or "tiny" (for tests); anything else throws UsageError.
ExperimentProfile experiment_profile(const std::string& name);

}  // namespace matvae
