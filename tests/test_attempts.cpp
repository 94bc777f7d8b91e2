// The attempts at closing the small-m gap: the variants change what they say, the choice rule picks
// the smallest worst gap, and an experiment with --attempts measures them on a validation part of
// train: the test split can change without changing a single attempt number or the choice.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "matvae/experiment/attempts.h"
#include "matvae/experiment/experiment.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using matvae::AccuracyByM;
using matvae::TrainConfig;
using matvae::VariantScore;
using matvae_test::contains;

TrainConfig mrl_config() {
  TrainConfig c;
  c.latent = 64;
  matvae::resolve(c);
  return c;
}

TEST(AttemptsTest, VariantsChangeWhatTheySay) {
  TrainConfig naive = mrl_config();
  matvae::apply_mrl_variant("naive", naive);
  EXPECT_EQ(matvae::to_toml(naive), matvae::to_toml(mrl_config()));

  TrainConfig c = mrl_config();
  matvae::apply_mrl_variant("c-log", c);
  EXPECT_EQ(c.weights, (std::vector<double>{6, 5, 4, 3, 2, 1}));
  c = mrl_config();
  matvae::apply_mrl_variant("lambda-heavy-small", c);
  ASSERT_EQ(c.lambdas.size(), 6u);
  EXPECT_DOUBLE_EQ(c.lambdas.front(), 100.0 * std::sqrt(32.0));
  EXPECT_DOUBLE_EQ(c.lambdas.back(), 100.0);
  c = mrl_config();
  matvae::apply_mrl_variant("separate+c-log", c);
  EXPECT_EQ(c.decoder, matvae::DecoderForm::kSeparate);
  EXPECT_EQ(c.weights.front(), 6.0);
  c = mrl_config();
  matvae::apply_mrl_variant("separate+c-log+sample-2", c);
  EXPECT_EQ(c.prefix_sample, 2);
  EXPECT_EQ(c.decoder, matvae::DecoderForm::kSeparate);
  c = mrl_config();
  c.epochs = 20;
  matvae::apply_mrl_variant("warmup", c);
  EXPECT_EQ(c.warmup, 5.0);

  // Every variant is a valid config with its own hash, so each trains in its own run folder.
  std::set<std::string> hashes;
  for (const auto& v : matvae::mrl_variants()) {
    TrainConfig x = mrl_config();
    matvae::apply_mrl_variant(v.name, x);
    hashes.insert(matvae::config_hash(x));
  }
  EXPECT_EQ(hashes.size(), matvae::mrl_variants().size());
  EXPECT_TRUE(contains(matvae_test::error_message<matvae::UsageError>([] {
                         TrainConfig x = mrl_config();
                         matvae::apply_mrl_variant("bogus", x);
                       }),
                       "unknown MRL variant 'bogus'"));
}

TEST(AttemptsTest, TheChoiceIsTheSmallestWorstGapThenTheHigherMean) {
  const AccuracyByM ref = {{2, 0.70}, {4, 0.85}, {8, 0.90}};
  const VariantScore a = matvae::score_variant(ref, {{2, 0.60}, {4, 0.86}, {8, 0.95}});
  EXPECT_NEAR(a.worst_gap, 0.10, 1e-12);
  EXPECT_NEAR(a.mean_gap, (0.10 - 0.01 - 0.05) / 3, 1e-12);
  const VariantScore b = matvae::score_variant(ref, {{2, 0.68}, {4, 0.84}, {8, 0.89}});
  EXPECT_NEAR(b.worst_gap, 0.02, 1e-12);
  const VariantScore c = matvae::score_variant(ref, {{2, 0.6805}, {4, 0.86}, {8, 0.91}});  // worst within 0.1 pt of b
  EXPECT_EQ(matvae::choose_variant({{"naive", a}, {"separate", b}}), "separate");
  EXPECT_EQ(matvae::choose_variant({{"naive", a}, {"separate", b}, {"c-log", c}}), "c-log");
  EXPECT_EQ(matvae::choose_variant({{"c-sqrt", b}, {"separate", b}}), "separate");  // exact tie: list order
  EXPECT_THROW(matvae::score_variant(ref, {{2, 0.7}}), matvae::Error);
  EXPECT_THROW(matvae::choose_variant({}), matvae::Error);
}

