// The Matryoshka model's pictures for the report: its reconstructions and samples per prefix
// (copied from its run folder) and a scatter of its m = 2 test codes coloured by class.
#pragma once

#include <filesystem>
#include <string>

#include "matvae/data/dataset.h"

namespace matvae {

/// Writes recon_<dataset>.png, samples_<dataset>.png and scatter_m2_<dataset>.svg into `out` from
/// the finished run in `run_dir`, its codes taken of data.test.
void write_mrl_figures(const std::filesystem::path& run_dir, const TrainTest& data, const std::filesystem::path& out,
                       const std::string& dataset);

}  // namespace matvae
