// The statistics the report gives beside every number: mean and standard deviation over seeds, and
// for a comparison of two rows the difference paired by seed with its 95% t interval, whose sign
// calls the comparison a win, a tie or a loss.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace matvae {

/// Mean and sample standard deviation of one metric over the seeds of one cell.
struct Stat {
  double mean = NAN, std = NAN;
  int n = 0;
};
/// per_seed: {"<seed>": {metric: value, ...}, ...} (one cell of results.json).
Stat stat_of(const nlohmann::ordered_json& per_seed, const std::string& metric);

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (df >= 1).
double t_quantile_975(int df);

/// a - b over the seeds both cells have, as a mean and the half-width of its 95% t interval
/// (NaN with fewer than two seeds).
struct PairedDifference {
  double mean = NAN, half_width = NAN;
  int n = 0;
  double lower() const { return mean - half_width; }
  double upper() const { return mean + half_width; }
};
PairedDifference paired_difference(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                                   const std::string& metric);

enum class Verdict { kWin, kTie, kLoss, kUndecided };
/// For a's row: a win if the whole interval lies on the better side of 0 (above it, or below it
/// when lower is better), a loss if on the worse side, a tie if it holds 0; undecided with fewer
/// than two paired seeds.
Verdict verdict_of(const PairedDifference& d, bool higher_is_better);
std::string to_string(Verdict v);

}  // namespace matvae
