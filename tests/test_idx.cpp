// IDX reading and data-folder loading: round trips through synthetic files (raw and .gz, several
// image sizes and counts) and every kind of damaged input, each checked for an error message that
// names the file and says what is wrong.
#include <chrono>

#include "matvae/data/dataset.h"
#include "matvae/data/idx.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {

using matvae::IdxArray;
using matvae::kIdxMagicImages;
using matvae::kIdxMagicLabels;
using matvae::Split;
using namespace matvae_test;

const std::string kTrainImages = "train-images-idx3-ubyte";
const std::string kTrainLabels = "train-labels-idx1-ubyte";
const std::string kTestImages = "t10k-images-idx3-ubyte";
const std::string kTestLabels = "t10k-labels-idx1-ubyte";

/// images[i] = bytes[i] / 255, computed element by element, independently of the loader.
torch::Tensor expected_pixels(const IdxArray& a) {
  const int64_t n = a.dims[0];
  const int64_t p = a.dims[1] * a.dims[2];
  std::vector<float> v(a.data.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(a.data[i]) / 255.0f;
  return torch::tensor(v).reshape({n, p});
}

torch::Tensor expected_labels(const IdxArray& a) {
  std::vector<int64_t> v(a.data.begin(), a.data.end());
  return torch::tensor(v, torch::kInt64);
}

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

/// Raw header bytes: magic, then each dimension, big-endian.
std::vector<uint8_t> idx_header(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> out = be32(magic);
  for (uint32_t d : dims) {
    const auto b = be32(d);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

void expect_dataset_matches(const matvae::Dataset& ds, const IdxArray& images, const IdxArray& labels,
                            int64_t num_classes) {
  EXPECT_EQ(ds.size(), images.dims[0]);
  EXPECT_EQ(ds.height, images.dims[1]);
  EXPECT_EQ(ds.width, images.dims[2]);
  EXPECT_EQ(ds.pixels(), images.dims[1] * images.dims[2]);
  EXPECT_EQ(ds.num_classes, num_classes);
  ASSERT_EQ(ds.images.scalar_type(), torch::kFloat32);
  ASSERT_EQ(ds.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(tensors_close(ds.images, expected_pixels(images), 0.0));
  EXPECT_TRUE(torch::equal(ds.labels, expected_labels(labels)));
}

// ---------------------------------------------------------------------------------------------
// Round trips

struct RoundTripCase {
  int64_t height, width, n_train, n_test;
  bool gz;
};

std::string case_name(const ::testing::TestParamInfo<RoundTripCase>& info) {
  const auto& c = info.param;
  return std::to_string(c.height) + "x" + std::to_string(c.width) + "_n" + std::to_string(c.n_train) + "_" +
         std::to_string(c.n_test) + (c.gz ? "_gz" : "_raw");
}

class IdxRoundTrip : public ::testing::TestWithParam<RoundTripCase> {
 protected:
  TempDir tmp_;
};

TEST_P(IdxRoundTrip, ReadIdxReturnsWhatWasWritten) {
  const auto& c = GetParam();
  const IdxArray images = make_idx_images(c.n_train, c.height, c.width, 7);
  const IdxArray labels = make_idx_labels(c.n_train, 10, 3);
  const auto img_bytes = matvae::encode_idx(images, kIdxMagicImages);
  ASSERT_EQ(img_bytes.size(), 16 + images.data.size());
  const auto path = tmp_ / (c.gz ? "images.gz" : "images");
  write_bytes(path, c.gz ? gzip_bytes(img_bytes) : img_bytes);
  const IdxArray got = matvae::read_idx(path, kIdxMagicImages);
  EXPECT_EQ(got.dims, images.dims);
  EXPECT_EQ(got.data, images.data);

  const auto lab_bytes = matvae::encode_idx(labels, kIdxMagicLabels);
  ASSERT_EQ(lab_bytes.size(), 8 + labels.data.size());
  const auto lpath = tmp_ / (c.gz ? "labels.gz" : "labels");
  write_bytes(lpath, c.gz ? gzip_bytes(lab_bytes) : lab_bytes);
  const IdxArray got_labels = matvae::read_idx(lpath, kIdxMagicLabels);
  EXPECT_EQ(got_labels.dims, labels.dims);
  EXPECT_EQ(got_labels.data, labels.data);
}

TEST_P(IdxRoundTrip, LoadSplitAndLoadDatasetGiveBytesOver255) {
  const auto& c = GetParam();
  const IdxSplit train{make_idx_images(c.n_train, c.height, c.width, 11), make_idx_labels(c.n_train, 10, 4)};
  const IdxSplit test{make_idx_images(c.n_test, c.height, c.width, 12), make_idx_labels(c.n_test, 10, 5)};
  write_idx_folder(tmp_.path(), train, test, c.gz);
  const std::string suffix = c.gz ? ".gz" : "";
  ASSERT_TRUE(fs::exists(tmp_ / (kTrainImages + suffix)));
  EXPECT_EQ(matvae::idx_path(tmp_.path(), Split::kTrain, false), tmp_ / (kTrainImages + suffix));
  EXPECT_EQ(matvae::idx_path(tmp_.path(), Split::kTest, true), tmp_ / (kTestLabels + suffix));

  // The classes declared (10), as the small splits need not hold a label of each.
  const matvae::Dataset tr = matvae::load_split(tmp_.path(), Split::kTrain, 10);
  expect_dataset_matches(tr, train.images, train.labels, 10);
  EXPECT_EQ(tr.source, tmp_.path().string());
  const matvae::Dataset te = matvae::load_split(tmp_.path(), Split::kTest, 10);
  expect_dataset_matches(te, test.images, test.labels, 10);

  const matvae::TrainTest both = matvae::load_dataset(tmp_.path(), 10);
  expect_dataset_matches(both.train, train.images, train.labels, 10);
  expect_dataset_matches(both.test, test.images, test.labels, 10);
}

INSTANTIATE_TEST_SUITE_P(Sizes, IdxRoundTrip,
                         ::testing::Values(RoundTripCase{28, 28, 5, 3, false}, RoundTripCase{28, 28, 5, 3, true},
                                           RoundTripCase{5, 7, 1, 1, false}, RoundTripCase{5, 7, 1, 1, true},
                                           RoundTripCase{1, 1, 17, 2, false}, RoundTripCase{1, 1, 17, 2, true},
                                           RoundTripCase{32, 16, 9, 1, false}, RoundTripCase{32, 16, 9, 1, true},
                                           RoundTripCase{7, 5, 300, 40, false}, RoundTripCase{7, 5, 300, 40, true}),
                         case_name);

class IdxFiles : public TempDirTest {};

TEST_F(IdxFiles, EncodeIdxWritesBigEndianHeader) {
  const IdxArray a{{2, 1, 3}, {1, 2, 3, 4, 5, 6}};
  const std::vector<uint8_t> want = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
  EXPECT_EQ(matvae::encode_idx(a, kIdxMagicImages), want);
  const IdxArray big{{300}, std::vector<uint8_t>(300, 9)};
  const auto bytes = matvae::encode_idx(big, kIdxMagicLabels);
  ASSERT_EQ(bytes.size(), 308u);
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 8), idx_header(kIdxMagicLabels, {300}));
}

TEST_F(IdxFiles, ParseIdxReadsHandMadeBytes) {
  std::vector<uint8_t> bytes = idx_header(kIdxMagicImages, {2, 2, 1});
  bytes.insert(bytes.end(), {0, 255, 128, 7});
  const IdxArray a = matvae::parse_idx(bytes.data(), bytes.size(), kIdxMagicImages, "mem");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(a.data, (std::vector<uint8_t>{0, 255, 128, 7}));
}

TEST_F(IdxFiles, GzipIsDetectedByContentNotName) {
  const IdxArray labels = make_idx_labels(20, 10);
  write_bytes(dir() / "labels-without-suffix", gzip_bytes(matvae::encode_idx(labels, kIdxMagicLabels)));
  write_bytes(dir() / "raw.gz", matvae::encode_idx(labels, kIdxMagicLabels));
  EXPECT_EQ(matvae::read_idx(dir() / "labels-without-suffix", kIdxMagicLabels).data, labels.data);
  EXPECT_EQ(matvae::read_idx(dir() / "raw.gz", kIdxMagicLabels).data, labels.data);
}

TEST_F(IdxFiles, IdxPathPrefersRawThenGzThenNamesTheRawFile) {
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTrain, false), dir() / kTrainImages);  // neither exists
  write_bytes(dir() / (kTrainImages + ".gz"), std::string("x"));
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTrain, false), dir() / (kTrainImages + ".gz"));
  write_bytes(dir() / kTrainImages, std::string("x"));
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTrain, false), dir() / kTrainImages);
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTrain, true), dir() / kTrainLabels);
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTest, false), dir() / kTestImages);
  EXPECT_EQ(matvae::idx_path(dir(), Split::kTest, true), dir() / kTestLabels);
}

