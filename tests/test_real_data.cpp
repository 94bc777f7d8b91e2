// The real MNIST and Fashion-MNIST folders under data/ (skipped, with a hint, when not fetched):
// published counts, class histograms, first labels and pixel statistics, and verified SHA-256 sums.
#include <set>

#include "matvae/data/dataset.h"
#include "matvae/data/fetch.h"
#include "matvae/data/info.h"
#include "test_util.h"

namespace {

using namespace matvae_test;

const fs::path kMnistDir = fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist";
const fs::path kFashionDir = fs::path(MATVAE_SOURCE_DIR) / "data" / "fashion-mnist";

/// Each folder is loaded once for the whole binary.
const matvae::TrainTest& mnist() {
  static const matvae::TrainTest data = matvae::load_dataset(kMnistDir);
  return data;
}
const matvae::TrainTest& fashion() {
  static const matvae::TrainTest data = matvae::load_dataset(kFashionDir);
  return data;
}

std::vector<int64_t> first_labels(const matvae::Dataset& ds, int64_t n) {
  const auto l = ds.labels.narrow(0, 0, n).contiguous();
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + n);
}

class RealMnist : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kMnistDir))
      GTEST_SKIP() << kMnistDir.string() << " not found; run `matvae data fetch` to test on the real data";
  }
};

class RealFashion : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFashionDir))
      GTEST_SKIP() << kFashionDir.string() << " not found; run `matvae data fetch` to test on the real data";
  }
};

TEST_F(RealMnist, ShapesAndRange) {
  const auto& d = mnist();
  EXPECT_EQ(d.train.images.sizes(), (std::vector<int64_t>{60000, 784}));
  EXPECT_EQ(d.test.images.sizes(), (std::vector<int64_t>{10000, 784}));
  EXPECT_EQ(d.train.labels.sizes(), (std::vector<int64_t>{60000}));
  EXPECT_EQ(d.test.labels.sizes(), (std::vector<int64_t>{10000}));
  EXPECT_EQ(d.train.height, 28);
  EXPECT_EQ(d.train.width, 28);
  EXPECT_EQ(d.train.images.min().item<float>(), 0.0f);
  EXPECT_EQ(d.train.images.max().item<float>(), 1.0f);
}

TEST_F(RealMnist, PublishedClassCountsAndFirstLabels) {
  const auto train = matvae::split_stats(mnist().train);
  const auto test = matvae::split_stats(mnist().test);
  EXPECT_EQ(train.count, 60000);
  EXPECT_EQ(test.count, 10000);
  // All ten classes occur, with the published per-class counts.
  EXPECT_EQ(train.class_counts,
            (std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}));
  EXPECT_EQ(test.class_counts, (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  EXPECT_EQ(first_labels(mnist().train, 10), (std::vector<int64_t>{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}));
  EXPECT_EQ(first_labels(mnist().test, 10), (std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}));
}

TEST_F(RealMnist, PixelMeanAndStdAreTheKnownOnes) {
  const auto s = matvae::split_stats(mnist().train);
  EXPECT_NEAR(s.pixel_mean, 0.1307, 1e-4);
  EXPECT_NEAR(s.pixel_std, 0.3081, 1e-4);
}

TEST_F(RealMnist, SumsVerify) {
  EXPECT_TRUE(matvae::dataset_verified(kMnistDir, "mnist"));
  // The sums are per data set: MNIST's files are not Fashion-MNIST's.
  EXPECT_FALSE(matvae::dataset_verified(kMnistDir, "fashion-mnist"));
}

TEST_F(RealMnist, OneChangedByteFailsVerification) {
  TempDir tmp;
  for (const auto& name : matvae::idx_file_names()) fs::create_symlink(kMnistDir / name, tmp / name);
  ASSERT_TRUE(matvae::dataset_verified(tmp.path(), "mnist"));
  // Replace the smallest file with a copy that differs in one label byte.
  const std::string name = "t10k-labels-idx1-ubyte";
  auto bytes = read_bytes(kMnistDir / name);
  ASSERT_EQ(bytes.size(), 10008u);
  bytes[5000] ^= 1;
  fs::remove(tmp / name);
  write_bytes(tmp / name, bytes);
  EXPECT_FALSE(matvae::dataset_verified(tmp.path(), "mnist"));
  fs::remove(tmp / name);
  EXPECT_FALSE(matvae::dataset_verified(tmp.path(), "mnist"));  // and a missing file
}

TEST_F(RealFashion, SixThousandAndOneThousandPerClass) {
  const auto& d = fashion();
  EXPECT_EQ(d.train.images.sizes(), (std::vector<int64_t>{60000, 784}));
  EXPECT_EQ(d.test.images.sizes(), (std::vector<int64_t>{10000, 784}));
  EXPECT_EQ(matvae::split_stats(d.train).class_counts, std::vector<int64_t>(10, 6000));
  EXPECT_EQ(matvae::split_stats(d.test).class_counts, std::vector<int64_t>(10, 1000));
}

TEST_F(RealFashion, FirstLabelsAreThePublishedOnes) {
  // The official files (Debian's dataset-fashion-mnist), in their official order.
  EXPECT_EQ(first_labels(fashion().train, 10), (std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(first_labels(fashion().test, 10), (std::vector<int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
}

TEST_F(RealFashion, PixelMeanAndStdAreThePublishedOnes) {
  // Published for the official train split: mean 0.2860, std 0.3530.
  const auto s = matvae::split_stats(fashion().train);
  EXPECT_NEAR(s.pixel_mean, 0.2860, 1e-4);
  EXPECT_NEAR(s.pixel_std, 0.3530, 1e-4);
}

TEST_F(RealFashion, SumsVerify) { EXPECT_TRUE(matvae::dataset_verified(kFashionDir, "fashion-mnist")); }

}  // namespace
