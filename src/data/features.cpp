// Loading feature folders; see features.h.
#include "matvae/data/features.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "matvae/io/npy.h"
#include "matvae/util/error.h"

namespace matvae {
namespace fs = std::filesystem;

bool is_feature_folder(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "train.npy", ec);
}

Dataset load_feature_split(const fs::path& dir, Split split, int64_t num_classes) {
  const std::string name = split == Split::kTrain ? "train" : "test";
  const fs::path x_path = dir / (name + ".npy"), y_path = dir / (name + ".labels.npy");
  const torch::Tensor x = read_npy(x_path), y = read_npy(y_path);
  if (x.scalar_type() != torch::kFloat32 || x.dim() != 2)
    throw Error(fmt::format("{}: expected a float32 matrix [N, d], got {} of shape {}", x_path.string(),
                            c10::toString(x.scalar_type()), fmt::format("{}", fmt::join(x.sizes(), " x "))));
  if (y.scalar_type() != torch::kInt64 || y.dim() != 1)
    throw Error(fmt::format("{}: expected int64 labels [N], got {} of shape {}", y_path.string(),
                            c10::toString(y.scalar_type()), fmt::format("{}", fmt::join(y.sizes(), " x "))));
  if (x.size(0) == 0 || x.size(1) == 0) throw Error(x_path.string() + ": holds no rows or no columns");
  if (y.size(0) != x.size(0))
    throw Error(fmt::format("{}: {} labels, but {} has {} rows", y_path.string(), y.size(0), x_path.string(), x.size(0)));
  const auto bad = torch::isfinite(x).all(1).logical_not().nonzero();
  if (bad.numel() > 0)
    throw Error(fmt::format("{}: row {} holds a NaN or infinity", x_path.string(), bad[0][0].item<int64_t>()));
  const int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  if (lo < 0) throw Error(fmt::format("{}: label {} is negative", y_path.string(), lo));
  if (num_classes == 0) num_classes = hi + 1;
  if (hi >= num_classes)
    throw Error(fmt::format("{}: label {} is outside the {} declared classes", y_path.string(), hi, num_classes));
  Dataset d;
  d.images = x;
  d.labels = y;
  d.height = 1;
  d.width = x.size(1);
  d.num_classes = num_classes;
  d.features = true;
  d.source = dir.string();
  return d;
}

}  // namespace matvae
