// BatchIterator and epoch_order: every index once per epoch, a short last batch, rows that match
// the dataset for the given order, deterministic per-(seed, epoch) shuffles, and skip() for resuming.
#include <algorithm>
#include <set>

#include "matvae/data/batches.h"
#include "matvae/data/dataset.h"
#include "test_util.h"

namespace {

using matvae::Batch;
using matvae::BatchIterator;
using matvae::Dataset;
using matvae::epoch_order;
using matvae_test::tensors_close;

constexpr int64_t kPixels = 6;

/// N rows whose first pixel is the row index, so a batch row tells which example it came from;
/// labels are (3 * i) % 7 (not equal to the index, so label and image gathering are checked apart).
Dataset indexed_dataset(int64_t n) {
  Dataset ds;
  ds.height = 2;
  ds.width = 3;
  ds.num_classes = 7;
  const auto idx = torch::arange(n, torch::kFloat32).unsqueeze(1);
  ds.images = torch::cat({idx, torch::rand({n, kPixels - 1})}, 1);
  ds.labels = (torch::arange(n, torch::kInt64) * 3) % 7;
  return ds;
}

struct Collected {
  std::vector<int64_t> sizes;
  std::vector<int64_t> indices;  // row indices, read back from the first pixel, in batch order
};

/// Runs an iterator to the end, checking every batch against data.index_select(order slice).
Collected drain(BatchIterator& it, const Dataset& ds, const torch::Tensor& order, int64_t batch_size,
                int64_t start_batch = 0) {
  Collected c;
  Batch b;
  int64_t pos = start_batch * batch_size;
  while (it.next(b)) {
    const int64_t size = b.images.size(0);
    c.sizes.push_back(size);
    EXPECT_EQ(b.labels.size(0), size);
    EXPECT_EQ(b.images.size(1), kPixels);
    const auto idx = order.narrow(0, pos, size);
    EXPECT_TRUE(tensors_close(b.images, ds.images.index_select(0, idx), 0.0)) << "batch at position " << pos;
    EXPECT_TRUE(torch::equal(b.labels, ds.labels.index_select(0, idx))) << "batch at position " << pos;
    EXPECT_EQ(b.labels.scalar_type(), torch::kInt64);
    const auto first = b.images.select(1, 0).to(torch::kInt64);
    for (int64_t i = 0; i < size; ++i) c.indices.push_back(first[i].item<int64_t>());
    pos += size;
    if (c.sizes.size() > 1000) break;  // an iterator that never ends
  }
  return c;
}

class Batches : public matvae_test::SeededTest {};

TEST_F(Batches, EveryIndexExactlyOncePerEpochWithShortLastBatch) {
  const Dataset ds = indexed_dataset(23);
  const auto order = epoch_order(23, 42, 0);
  BatchIterator it(ds, 5, order);
  EXPECT_EQ(it.batches(), 5);
  const Collected c = drain(it, ds, order, 5);
  EXPECT_EQ(c.sizes, (std::vector<int64_t>{5, 5, 5, 5, 3}));
  ASSERT_EQ(c.indices.size(), 23u);
  EXPECT_EQ(std::set<int64_t>(c.indices.begin(), c.indices.end()).size(), 23u);
  EXPECT_EQ(*std::min_element(c.indices.begin(), c.indices.end()), 0);
  EXPECT_EQ(*std::max_element(c.indices.begin(), c.indices.end()), 22);
  // The batches follow the order, not the dataset's row order.
  std::vector<int64_t> want(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + 23);
  EXPECT_EQ(c.indices, want);
  Batch b;
  EXPECT_FALSE(it.next(b));  // stays finished
}

TEST_F(Batches, ExactMultipleHasNoEmptyBatch) {
  const Dataset ds = indexed_dataset(20);
  const auto order = epoch_order(20, 1, 3);
  BatchIterator it(ds, 4, order);
  EXPECT_EQ(it.batches(), 5);
  const Collected c = drain(it, ds, order, 4);
  EXPECT_EQ(c.sizes, (std::vector<int64_t>(5, 4)));
}

TEST_F(Batches, BatchLargerThanDatasetAndBatchOfOne) {
  const Dataset ds = indexed_dataset(7);
  const auto order = epoch_order(7, 5, 0);
  BatchIterator big(ds, 100, order);
  EXPECT_EQ(big.batches(), 1);
  EXPECT_EQ(drain(big, ds, order, 100).sizes, (std::vector<int64_t>{7}));
  BatchIterator one(ds, 1, order);
  EXPECT_EQ(one.batches(), 7);
  const Collected c = drain(one, ds, order, 1);
  EXPECT_EQ(c.sizes, (std::vector<int64_t>(7, 1)));
  EXPECT_EQ(std::set<int64_t>(c.indices.begin(), c.indices.end()).size(), 7u);
}

TEST_F(Batches, IdentityOrderGivesRowsInOrder) {
  const Dataset ds = indexed_dataset(10);
  const auto order = torch::arange(10, torch::kInt64);
  BatchIterator it(ds, 3, order);
  const Collected c = drain(it, ds, order, 3);
  EXPECT_EQ(c.sizes, (std::vector<int64_t>{3, 3, 3, 1}));
  EXPECT_EQ(c.indices, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(Batches, WorksOnARealLoadedDatasetHead) {
  matvae_test::TempDir tmp;
  matvae_test::write_small_idx_folder(tmp.path(), 50, 10, 4, 4);
  const Dataset ds = matvae::load_split(tmp.path(), matvae::Split::kTrain).head(21);
  const auto order = epoch_order(ds.size(), 9, 2);
  BatchIterator it(ds, 8, order);
  Batch b;
  int64_t seen = 0;
  while (it.next(b)) {
    const auto idx = order.narrow(0, seen, b.images.size(0));
    EXPECT_TRUE(tensors_close(b.images, ds.images.index_select(0, idx), 0.0));
    EXPECT_TRUE(torch::equal(b.labels, ds.labels.index_select(0, idx)));
    seen += b.images.size(0);
  }
  EXPECT_EQ(seen, 21);
}

TEST_F(Batches, SkipResumesAtTheRightBatch) {
  const Dataset ds = indexed_dataset(23);
  const auto order = epoch_order(23, 42, 1);
  BatchIterator full(ds, 5, order);
  const Collected all = drain(full, ds, order, 5);

  BatchIterator resumed(ds, 5, order);
  resumed.skip(2);
  const Collected rest = drain(resumed, ds, order, 5, /*start_batch=*/2);
  EXPECT_EQ(rest.sizes, (std::vector<int64_t>{5, 5, 3}));
  EXPECT_EQ(rest.indices, std::vector<int64_t>(all.indices.begin() + 10, all.indices.end()));

  BatchIterator last(ds, 5, order);
  last.skip(4);
  EXPECT_EQ(drain(last, ds, order, 5, 4).sizes, (std::vector<int64_t>{3}));

  BatchIterator none(ds, 5, order);
  none.skip(0);
  EXPECT_EQ(drain(none, ds, order, 5).indices, all.indices);

  Batch b;
  BatchIterator done(ds, 5, order);
  done.skip(5);
  EXPECT_FALSE(done.next(b));
  BatchIterator beyond(ds, 5, order);
  beyond.skip(1000);
  EXPECT_FALSE(beyond.next(b));
}

TEST(EpochOrder, IsAPermutation) {
  for (const int64_t n : {1, 2, 17, 1000}) {
    const auto order = epoch_order(n, 7, 3);
    ASSERT_EQ(order.scalar_type(), torch::kInt64);
    ASSERT_EQ(order.dim(), 1);
    ASSERT_EQ(order.size(0), n);
    EXPECT_TRUE(torch::equal(std::get<0>(order.sort()), torch::arange(n, torch::kInt64))) << "n = " << n;
  }
}

TEST(EpochOrder, DeterministicInSeedAndEpoch) {
  const auto a = epoch_order(500, 123, 4);
  // Consuming the global generator in between must not matter.
  torch::manual_seed(99);
  (void)torch::rand({1000});
  const auto b = epoch_order(500, 123, 4);
  EXPECT_TRUE(torch::equal(a, b));
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(a, epoch_order(500, 123, 4)));
}

TEST(EpochOrder, DiffersAcrossEpochsAndSeeds) {
  const int64_t n = 500;
  std::vector<torch::Tensor> orders;
  for (int64_t e = 0; e < 5; ++e) orders.push_back(epoch_order(n, 123, e));
  for (size_t i = 0; i < orders.size(); ++i)
    for (size_t j = i + 1; j < orders.size(); ++j)
      EXPECT_FALSE(torch::equal(orders[i], orders[j])) << "epochs " << i << " and " << j << " share an order";
  EXPECT_FALSE(torch::equal(epoch_order(n, 123, 0), epoch_order(n, 124, 0)));
  // A shuffle, not the identity.
  EXPECT_FALSE(torch::equal(epoch_order(n, 123, 0), torch::arange(n, torch::kInt64)));
}

}  // namespace