TEST_F(IdxFiles, MixedRawAndGzFolderLoads) {
  write_small_idx_folder(dir(), 10, 4, 3, 3);
  // Replace the test images by a gzip copy under the .gz name.
  const auto raw = read_bytes(dir() / kTestImages);
  fs::remove(dir() / kTestImages);
  write_bytes(dir() / (kTestImages + ".gz"), gzip_bytes(raw));
  const auto tt = matvae::load_dataset(dir());
  EXPECT_EQ(tt.train.size(), 10);
  EXPECT_EQ(tt.test.size(), 4);
  EXPECT_TRUE(tensors_close(tt.test.images, expected_pixels(make_idx_images(4, 3, 3, 2)), 0.0));
}

TEST_F(IdxFiles, HeadIsAPrefixView) {
  write_small_idx_folder(dir(), 10, 4, 3, 3);
  const auto ds = matvae::load_split(dir(), Split::kTrain);
  const auto h = ds.head(4);
  EXPECT_EQ(h.size(), 4);
  EXPECT_TRUE(torch::equal(h.images, ds.images.narrow(0, 0, 4)));
  EXPECT_TRUE(torch::equal(h.labels, ds.labels.narrow(0, 0, 4)));
  EXPECT_EQ(h.height, 3);
  EXPECT_EQ(ds.head(100).size(), 10);
}

