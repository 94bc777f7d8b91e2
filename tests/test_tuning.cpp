// Equal tuning: the candidates change what they say, the rule picks the smallest worst regret on
// hand-made numbers, and an experiment that tunes measures every candidate on a validation part of
// train: the test split can change without changing a single tuning number or choice.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "matvae/experiment/experiment.h"
#include "matvae/experiment/tuning.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using matvae::TrainConfig;
using matvae_test::contains;

TrainConfig mrl_config() {
  TrainConfig c;
  c.latent = 64;
  matvae::resolve(c);
  return c;
}

TEST(TuningTest, VariantsChangeWhatTheySay) {
  const auto& mrl = matvae::family("mrl-mmd");
  TrainConfig naive = mrl_config();
  matvae::apply_candidate(mrl, "naive", naive);
  EXPECT_EQ(matvae::to_toml(naive), matvae::to_toml(mrl_config()));
  TrainConfig c = mrl_config();
  matvae::apply_candidate(mrl, "c-log", c);
  EXPECT_EQ(c.weights, (std::vector<double>{6, 5, 4, 3, 2, 1}));
  c = mrl_config();
  matvae::apply_candidate(mrl, "lambda-heavy-small", c);
  ASSERT_EQ(c.lambdas.size(), 6u);
  EXPECT_DOUBLE_EQ(c.lambdas.front(), 100.0 * std::sqrt(32.0));
  EXPECT_DOUBLE_EQ(c.lambdas.back(), 100.0);
  c = mrl_config();
  matvae::apply_candidate(mrl, "separate+c-log", c);
  EXPECT_EQ(c.decoder, matvae::DecoderForm::kSeparate);
  EXPECT_EQ(c.weights.front(), 6.0);
  c = mrl_config();
  matvae::apply_candidate(mrl, "full-heavy", c);
  EXPECT_EQ(c.weights, (std::vector<double>{1, 1, 1, 1, 1, 5}));
  c = mrl_config();
  matvae::apply_candidate(mrl, "balance", c);
  EXPECT_EQ(c.balance, matvae::Balance::kRunningMean);
  c = mrl_config();
  matvae::apply_candidate(mrl, "distill", c);
  EXPECT_GT(c.distill, 0);
  c = mrl_config();
  c.epochs = 20;
  matvae::apply_candidate(mrl, "warmup", c);
  EXPECT_EQ(c.warmup, 5.0);
  TrainConfig nested;
  nested.model = matvae::ModelKind::kMmd;
  matvae::apply_candidate(matvae::family("nested-dropout"), "p-0.05", nested);
  EXPECT_EQ(nested.code_dropout, matvae::CodeDropout::kNested);
  EXPECT_EQ(nested.dropout_rate, 0.05);

  // Every variant is a valid config with its own hash, so each trains in its own run folder.
  std::set<std::string> hashes;
  for (const auto& v : matvae::mrl_variants()) {
    TrainConfig x = mrl_config();
    matvae::apply_candidate(mrl, v.name, x);
    hashes.insert(matvae::config_hash(x));
  }
  // (warm differs from naive only in what the planner adds: its source and epochs.)
  EXPECT_EQ(hashes.size(), matvae::mrl_variants().size() - 1);
  EXPECT_TRUE(contains(matvae_test::error_message<matvae::UsageError>([&] {
                         TrainConfig x = mrl_config();
                         matvae::apply_candidate(mrl, "bogus", x);
                       }),
                       "unknown mrl-mmd candidate 'bogus'"));
}

TEST(TuningTest, EveryFamilyHasTheSameNumberOfCandidates) {
  for (const auto& f : matvae::families()) EXPECT_EQ(f.candidates.size(), 4u) << f.name;
  for (const auto& row : matvae::experiment_rows())
    if (row != "pca") EXPECT_NO_THROW(matvae::family(matvae::family_of_row(row))) << row;
}

TEST(TuningTest, EveryProfileNamesRealRowsFamiliesAndCandidates) {
  // A profile's fixed settings are looked up only when its models are planned; a misspelt one must
  // fail here, not minutes into a user's first run.
  for (const char* name : {"quick", "full", "tiny"}) {
    SCOPED_TRACE(name);
    const matvae::ExperimentProfile p = matvae::experiment_profile(name);
    for (const auto& row : p.rows)
      EXPECT_NE(std::find(matvae::experiment_rows().begin(), matvae::experiment_rows().end(), row),
                matvae::experiment_rows().end())
          << row;
    EXPECT_NO_THROW(matvae::candidate(matvae::family("mrl-mmd"), p.mrl_variant));
    for (const auto& c : p.choices) {
      EXPECT_NO_THROW(matvae::candidate(matvae::family(c.family), c.candidate)) << c.family << " " << c.candidate;
      EXPECT_TRUE(c.m == 0 || matvae::family(c.family).per_m) << c.family << " is one model for every m";
    }
  }
  // The quick profile is the full profile's rows at the settings its tuning chose.
  const auto quick = matvae::experiment_profile("quick");
  EXPECT_FALSE(quick.tune);
  EXPECT_EQ(quick.mrl_variant, "separate-2+balance+full-heavy");
  EXPECT_EQ(quick.rows, (std::vector<std::string>{"mrl-mmd", "mmd-at-m", "mmd-trunc", "pca"}));
  EXPECT_EQ(quick.seeds.size(), 2u);  // one seed's sign at a tie is noise (README, "Profiles and their cost")
}

