// Loading IDX folders into in-memory Datasets, and views and subsets of them.
#include "matvae/data/dataset.h"

#include <algorithm>

#include "matvae/data/features.h"
#include "matvae/data/idx.h"
#include "matvae/util/error.h"

namespace matvae {
namespace fs = std::filesystem;

Dataset Dataset::head(int64_t n) const {
  Dataset out = *this;
  if (n >= 0 && n < size()) {
    out.images = images.narrow(0, 0, n);
    out.labels = labels.narrow(0, 0, n);
  }
  return out;
}

Dataset Dataset::tail(int64_t n) const {
  Dataset out = *this;
  if (n >= 0 && n < size()) {
    out.images = images.narrow(0, size() - n, n);
    out.labels = labels.narrow(0, size() - n, n);
  }
  return out;
}

Dataset random_subset(const Dataset& data, int64_t n, uint64_t seed) {
  if (n <= 0 || n >= data.size()) return data;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto order = torch::randperm(data.size(), gen, torch::TensorOptions().dtype(torch::kInt64));
  const auto idx = std::get<0>(order.narrow(0, 0, n).sort());
  Dataset out = data;
  out.images = data.images.index_select(0, idx);
  out.labels = data.labels.index_select(0, idx);
  return out;
}

fs::path idx_path(const fs::path& dir, Split split, bool labels) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string name = prefix + (labels ? "-labels-idx1-ubyte" : "-images-idx3-ubyte");
  std::error_code ec;
  if (fs::exists(dir / name, ec)) return dir / name;
  if (fs::exists(dir / (name + ".gz"), ec)) return dir / (name + ".gz");
  return dir / name;  // missing: the reader names it
}

Dataset make_dataset(const IdxArray& images, const IdxArray& labels, int64_t num_classes,
                     const std::string& images_name, const std::string& labels_name) {
  if (images.dims.size() != 3) throw Error(images_name + ": expected 3 dimensions [N, H, W]");
  if (labels.dims.size() != 1) throw Error(labels_name + ": expected 1 dimension [N]");
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n)
    throw Error(labels_name + ": " + std::to_string(labels.dims[0]) + " labels, but " + images_name + " has " +
                std::to_string(n) + " images");
  if (n == 0) throw Error(images_name + ": holds no images");
  if (num_classes == 0) num_classes = *std::max_element(labels.data.begin(), labels.data.end()) + 1;
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= num_classes)
      throw Error(labels_name + ": label " + std::to_string(labels.data[i]) + " at index " + std::to_string(i) +
                  " is outside the " + std::to_string(num_classes) + " declared classes");
  }
  Dataset ds;
  ds.height = images.dims[1];
  ds.width = images.dims[2];
  ds.num_classes = num_classes;
  auto raw = torch::from_blob(const_cast<uint8_t*>(images.data.data()), {n, ds.height * ds.width}, torch::kUInt8);
  ds.images = raw.to(torch::kFloat32).div_(255.0f);
  ds.labels = torch::from_blob(const_cast<uint8_t*>(labels.data.data()), {n}, torch::kUInt8).to(torch::kInt64);
  return ds;
}

Dataset load_split(const fs::path& dir, Split split, int64_t num_classes) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(dir.string() + ": data folder does not exist (run: matvae data fetch)");
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": is not a folder");
  if (is_feature_folder(dir)) return load_feature_split(dir, split, num_classes);
  const fs::path images_path = idx_path(dir, split, false);
  const fs::path labels_path = idx_path(dir, split, true);
  const IdxArray images = read_idx(images_path, kIdxMagicImages);
  const IdxArray labels = read_idx(labels_path, kIdxMagicLabels);
  Dataset ds = make_dataset(images, labels, num_classes, images_path.string(), labels_path.string());
  ds.source = dir.string();
  return ds;
}

TrainTest load_dataset(const fs::path& dir, int64_t num_classes) {
  TrainTest tt{load_split(dir, Split::kTrain, num_classes), load_split(dir, Split::kTest, num_classes)};
  // Counted: both splits share the count, as a class may be missing from one of them.
  tt.train.num_classes = tt.test.num_classes = std::max(tt.train.num_classes, tt.test.num_classes);
  if (tt.train.features != tt.test.features || (tt.train.features && tt.train.width != tt.test.width))
    throw Error(dir.string() + ": train rows have " + std::to_string(tt.train.width) + " features but test rows have " +
                std::to_string(tt.test.width));
  if (tt.train.height != tt.test.height || tt.train.width != tt.test.width)
    throw Error(dir.string() + ": train images are " + std::to_string(tt.train.height) + "x" +
                std::to_string(tt.train.width) + " but test images are " + std::to_string(tt.test.height) + "x" +
                std::to_string(tt.test.width));
  return tt;
}

}  // namespace matvae