TEST_F(IdxFiles, NumClassesAbove10IsAccepted) {
  const IdxSplit train{make_idx_images(40, 2, 2), make_idx_labels(40, 37)};
  const IdxSplit test{make_idx_images(5, 2, 2), make_idx_labels(5, 37)};
  write_idx_folder(dir(), train, test);
  const auto tt = matvae::load_dataset(dir(), 37);
  EXPECT_EQ(tt.train.num_classes, 37);
  EXPECT_EQ(tt.train.labels.max().item<int64_t>(), 36);
}

TEST_F(IdxFiles, NumClassesAreCountedFromTheLabelsOfBothSplits) {
  // Train's largest label is 25, test's 30: both splits get 31 classes.
  const IdxSplit train{make_idx_images(26, 2, 2), make_idx_labels(26, 26)};
  IdxSplit test{make_idx_images(5, 2, 2), make_idx_labels(5, 26)};
  test.labels.data[2] = 30;
  write_idx_folder(dir(), train, test);
  const auto tt = matvae::load_dataset(dir());
  EXPECT_EQ(tt.train.num_classes, 31);
  EXPECT_EQ(tt.test.num_classes, 31);
  EXPECT_EQ(matvae::load_split(dir(), Split::kTrain).num_classes, 26);  // one split alone: its own labels
}

// ---------------------------------------------------------------------------------------------
// Damaged input: each message names the file and the problem.

using Error = matvae::Error;

