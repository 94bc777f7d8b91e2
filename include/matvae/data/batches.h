// Shuffled mini-batches over an in-memory Dataset, gathered with one index_select per batch
// into reused buffers: no per-sample copies and no per-sample Example objects.
#pragma once

#include <torch/torch.h>

#include "matvae/data/dataset.h"

namespace matvae {

/// One batch. images: [B, P]; labels: [B]. Valid until the next call to next().
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

class BatchIterator {
 public:
  /// `order` is a permutation of [0, N) (int64), e.g. from epoch_order(); the last batch may be short.
  BatchIterator(const Dataset& data, int64_t batch_size, torch::Tensor order);
  /// False when the epoch is over; otherwise fills `batch`.
  bool next(Batch& batch);
  int64_t batches() const { return (order_.size(0) + batch_size_ - 1) / batch_size_; }
  /// Skips the first `k` batches (for resuming mid-epoch).
  void skip(int64_t k) { position_ = std::min(order_.size(0), k * batch_size_); }

 private:
  const Dataset& data_;
  int64_t batch_size_;
  torch::Tensor order_;
  int64_t position_ = 0;
  torch::Tensor images_buf_, labels_buf_;
};

/// The shuffled order of epoch `epoch` for `seed`: a pure function of (seed, epoch, n), so that a
/// resumed run sees exactly the batches an uninterrupted run would.
torch::Tensor epoch_order(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace matvae
