// Data a user brings, through every command: an IDX set of 26 classes and a folder of feature
// matrices (.npy) run through the experiment end to end; every damaged .npy file gets one clear
// message naming it; feature rows refuse the Bernoulli likelihood.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "matvae/data/dataset.h"
#include "matvae/experiment/experiment.h"
#include "matvae/io/npy.h"
#include "matvae/io/npy_format.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using matvae_test::contains;

json results_of(const fs::path& out) {
  const auto b = matvae_test::read_bytes(out / "results.json");
  return json::parse(b.begin(), b.end());
}

matvae::ExperimentOptions tiny(const fs::path& root, const std::string& dataset, const fs::path& out) {
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.datasets = {dataset};
  o.data_root = root;
  o.dims = {2, 8};
  o.rows = {"mrl-mmd", "mmd-at-m", "pca"};
  o.threads = 1;
  o.out = out;
  return o;
}

/// A feature folder: n rows of d features, the class in the first few coordinates' sign pattern.
void write_features(const fs::path& dir, int64_t n_train, int64_t n_test, int64_t d, int64_t classes) {
  fs::create_directories(dir);
  torch::manual_seed(3);
  for (const auto& [name, n] : {std::pair{"train", n_train}, std::pair{"test", n_test}}) {
    const auto y = torch::arange(n, torch::kInt64).remainder(classes);
    auto x = torch::randn({n, d});
    x.narrow(1, 0, 1).add_(y.to(torch::kFloat32).unsqueeze(1) * 2);
    matvae::write_npy(dir / (std::string(name) + ".npy"), x);
    matvae::write_npy(dir / (std::string(name) + ".labels.npy"), y);
  }
}

class AnyData : public matvae_test::TempDirTest {};

TEST_F(AnyData, ATwentySixClassIdxSetRunsThroughTheExperiment) {
  matvae_test::write_idx_folder(dir() / "data" / "letters",
                                {matvae_test::make_idx_images(520, 6, 5, 1), matvae_test::make_idx_labels(520, 26, 1)},
                                {matvae_test::make_idx_images(130, 6, 5, 2), matvae_test::make_idx_labels(130, 26, 2)});
  EXPECT_EQ(matvae::load_dataset(dir() / "data" / "letters").train.num_classes, 26);
  matvae::run_experiment(tiny(dir() / "data", "letters", dir() / "out"));
  const json r = results_of(dir() / "out");
  for (const char* row : {"mrl-mmd", "mmd-at-m", "pca"}) EXPECT_TRUE(r["results"]["letters"].contains(row)) << row;
  for (const auto& [name, toml] : r["configs"].items())
    EXPECT_TRUE(contains(toml.get<std::string>(), "classes = 26")) << name;
}

TEST_F(AnyData, AFeatureFolderRunsThroughTheExperimentWithTheNormalLikelihood) {
  write_features(dir() / "data" / "emb", 400, 100, 20, 3);
  const auto d = matvae::load_dataset(dir() / "data" / "emb");
  EXPECT_TRUE(d.train.features);
  EXPECT_EQ(d.train.pixels(), 20);
  EXPECT_EQ(d.train.num_classes, 3);
  matvae::run_experiment(tiny(dir() / "data", "emb", dir() / "out"));
  const json r = results_of(dir() / "out");
  const auto& mrl = r["results"]["emb"]["mrl-mmd"]["8"]["0"];
  EXPECT_GT(mrl["probe"].get<double>(), 0.5);  // the class is in the first feature: well above 1/3
  for (const auto& [name, toml] : r["configs"].items())
    EXPECT_TRUE(contains(toml.get<std::string>(), "likelihood = \"normal\"")) << name;
  EXPECT_TRUE(fs::exists(dir() / "out" / "REPORT.md"));
  EXPECT_FALSE(fs::exists(dir() / "out" / "recon_emb.png"));  // feature rows draw no pictures
}