TEST_F(IdxFiles, MissingFile) {
  const auto path = dir() / "no-such-file";
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "no such file"));
}

TEST_F(IdxFiles, MissingLabelFileInFolder) {
  write_small_idx_folder(dir());
  fs::remove(dir() / kTrainLabels);
  const std::string msg = error_message<Error>([&] { matvae::load_split(dir(), Split::kTrain); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainLabels).string()));
  EXPECT_TRUE(contains(msg, "no such file"));
}

TEST_F(IdxFiles, MissingFolderNamesFolderAndHint) {
  const auto missing = dir() / "not-there";
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(missing); });
  EXPECT_TRUE(contains(msg, missing.string()));
  EXPECT_TRUE(contains(msg, "does not exist"));
  EXPECT_TRUE(contains(msg, "matvae data fetch"));
}

TEST_F(IdxFiles, FileGivenAsFolder) {
  write_bytes(dir() / "plain-file", std::string("hello"));
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(dir() / "plain-file"); });
  EXPECT_TRUE(contains(msg, (dir() / "plain-file").string()));
  EXPECT_TRUE(contains(msg, "not a folder"));
}

TEST_F(IdxFiles, WrongMagicNumber) {
  // A label file where images are expected (the classic mix-up)...
  write_small_idx_folder(dir());
  const auto labels = dir() / kTrainLabels;
  std::string msg = error_message<Error>([&] { matvae::read_idx(labels, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, labels.string()));
  EXPECT_TRUE(contains(msg, "wrong magic number 0x00000801"));
  EXPECT_TRUE(contains(msg, "expected 0x00000803"));

  // ...and a file with garbage where the magic should be, placed in a folder.
  auto bytes = read_bytes(dir() / kTestImages);
  bytes[0] = 0x12;
  bytes[2] = 0x34;
  write_bytes(dir() / kTestImages, bytes);
  msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / kTestImages).string()));
  EXPECT_TRUE(contains(msg, "wrong magic number 0x12003403"));
}

TEST_F(IdxFiles, WrongMagicInsideGzip) {
  const IdxArray labels = make_idx_labels(5, 10);
  const auto path = dir() / "images.gz";
  write_bytes(path, gzip_bytes(matvae::encode_idx(labels, kIdxMagicLabels)));
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "wrong magic number"));
}

TEST_F(IdxFiles, TruncatedData) {
  write_small_idx_folder(dir(), 30, 12, 6, 5);
  auto bytes = read_bytes(dir() / kTrainImages);
  bytes.pop_back();
  write_bytes(dir() / kTrainImages, bytes);
  const std::string msg = error_message<Error>([&] { matvae::load_split(dir(), Split::kTrain); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainImages).string()));
  EXPECT_TRUE(contains(msg, "truncated"));
  EXPECT_TRUE(contains(msg, "declares 900 data bytes, file has 899"));
}

TEST_F(IdxFiles, TruncatedHeader) {
  const auto path = dir() / "short";
  write_bytes(path, idx_header(kIdxMagicImages, {3, 28}));  // the third dimension is missing
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "truncated"));
  EXPECT_TRUE(contains(msg, "header needs 16 bytes"));
}

TEST_F(IdxFiles, TrailingGarbage) {
  write_small_idx_folder(dir());
  auto bytes = read_bytes(dir() / kTestLabels);
  bytes.insert(bytes.end(), {1, 2, 3});
  write_bytes(dir() / kTestLabels, bytes);
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / kTestLabels).string()));
  EXPECT_TRUE(contains(msg, "3 unexpected bytes after the data"));
}

TEST_F(IdxFiles, TrailingGarbageInsideGzip) {
  auto bytes = matvae::encode_idx(make_idx_labels(50, 10), kIdxMagicLabels);
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<uint8_t>(i));
  const auto path = dir() / "labels.gz";
  write_bytes(path, gzip_bytes(bytes));
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicLabels); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "more than the 59 bytes its header allows"));  // 8 + 50 + 1
}