class AttemptsExperimentTest : public matvae_test::TempDirTest {};

TEST_F(AttemptsExperimentTest, ChosenOnValidationAndBlindToTheTestSplit) {
  const fs::path root = dir() / "data";
  matvae_test::write_small_idx_folder(root / "toy", 240, 60, 6, 5);
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.datasets = {"toy"};
  o.dims = {2, 8};
  o.rows = {"pca"};  // the attempts themselves are the point here
  o.data_root = root;
  o.threads = 1;
  o.attempts = true;
  o.out = dir() / "a";
  matvae::run_experiment(o);

  // Another test split: other images and labels.
  const fs::path toy = root / "toy";
  matvae_test::write_small_idx_folder(dir() / "other", 240, 60, 6, 5);
  for (const char* f : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    fs::remove(toy / f);
    fs::copy_file(dir() / "other" / f, toy / f);
  }
  {
    const auto old_test = matvae_test::read_bytes(toy / "t10k-labels-idx1-ubyte");
    std::vector<uint8_t> flipped = old_test;
    for (size_t i = 8; i < flipped.size(); ++i) flipped[i] = static_cast<uint8_t>((flipped[i] + 3) % 10);
    matvae_test::write_bytes(toy / "t10k-labels-idx1-ubyte", std::string(flipped.begin(), flipped.end()));
  }
  o.out = dir() / "b";
  matvae::run_experiment(o);

  const auto load = [](const fs::path& p) {
    const auto bytes = matvae_test::read_bytes(p);
    return json::parse(bytes.begin(), bytes.end());
  };
  const json a = load(dir() / "a" / "results.json"), b = load(dir() / "b" / "results.json");
  ASSERT_TRUE(a["attempts"].contains("toy"));
  const json& rec = a["attempts"]["toy"];
  EXPECT_EQ(rec, b["attempts"]["toy"]);  // not one number moved with the test split
  EXPECT_NE(a["results"]["toy"]["pca"], b["results"]["toy"]["pca"]);  // while test numbers did
  EXPECT_EQ(rec["validation_rows"], json::array({216, 240}));

  // Every variant is there, and the recorded choice is the rule's.
  std::map<std::string, VariantScore> scores;
  AccuracyByM ref;
  for (const char* m : {"2", "8"}) ref[std::stoll(m)] = rec["reference"][m]["probe"].get<double>();
  for (const auto& v : matvae::mrl_variants()) {
    SCOPED_TRACE(v.name);
    ASSERT_TRUE(rec["variants"].contains(v.name));
    AccuracyByM acc;
    for (const char* m : {"2", "8"}) acc[std::stoll(m)] = rec["variants"][v.name]["metrics"][m]["probe"].get<double>();
    scores[v.name] = matvae::score_variant(ref, acc);
    EXPECT_NEAR(rec["variants"][v.name]["worst_gap"].get<double>(), scores[v.name].worst_gap, 1e-12);
  }
  EXPECT_EQ(rec["chosen"], matvae::choose_variant(scores));
  EXPECT_EQ(a["mrl_variant"]["toy"], rec["chosen"]);

  const auto report_bytes = matvae_test::read_bytes(dir() / "a" / "REPORT.md");
  const std::string report(report_bytes.begin(), report_bytes.end());
  EXPECT_TRUE(contains(report, "## Appendix: attempts to close the small-m gap"));
  for (const auto& v : matvae::mrl_variants()) EXPECT_TRUE(contains(report, "`" + v.name + "`")) << v.name;
  EXPECT_TRUE(contains(report, fmt::format("{:.3f}", rec["variants"]["naive"]["metrics"]["2"]["probe"].get<double>())));
  EXPECT_TRUE(contains(report, "Chosen: `" + rec["chosen"].get<std::string>() + "`"));
}

}  // namespace