TEST_F(AnyData, FeatureRowsRefuseTheBernoulliLikelihood) {
  write_features(dir() / "emb", 100, 20, 6, 2);
  const auto r = matvae_test::run_matvae({"train", "--data", (dir() / "emb").string(), "--latent", "4", "--hidden", "8",
                                          "--batch-size", "10", "--epochs", "1", "--out", (dir() / "run").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--likelihood normal"));
  EXPECT_FALSE(fs::exists(dir() / "run"));
  const auto ok = matvae_test::run_matvae({"train", "--data", (dir() / "emb").string(), "--latent", "4", "--hidden", "8",
                                           "--batch-size", "10", "--epochs", "1", "--likelihood", "normal", "--quiet",
                                           "--out", (dir() / "run").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

/// One damaged feature folder per case: what is written over which file, and what the message says.
struct Damage {
  std::string name, file;
  std::function<std::vector<uint8_t>()> bytes;
  std::string mention;
};

std::vector<uint8_t> npy_of(matvae::NpyType type, const std::vector<int64_t>& shape, size_t items, uint8_t fill = 0) {
  std::vector<uint8_t> data(items * matvae::npy_item_size(type), fill);
  return matvae::encode_npy(type, shape, data.data(), data.size());
}

TEST_F(AnyData, EveryDamagedNpyFileGetsOneMessageNamingIt) {
  const std::vector<Damage> cases = {
      {"float64", "train.npy",
       [] {
         auto b = npy_of(matvae::NpyType::kFloat32, {100, 6}, 1200);  // 8-byte items as float64 would have
         const std::string h(b.begin(), b.begin() + 64);
         std::string s(b.begin(), b.end());
         s.replace(s.find("<f4"), 3, "<f8");
         return std::vector<uint8_t>(s.begin(), s.end());
       },
       "unsupported dtype '<f8'"},
      {"big-endian", "test.npy",
       [] {
         auto b = npy_of(matvae::NpyType::kFloat32, {20, 6}, 120);
         std::string s(b.begin(), b.end());
         s.replace(s.find("<f4"), 3, ">f4");
         return std::vector<uint8_t>(s.begin(), s.end());
       },
       "big-endian"},
      {"one-dimensional", "train.npy", [] { return npy_of(matvae::NpyType::kFloat32, {100}, 100); },
       "expected a float32 matrix"},
      {"labels-not-int64", "train.labels.npy", [] { return npy_of(matvae::NpyType::kUInt8, {100}, 100); },
       "expected int64 labels"},
      {"count-mismatch", "test.labels.npy", [] { return npy_of(matvae::NpyType::kInt64, {19}, 19); }, "19 labels"},
      {"nan", "train.npy",
       [] {
         std::vector<float> v(600, 0.f);
         v[6 * 7 + 2] = std::nanf("");
         return matvae::encode_npy(matvae::NpyType::kFloat32, {100, 6}, v.data(), v.size() * 4);
       },
       "row 7 holds a NaN"},
      {"negative-label", "train.labels.npy",
       [] {
         std::vector<int64_t> v(100, 0);
         v[3] = -1;
         return matvae::encode_npy(matvae::NpyType::kInt64, {100}, v.data(), v.size() * 8);
       },
       "label -1 is negative"},
      {"truncated", "test.npy", [] { auto b = npy_of(matvae::NpyType::kFloat32, {20, 6}, 120); b.resize(b.size() - 8); return b; },
       "truncated"},
      {"not-npy", "train.labels.npy", [] { return std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'}; }, "not a .npy file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path folder = dir() / c.name;
    write_features(folder, 100, 20, 6, 2);
    matvae_test::write_bytes(folder / c.file, c.bytes());
    const auto r = matvae_test::run_matvae({"data", "info", "--data", folder.string()});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, (folder / c.file).string())) << r.output;
    EXPECT_TRUE(contains(r.output, c.mention)) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