TEST(TuningTest, TheRuleIsTheSmallestWorstRegretThenTheMean) {
  // Three candidates at two m. Best per cell: probe 0.90/0.95, 1-NN 0.80/0.90, recon 100/90.
  const std::vector<matvae::ScoresByM> c = {
      {{2, {0.90, 0.70, 100}}, {8, {0.95, 0.90, 95}}},   // 1-NN 10 points behind at m = 2
      {{2, {0.88, 0.80, 104}}, {8, {0.94, 0.89, 90}}},   // at most 2 points (probe) or 2 half-nats (recon)
      {{2, {0.89, 0.79, 103}}, {8, {0.93, 0.88, 91}}}};  // worst 2 (probe at m = 8), smaller mean
  const auto r = matvae::regrets(c);
  EXPECT_NEAR(r[0].worst, 10.0, 1e-9);
  EXPECT_NEAR(r[1].worst, 2.0, 1e-9);
  EXPECT_NEAR(r[1].mean, (2 + 0 + 2 + 1 + 1 + 0) / 6.0, 1e-9);
  EXPECT_NEAR(r[2].worst, 2.0, 1e-9);
  EXPECT_NEAR(r[2].mean, (1 + 1 + 1.5 + 2 + 2 + 0.5) / 6.0, 1e-9);
  EXPECT_EQ(matvae::choose_candidate(r), 1u);  // equal worst, smaller mean
  // Within 0.1 of the smallest worst regret the mean decides; beyond it, it does not.
  EXPECT_EQ(matvae::choose_candidate({{1.0, 5.0}, {1.05, 0.5}}), 1u);
  EXPECT_EQ(matvae::choose_candidate({{1.0, 5.0}, {1.2, 0.5}}), 0u);
  EXPECT_EQ(matvae::choose_candidate({{1.0, 1.0}, {1.0, 1.0}}), 0u);  // exact tie: the earlier
  EXPECT_THROW(matvae::regrets({{{2, {0.9, 0.9, 90}}}, {}}), matvae::Error);
  EXPECT_THROW(matvae::choose_candidate({}), matvae::Error);
}

class TuningExperimentTest : public matvae_test::TempDirTest {
 protected:
  json run(const fs::path& out) {
    matvae::ExperimentOptions o;
    o.profile = "tiny";
    o.datasets = {"toy"};
    o.dims = {2, 8};
    o.rows = {"mrl-mmd", "mmd-at-m", "pca"};
    o.data_root = dir() / "data";
    o.threads = 1;
    o.tune = 1;
    o.out = out;
    matvae::run_experiment(o);
    const auto bytes = matvae_test::read_bytes(out / "results.json");
    return json::parse(bytes.begin(), bytes.end());
  }
};

TEST_F(TuningExperimentTest, ChosenOnValidationAndBlindToTheTestSplit) {
  const fs::path toy = dir() / "data" / "toy";
  matvae_test::write_small_idx_folder(toy, 240, 60, 6, 5);
  const json a = run(dir() / "a");
  // Another test split: other images, and labels that are all wrong.
  matvae_test::write_small_idx_folder(dir() / "other", 240, 60, 6, 5);
  fs::remove(toy / "t10k-images-idx3-ubyte");
  fs::copy_file(dir() / "other" / "t10k-images-idx3-ubyte", toy / "t10k-images-idx3-ubyte");
  auto labels = matvae_test::read_bytes(toy / "t10k-labels-idx1-ubyte");
  for (size_t i = 8; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>((labels[i] + 3) % 10);
  matvae_test::write_bytes(toy / "t10k-labels-idx1-ubyte", labels);
  const json b = run(dir() / "b");

  ASSERT_TRUE(a["tuning"].contains("toy"));
  const json& rec = a["tuning"]["toy"];
  EXPECT_EQ(rec, b["tuning"]["toy"]);  // not one number moved with the test split
  EXPECT_EQ(a["chosen"], b["chosen"]);
  EXPECT_NE(a["results"]["toy"]["pca"], b["results"]["toy"]["pca"]);  // while test numbers did
  EXPECT_EQ(rec["validation_rows"], json::array({216, 240}));

  // Every candidate of the two families is there, and each recorded choice is the rule's.
  for (const std::string fam : {"mrl-mmd", "mmd"}) {
    SCOPED_TRACE(fam);
    const json& f = rec[fam];
    ASSERT_EQ(f["candidates"].size(), matvae::family(fam).candidates.size());
    for (const auto& [key, chosen] : f["chosen"].items()) {
      std::vector<matvae::ScoresByM> scores;
      std::vector<std::string> names;
      for (const auto& [name, c] : f["candidates"].items()) {
        names.push_back(name);
        matvae::ScoresByM s;
        for (const auto& [m, x] : c["metrics"].items())
          if (key == "all" || key == m)
            s[std::stoll(m)] = {x["probe"].get<double>(), x["knn1"].get<double>(), x["recon"].get<double>()};
        scores.push_back(s);
      }
      EXPECT_EQ(chosen, names[matvae::choose_candidate(matvae::regrets(scores))]) << key;
    }
  }
  EXPECT_EQ(a["mrl_variant"]["toy"], rec["mrl-mmd"]["chosen"]["all"]);
  const auto report_bytes = matvae_test::read_bytes(dir() / "a" / "REPORT.md");
  const std::string report(report_bytes.begin(), report_bytes.end());
  EXPECT_TRUE(contains(report, "## Appendix: tuning"));
  for (const auto& c : matvae::family("mmd").candidates) EXPECT_TRUE(contains(report, "`" + c.name + "`")) << c.name;
}

}  // namespace
