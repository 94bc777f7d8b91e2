// Per-split statistics and their text rendering.
#include "matvae/data/info.h"

#include <fmt/format.h>

namespace matvae {

SplitStats split_stats(const Dataset& data) {
  SplitStats s;
  s.count = data.size();
  s.height = data.height;
  s.width = data.width;
  const auto counts = torch::bincount(data.labels, {}, data.num_classes);
  s.class_counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  // float64 accumulation: 47M float32 pixels would lose digits in a float32 sum.
  const auto px = data.images.to(torch::kFloat64);
  s.pixel_mean = px.mean().item<double>();
  s.pixel_std = px.std(/*unbiased=*/false).item<double>();
  return s;
}

std::string describe(const TrainTest& data, const std::string& dir) {
  std::string out = fmt::format("data folder: {}\n", dir);
  const std::pair<const char*, const Dataset*> splits[] = {{"train", &data.train}, {"test", &data.test}};
  for (const auto& [name, ds] : splits) {
    const SplitStats s = split_stats(*ds);
    out += fmt::format("{:<5}  {} images of {}x{} ({} pixels), {} classes\n", name, s.count, s.height, s.width,
                       s.height * s.width, s.class_counts.size());
    out += fmt::format("       pixel mean {:.4f}  std {:.4f}\n", s.pixel_mean, s.pixel_std);
    out += "       classes:";
    for (size_t c = 0; c < s.class_counts.size(); ++c) out += fmt::format(" {}:{}", c, s.class_counts[c]);
    out += "\n";
  }
  return out;
}

}  // namespace matvae
