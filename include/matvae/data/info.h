// Summary statistics of a data folder, as printed by `matvae data info`.
#pragma once

#include <string>

#include "matvae/data/dataset.h"

namespace matvae {

struct SplitStats {
  int64_t count = 0;
  int64_t height = 0, width = 0;
  std::vector<int64_t> class_counts;  // [num_classes]
  double pixel_mean = 0, pixel_std = 0;  // over all pixels, intensities in [0, 1]
};

SplitStats split_stats(const Dataset& data);

/// A human-readable report of both splits (counts, size, class histogram, pixel mean and std).
std::string describe(const TrainTest& data, const std::string& dir);

}  // namespace matvae
