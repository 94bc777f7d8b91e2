// The sections of REPORT.md, each a function of results.json (and of the figures beside it): the
// header, every data set's tables, verdicts, times and plots, the tuning appendix and the runs.
// Private to src/report.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "matvae/report/stats.h"

namespace matvae::report {

using json = nlohmann::ordered_json;

/// What every section reads: the document and what the run had.
struct Page {
  const json& doc;
  std::vector<std::string> rows;  // in the catalogue's order
  std::vector<int64_t> dims;
  std::filesystem::path out_dir;
};

/// results[dataset][row][m], or null.
const json* cell(const json& doc, const std::string& dataset, const std::string& row, int64_t m);
std::string pretty_dataset(const std::string& dataset);
std::string row_title(const json& doc, const std::string& row);
std::string format_stat(const Stat& s, int digits);

std::string header_section(const Page& page);
std::string dataset_section(const Page& page, const std::string& dataset);
/// The paired comparisons of one data set (the verdict): MRL against the separately trained models.
std::string verdict_section(const Page& page, const std::string& dataset);
/// Retrieval against its cost and the classification cascade, from the Matryoshka model's adaptive record.
std::string adaptive_section(const Page& page, const std::string& dataset);
std::string tuning_appendix(const Page& page);
std::string runs_section(const Page& page);

}  // namespace matvae::report
