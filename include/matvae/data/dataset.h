// A labelled split held whole in memory, and the loader for a data folder. A data folder holds
// either the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte, each raw or with a .gz suffix) of images of any size and number of classes,
// or the feature matrices a user brings (data/features.h: train.npy, train.labels.npy, test.npy,
// test.labels.npy).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>

namespace matvae {

/// One split. images: [N, P] float32, P = height * width: intensities in [0, 1] of images, or a
/// feature matrix's rows (height 1, features true); labels: [N] int64 in [0, num_classes).
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t height = 0;
  int64_t width = 0;
  int64_t num_classes = 0;
  bool features = false;  // rows of a feature matrix, not images: any real values, nothing to draw
  std::string source;     // the folder it came from, for messages and reports

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t pixels() const { return height * width; }
  /// The first n examples (a view, no copy); n larger than size() keeps all.
  Dataset head(int64_t n) const;
  /// The last n examples (a view, no copy); n larger than size() keeps all.
  Dataset tail(int64_t n) const;
};

/// n examples chosen by a permutation seeded with `seed`, kept in file order (a copy): a subset
/// that does not depend on how the file is sorted. All of `data` if n <= 0 or n >= its size.
Dataset random_subset(const Dataset& data, int64_t n, uint64_t seed);

enum class Split { kTrain, kTest };

/// Builds a Dataset from parsed IDX arrays; checks counts and that every label is < num_classes
/// (0: as many classes as the largest label says). `images_name`/`labels_name` name the files in errors.
Dataset make_dataset(const struct IdxArray& images, const struct IdxArray& labels, int64_t num_classes,
                     const std::string& images_name, const std::string& labels_name);

/// Loads one split from a data folder, its labels in [0, num_classes) (0: counted from its labels).
/// Throws matvae::Error naming the folder or file.
Dataset load_split(const std::filesystem::path& dir, Split split, int64_t num_classes = 0);

/// Train and test of one folder; their image sizes must agree.
struct TrainTest {
  Dataset train;
  Dataset test;
};
/// num_classes 0: counted from the labels of both splits (the largest label plus one).
TrainTest load_dataset(const std::filesystem::path& dir, int64_t num_classes = 0);

/// The path of a split's image or label file in `dir`: the raw name if present, else name + ".gz".
std::filesystem::path idx_path(const std::filesystem::path& dir, Split split, bool labels);

}  // namespace matvae
