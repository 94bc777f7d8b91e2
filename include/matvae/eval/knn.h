// Exact k-nearest-neighbour classification with L2 distance against all training codes: a fast
// path (blocked matrix products and a k-best scan per row) and a plain float64 double loop, knn_predict_reference,
// that the tests hold it to, ties included.
//
// Ties, the same in both paths:
// - neighbours are ordered by distance, and equal distances by the lower training index;
// - the k nearest vote; the class with most votes wins, and a tie in votes goes to the tied class
//   whose best neighbour comes first in that order (for k = 1: the nearest neighbour's class).
// "Equal" means equal as computed: the two paths agree exactly where the fast path's arithmetic is
// exact (e.g. small integer-valued codes, as in the tests); elsewhere distances that are equal in
// exact arithmetic may differ by rounding, and so may the order of such near-ties.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace matvae {

/// Plain fields (an aggregate), like the other option structs of the library.
struct KnnOptions {
  /// Test rows per block, and training rows per tile: a block's distances go tile by tile through
  /// one [block_rows, tile_columns] product that the scan reads while it is in cache.
  int64_t block_rows = 128;
  int64_t tile_columns = 1024;
};

struct KnnResult {
  std::vector<int64_t> ks;
  std::vector<double> accuracy;  // one per k
  torch::Tensor predictions;     // [K, T] int64: row j holds the predictions with ks[j] neighbours
};

/// The k nearest training rows of every test row: train_x: [N, m], test_x: [T, m], k in [1, N] ->
/// [T, k] int64 training indices in neighbour order (by distance, then by the lower index). The
/// same blocked path as knn_predict; also what retrieval ranks by (eval/retrieval.h).
torch::Tensor knn_neighbours(const torch::Tensor& train_x, const torch::Tensor& test_x, int64_t k,
                             const KnnOptions& options = {});

/// train_x: [N, m], train_y: [N] int64 labels >= 0, test_x: [T, m]; ks: each in [1, N].
/// -> [K, T] int64 predicted classes, one row per k. Exhaustive: every test row against every training
/// row, as ||b||^2 - 2 a.b (the row constant ||a||^2 cannot change a ranking), T in blocks of
/// options.block_rows; in float64 if either input is float64, else in float32.
torch::Tensor knn_predict(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                          const std::vector<int64_t>& ks, const KnnOptions& options = {});

/// The vote of the neighbours' labels [T, k_max] (in neighbour order) for each k of ks (<= k_max):
/// -> [K, T] predicted classes, ties as above. num_classes: more than the largest label.
torch::Tensor knn_vote(const torch::Tensor& neighbour_labels, const std::vector<int64_t>& ks, int64_t num_classes);

/// The definition, written out: for each test row a float64 double loop over all training rows of
/// sum_t (a_t - b_t)^2, a stable sort, and the vote. Same inputs and result as knn_predict. For tests.
torch::Tensor knn_predict_reference(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                    const torch::Tensor& test_x, const std::vector<int64_t>& ks);

/// knn_predict, then accuracy against test_y: [T] int64, per k.
KnnResult knn_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                       const torch::Tensor& test_y, const std::vector<int64_t>& ks = {1, 5},
                       const KnnOptions& options = {});

}  // namespace matvae
