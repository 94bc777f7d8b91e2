// Feature matrices a user brings, so that matvae learns Matryoshka codes of embeddings they already
// have: a folder with train.npy [N, d] float32, train.labels.npy [N] int64, test.npy [T, d] float32
// and test.labels.npy [T] int64 (the layout `matvae encode` writes). The rows are used as they are
// (standardise them first if their scales differ) and trained with the normal likelihood.
#pragma once

#include <filesystem>

#include "matvae/data/dataset.h"

namespace matvae {

/// True if `dir` holds train.npy (then it is read as a feature folder, whatever else it holds).
bool is_feature_folder(const std::filesystem::path& dir);

/// One split of a feature folder, its labels in [0, num_classes) (0: counted). Throws matvae::Error
/// naming the file for a missing file, a wrong dtype, shape or byte order, a NaN or infinity (with its
/// row), a negative or too large label, or a count that differs between features and labels.
Dataset load_feature_split(const std::filesystem::path& dir, Split split, int64_t num_classes);

}  // namespace matvae