TEST_F(IdxFiles, TinyFileClaimingABillionImagesFailsFast) {
  std::vector<uint8_t> bytes = idx_header(kIdxMagicImages, {1000000000u, 28, 28});
  bytes.insert(bytes.end(), {1, 2, 3, 4});
  ASSERT_EQ(bytes.size(), 20u);
  const auto path = dir() / "huge-claim";
  write_bytes(path, bytes);
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "truncated: header declares 784000000000 data bytes, file has 4"));
  EXPECT_LT(seconds, 1.0);
}

TEST_F(IdxFiles, TinyGzipClaimingABillionImagesFailsFast) {
  std::vector<uint8_t> bytes = idx_header(kIdxMagicImages, {1000000000u, 28, 28});
  bytes.insert(bytes.end(), {1, 2, 3, 4});
  const auto gz = gzip_bytes(bytes);
  ASSERT_LT(gz.size(), 64u);
  const auto path = dir() / "huge-claim.gz";
  write_bytes(path, gz);
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "header declares 784000000000 data bytes, more than a " + std::to_string(gz.size()) +
                                "-byte gzip file can hold"));
  EXPECT_LT(seconds, 1.0);
}

TEST_F(IdxFiles, CompressibleGzipClaimingMoreThanItHoldsFails) {
  // 2 MB of zeros compress to ~2 KB; the header claims 60000 x 28 x 28 (47 MB), which no 2 KB gzip
  // stream can hold; the header check must say so before inflating anything.
  std::vector<uint8_t> bytes = idx_header(kIdxMagicImages, {60000, 28, 28});
  bytes.resize(bytes.size() + (2 << 20), 0);
  const auto path = dir() / "images.gz";
  write_bytes(path, gzip_bytes(bytes, 9));
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "header declares 47040000 data bytes, more than a"));
  EXPECT_TRUE(contains(msg, "gzip file can hold"));
}

TEST_F(IdxFiles, ImageAndLabelCountsDiffer) {
  write_idx_folder(dir(), {make_idx_images(5, 4, 4), make_idx_labels(4, 10)},
                   {make_idx_images(3, 4, 4), make_idx_labels(3, 10)});
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainLabels).string()));
  EXPECT_TRUE(contains(msg, (dir() / kTrainImages).string()));
  EXPECT_TRUE(contains(msg, "4 labels"));
  EXPECT_TRUE(contains(msg, "has 5 images"));
}

TEST_F(IdxFiles, LabelOutsideDeclaredClasses) {
  IdxArray labels = make_idx_labels(6, 10);
  labels.data[4] = 10;
  write_idx_folder(dir(), {make_idx_images(6, 2, 3), labels}, {make_idx_images(2, 2, 3), make_idx_labels(2, 10)});
  std::string msg = error_message<Error>([&] { matvae::load_split(dir(), Split::kTrain, 10); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainLabels).string()));
  EXPECT_TRUE(contains(msg, "label 10 at index 4 is outside the 10 declared classes"));

  // Fewer declared classes than the labels use.
  msg = error_message<Error>([&] { matvae::load_split(dir(), Split::kTest, 1); });
  EXPECT_TRUE(contains(msg, (dir() / kTestLabels).string()));
  EXPECT_TRUE(contains(msg, "outside the 1 declared classes"));
  // The boundary itself is fine: labels 0..10 with 11 classes.
  EXPECT_EQ(matvae::load_split(dir(), Split::kTrain, 11).labels[4].item<int64_t>(), 10);
}

TEST_F(IdxFiles, ZeroImages) {
  write_idx_folder(dir(), {make_idx_images(0, 4, 4), make_idx_labels(0, 10)},
                   {make_idx_images(3, 4, 4), make_idx_labels(3, 10)});
  const std::string msg = error_message<Error>([&] { matvae::load_split(dir(), Split::kTrain); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainImages).string()));
  EXPECT_TRUE(contains(msg, "no images"));
}

