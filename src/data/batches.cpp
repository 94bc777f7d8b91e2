// Batch gathering and per-epoch shuffles.
#include "matvae/data/batches.h"

#include "matvae/util/error.h"

namespace matvae {

BatchIterator::BatchIterator(const Dataset& data, int64_t batch_size, torch::Tensor order)
    : data_(data), batch_size_(batch_size), order_(std::move(order)) {
  TORCH_INTERNAL_ASSERT(batch_size_ > 0, "batch size must be positive");
  TORCH_INTERNAL_ASSERT(order_.dim() == 1 && order_.scalar_type() == torch::kInt64);
}

bool BatchIterator::next(Batch& batch) {
  const int64_t n = order_.size(0);
  if (position_ >= n) return false;
  const int64_t b = std::min(batch_size_, n - position_);
  const auto idx = order_.narrow(0, position_, b);
  if (!images_buf_.defined() || images_buf_.size(0) != b) {
    images_buf_ = torch::empty({b, data_.images.size(1)}, data_.images.options());
    labels_buf_ = torch::empty({b}, data_.labels.options());
  }
  torch::index_select_out(images_buf_, data_.images, 0, idx);
  torch::index_select_out(labels_buf_, data_.labels, 0, idx);
  batch.images = images_buf_;
  batch.labels = labels_buf_;
  position_ += b;
  return true;
}

torch::Tensor epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<uint64_t>(epoch) + 1);
  return torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
}

}  // namespace matvae
