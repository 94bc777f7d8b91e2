// The experiment's numbers held to a recorded results.json: the tiny profile on a synthetic data
// set (the same bytes test_util.h writes everywhere) must give exactly the numbers of
// tests/golden/toy-tiny-results.json, timing and build fields aside. It guards refactoring: a change
// meant to keep behaviour must keep every number to the last bit. A change meant to alter numbers
// records a new file (MATVAE_UPDATE_GOLDEN=1) and says why in its commit.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kGolden = fs::path(MATVAE_SOURCE_DIR) / "tests" / "golden" / "toy-tiny-results.json";

/// results.json without what varies from run to run (timing, machine, build) or describes rather
/// than measures (the report's row titles and variant descriptions).
json comparable(json doc) {
  for (const char* key : {"machine", "wall_seconds", "train_times", "tool", "commit", "provenance", "row_titles",
                          "variant_descriptions", "candidate_descriptions"})
    doc.erase(key);
  for (auto& [name, m] : doc["models"].items()) {
    m.erase("train_seconds");
    m.erase("trained_by");
  }
  return doc;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

TEST(Golden, TinyExperimentGivesTheRecordedNumbers) {
  matvae_test::TempDir tmp;
  matvae_test::write_small_idx_folder(tmp / "data" / "toy", 600, 100, 28, 28, 10);
  // A relative data root, so that the data path in every config (and so every run folder's name)
  // is the same wherever the test runs.
  const auto r = matvae_test::run_matvae({"experiment", "--profile", "tiny", "--datasets", "toy", "--data-root", "data",
                                          "--dims", "2,4,8", "--threads", "1", "--jobs", "1", "--quiet", "--out", "out"},
                                         tmp.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(tmp / "out" / "results.json");
  const json got = comparable(json::parse(in));
  if (std::getenv("MATVAE_UPDATE_GOLDEN")) {
    json golden;
    golden["recorded_by"] = "MATVAE_UPDATE_GOLDEN";
    golden["cpu"] = cpu_model();
    golden["results_json"] = got;
    std::ofstream(kGolden) << golden.dump(1) << "\n";
    GTEST_SKIP() << "recorded " << kGolden;
  }
  std::ifstream golden_in(kGolden);
  ASSERT_TRUE(golden_in) << "cannot read " << kGolden;
  const json golden = json::parse(golden_in);
  // Float results are bit-exact only with the same BLAS kernels, which OpenBLAS picks per processor.
  if (golden["cpu"] != cpu_model())
    GTEST_SKIP() << "the golden numbers were recorded on a " << golden["cpu"] << ", this is a " << cpu_model()
                 << ": OpenBLAS's kernels (and so the last bits) differ";
  const json want = golden["results_json"];
  EXPECT_EQ(got["configs"], want["configs"]);
  EXPECT_EQ(got["models"], want["models"]);
  EXPECT_EQ(got["tuning"], want["tuning"]);
  for (const auto& [dataset, rows] : want["results"].items())
    for (const auto& [row, per_m] : rows.items())
      for (const auto& [m, per_seed] : per_m.items()) {
        SCOPED_TRACE(dataset + " " + row + " m=" + m);
        EXPECT_EQ(got["results"][dataset][row][m], per_seed);
      }
  json rest = got, want_rest = want;  // and nothing else moved
  for (const char* key : {"configs", "models", "tuning", "results"}) {
    rest.erase(key);
    want_rest.erase(key);
  }
  EXPECT_EQ(rest, want_rest);
}

}  // namespace