TEST_F(IdxFiles, ZeroImageDimension) {
  const auto path = dir() / "flat";
  write_bytes(path, idx_header(kIdxMagicImages, {3, 0, 28}));
  const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "dimension 1 is 0"));
}

/// A valid gzip'd IDX image file whose deflate stream really compresses (a smooth pattern), so a
/// flipped byte lands in Huffman-coded data rather than in a stored block.
std::vector<uint8_t> compressible_idx_gz() {
  IdxArray a{{40, 28, 28}, std::vector<uint8_t>(40 * 28 * 28)};
  for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<uint8_t>((i / 3) % 29 + (i / 784) * 5);
  return gzip_bytes(matvae::encode_idx(a, kIdxMagicImages));
}

TEST_F(IdxFiles, CorruptGzipStream) {
  for (const bool compressible : {true, false}) {
    const auto good = compressible
                          ? compressible_idx_gz()
                          : gzip_bytes(matvae::encode_idx(make_idx_images(40, 28, 28), kIdxMagicImages));
    for (const double where : {0.4, 0.5, 0.7}) {
      SCOPED_TRACE(std::string(compressible ? "compressible" : "random") + " data, flip at " +
                   std::to_string(where));
      auto bad = good;
      const size_t mid = static_cast<size_t>(bad.size() * where);
      for (size_t i = mid; i < mid + 4; ++i) bad[i] ^= 0x5a;
      const auto path = dir() / kTrainImages;
      write_bytes(path, bad);
      const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
      EXPECT_TRUE(contains(msg, path.string()));
      EXPECT_TRUE(contains(msg, "corrupt gzip stream"));
    }
  }
}

TEST_F(IdxFiles, TruncatedGzipStream) {
  const auto good = compressible_idx_gz();
  for (const size_t keep : {good.size() / 2, good.size() - 4, size_t{12}}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(good.size()) + " bytes");
    const auto path = dir() / (kTrainImages + ".gz");
    write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + keep));
    const std::string msg = error_message<Error>([&] { matvae::read_idx(path, kIdxMagicImages); });
    EXPECT_TRUE(contains(msg, path.string()));
    EXPECT_TRUE(contains(msg, "truncated"));
  }
}

TEST_F(IdxFiles, ImageSizesDifferBetweenTrainAndTest) {
  write_idx_folder(dir(), {make_idx_images(4, 28, 28), make_idx_labels(4, 10)},
                   {make_idx_images(2, 5, 7), make_idx_labels(2, 10)});
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, dir().string()));
  EXPECT_TRUE(contains(msg, "train images are 28x28 but test images are 5x7"));
}

TEST_F(IdxFiles, DirectoryWhereTheFileShouldBe) {
  write_small_idx_folder(dir());
  fs::remove(dir() / kTestImages);
  fs::create_directory(dir() / kTestImages);
  const std::string msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / kTestImages).string()));
  EXPECT_TRUE(contains(msg, "is a directory"));
}

TEST_F(IdxFiles, EmptyFile) {
  write_small_idx_folder(dir());
  write_bytes(dir() / kTrainImages, std::vector<uint8_t>{});
  std::string msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / kTrainImages).string()));
  EXPECT_TRUE(contains(msg, "truncated: 0 bytes"));

  // An empty file under the .gz name, and a gzip stream of nothing.
  fs::remove(dir() / kTrainImages);
  write_bytes(dir() / (kTrainImages + ".gz"), std::vector<uint8_t>{});
  msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / (kTrainImages + ".gz")).string()));
  EXPECT_TRUE(contains(msg, "truncated: 0 bytes"));

  write_bytes(dir() / (kTrainImages + ".gz"), gzip_bytes({}));
  msg = error_message<Error>([&] { matvae::load_dataset(dir()); });
  EXPECT_TRUE(contains(msg, (dir() / (kTrainImages + ".gz")).string()));
  EXPECT_TRUE(contains(msg, "truncated: 0 bytes"));
}

}  // namespace
