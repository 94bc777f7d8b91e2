// REPORT.md and its plots, generated entirely from a results.json: nothing typed by hand.
#pragma once

#include <filesystem>
#include <string>

namespace matvae {

/// Reads `results_json` and writes REPORT.md plus probe_<dataset>.svg, knn1_<dataset>.svg and
/// recon_<dataset>.svg into `out_dir`. Throws Error naming the file if it is missing or malformed.
void write_report(const std::filesystem::path& results_json, const std::filesystem::path& out_dir);

}  // namespace matvae
