// REPORT.md and its plots, generated entirely from a results.json: nothing typed by hand.
#pragma once

#include <filesystem>
#include <string>

namespace matvae {

/// Reads `results_json` and writes REPORT.md plus probe_<dataset>.svg, knn1_<dataset>.svg and
/// recon_<dataset>.svg into `out_dir`. Throws Error naming the file if it is missing or malformed.
void write_report(const std::filesystem::path& results_json, const std::filesystem::path& out_dir);

/// The verdict word for one comparison: "wins", "ties" or "loses" (a tie is a difference within
/// the larger of the two standard deviations).
std::string compare_verdict(double mean_a, double std_a, double mean_b, double std_b);

}  // namespace matvae
