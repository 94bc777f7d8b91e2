// End to end: a tiny experiment (a subset, 1 epoch, two values of m, both data sets) writes a
// results.json with every row and metric and a REPORT.md whose numbers are those of results.json;
// a rerun reuses every cached model; `matvae eval` and `matvae encode` work on its runs.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <tuple>

#include "matvae/experiment/experiment.h"
#include "matvae/experiment/plan.h"
#include "matvae/experiment/tuning.h"
#include "matvae/report/report.h"
#include "matvae/util/error.h"
#include "matvae/util/machine.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using matvae_test::contains;

std::string read_text(const fs::path& p) {
  const auto b = matvae_test::read_bytes(p);
  return std::string(b.begin(), b.end());
}

/// REPORT.md as `matvae report` writes it from `doc` (a results.json edited by a test).
std::string report_of(const json& doc) {
  matvae_test::TempDir dir;
  matvae_test::write_bytes(dir.path() / "results.json", doc.dump());
  matvae::write_report(dir.path() / "results.json", dir.path());
  return read_text(dir.path() / "REPORT.md");
}

class ExperimentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path data = fs::path(MATVAE_SOURCE_DIR) / "data";
    if (!fs::exists(data / "mnist") || !fs::exists(data / "fashion-mnist")) return;
    out_ = std::make_unique<matvae_test::TempDir>();
    matvae::ExperimentOptions o;
    o.profile = "tiny";
    o.dims = {2, 8};
    o.data_root = data;
    o.out = out_->path() / "results";
    o.threads = 1;
    const auto t0 = std::chrono::steady_clock::now();
    matvae::run_experiment(o);
    first_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  static void TearDownTestSuite() { out_.reset(); }
  void SetUp() override {
    if (!out_) GTEST_SKIP() << "data/mnist or data/fashion-mnist missing: run `build/matvae data fetch`";
  }
  static fs::path results() { return out_->path() / "results"; }

  static inline std::unique_ptr<matvae_test::TempDir> out_;
  static inline double first_seconds_ = 0;
};

TEST_F(ExperimentTest, ResultsJsonHasEveryRowAndMetric) {
  const json doc = json::parse(read_text(results() / "results.json"));
  EXPECT_FALSE(doc["commit"].get<std::string>().empty());
  EXPECT_TRUE(doc["machine"].contains("cores"));
  EXPECT_TRUE(contains(doc["machine"]["blas"].get<std::string>(), "blas")) << doc["machine"].dump();
  for (const char* dataset : {"mnist", "fashion-mnist"}) {
    for (const auto& row : matvae::experiment_rows()) {
      for (const char* m : {"2", "8"}) {
        SCOPED_TRACE(fmt::format("{} {} m={}", dataset, row, m));
        ASSERT_TRUE(doc["results"][dataset][row].contains(m));
        const json& v = doc["results"][dataset][row][m]["0"];
        for (const char* metric : {"probe", "knn1", "knn5", "mse"}) {
          ASSERT_TRUE(v.contains(metric)) << metric;
          EXPECT_TRUE(v[metric].is_number()) << metric;
        }
        const double probe = v["probe"].get<double>();
        EXPECT_GT(probe, 0.15);  // well above the 0.10 of chance, even this tiny
        EXPECT_LE(probe, 1.0);
        if (row != "pca" && row != "mmd-svd") {
          EXPECT_TRUE(v.contains("recon"));
          EXPECT_TRUE(v.contains("mmd"));
        }
        if (row == "vae-at-m" || row == "mrl-vae") EXPECT_TRUE(v.contains("neg_elbo"));
      }
    }
    EXPECT_TRUE(doc["train_times"][dataset]["0"].contains("mrl_mmd_seconds"));
    for (const char* f : {"probe_", "knn1_", "recon_", "scatter_m2_"})
      EXPECT_TRUE(fs::exists(results() / (std::string(f) + dataset + ".svg"))) << f << dataset;
    for (const char* f : {"recon_", "samples_"})
      EXPECT_TRUE(fs::exists(results() / (std::string(f) + dataset + ".png"))) << f << dataset;
  }
}

TEST_F(ExperimentTest, ReportNumbersAreThoseOfResultsJson) {
  const json doc = json::parse(read_text(results() / "results.json"));
  const std::string md = read_text(results() / "REPORT.md");
  EXPECT_TRUE(contains(md, doc["commit"].get<std::string>()));
  // Both data sets are the official files, verified.
  EXPECT_TRUE(contains(md, "Data: `" + (fs::path(MATVAE_SOURCE_DIR) / "data" / "fashion-mnist").string() +
                               "`, the official files"));
  // Every probe-table line: "| m | v1 | v2 | ... |" must equal the JSON, formatted to 3 places.
  for (const char* dataset : {"mnist", "fashion-mnist"}) {
    const std::string heading = std::string("## ") + (std::string(dataset) == "mnist" ? "MNIST" : "Fashion-MNIST");
    const size_t at = md.find(heading + "\n");
    ASSERT_NE(at, std::string::npos) << heading;
    const size_t table = md.find("### Linear-probe test accuracy", at);
    ASSERT_NE(table, std::string::npos);
    std::istringstream lines(md.substr(table));
    std::string line, header;
    std::getline(lines, line);  // title
    std::getline(lines, line);  // blank
    std::getline(lines, header);
    std::vector<std::string> cols;
    std::regex cell_re(R"(\|\s*([^|]+?)\s*(?=\|))");
    for (auto it = std::sregex_iterator(header.begin(), header.end(), cell_re); it != std::sregex_iterator(); ++it)
      cols.push_back((*it)[1]);
    ASSERT_EQ(cols.size(), 1 + matvae::experiment_rows().size());
    std::getline(lines, line);  // | --- |
    int checked = 0;
    for (int r = 0; r < 2; ++r) {
      std::getline(lines, line);
      std::vector<std::string> cells;
      for (auto it = std::sregex_iterator(line.begin(), line.end(), cell_re); it != std::sregex_iterator(); ++it)
        cells.push_back((*it)[1]);
      ASSERT_EQ(cells.size(), cols.size()) << line;
      for (size_t c = 1; c < cols.size(); ++c) {
        const double v = doc["results"][dataset][cols[c]][cells[0]]["0"]["probe"].get<double>();
        EXPECT_EQ(cells[c], fmt::format("{:.3f}", v)) << dataset << " " << cols[c] << " m=" << cells[0];
        ++checked;
      }
    }
    EXPECT_EQ(checked, 2 * static_cast<int>(matvae::experiment_rows().size()));
  }
  EXPECT_TRUE(contains(md, "### Verdict (MNIST)"));
  // The target sentence follows the numbers: it names exactly the m where MRL's probe and 1-NN are at
  // least the separate model's and its reconstruction within 2 nats.
  for (const char* dataset : {"mnist", "fashion-mnist"}) {
    std::vector<std::string> met;
    for (const char* m : {"2", "8"}) {
      const auto& a = doc["results"][dataset]["mrl-mmd"][m]["0"];
      const auto& b = doc["results"][dataset]["mmd-at-m"][m]["0"];
      if (a["probe"].get<double>() >= b["probe"].get<double>() && a["knn1"].get<double>() >= b["knn1"].get<double>() &&
          a["recon"].get<double>() <= b["recon"].get<double>() + 2)
        met.push_back(m);
    }
    const std::string heading = std::string("## ") + (std::string(dataset) == "mnist" ? "MNIST" : "Fashion-MNIST") + "\n";
    const std::string section = md.substr(md.find(heading));
    const std::string expected = met.empty() ? "met at no m." : "met at m = " + fmt::format("{}.", fmt::join(met, ", "));
    EXPECT_TRUE(contains(section.substr(0, section.find("**Training time.**")), expected)) << dataset << ": " << expected;
  }
  EXPECT_TRUE(contains(md, "Settings (the profile's, not tuned): mrl-mmd: `naive`"));

  // `matvae report` writes the same page again from results.json alone.
  matvae_test::TempDir again;
  for (const auto& e : fs::directory_iterator(results()))  // the pictures the experiment drew
    if (e.path().extension() == ".png" || e.path().filename().string().rfind("scatter_", 0) == 0)
      fs::copy_file(e.path(), again.path() / e.path().filename());
  const auto r = matvae_test::run_matvae(
      {"report", "--results", (results() / "results.json").string(), "--out", again.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_text(again.path() / "REPORT.md"), md);
  EXPECT_TRUE(fs::exists(again.path() / "probe_mnist.svg"));
}

TEST_F(ExperimentTest, ReportSaysHowBusyOtherProcessesKeptTheCores) {
  // results.json records the cores other processes kept busy over the run (from /proc, beside this
  // process's own CPU time); the report states it, and above a quarter of the cores warns that the
  // times are inflated.
  json doc = json::parse(read_text(results() / "results.json"));
  const json& machine = doc["machine"];
  ASSERT_TRUE(machine.contains("others_busy_cores")) << machine.dump();
  EXPECT_GE(machine["others_busy_cores"].get<double>(), 0.0);
  EXPECT_LE(machine["others_busy_cores"].get<double>(), machine["cores"].get<double>() + 0.1);
  EXPECT_TRUE(contains(read_text(results() / "REPORT.md"), "Other processes kept "));
  const auto report_with = [&](double others, double load) {
    doc["machine"]["cores"] = 2;
    doc["machine"]["load_average_start"] = load;
    if (others >= 0)
      doc["machine"]["others_busy_cores"] = others;
    else
      doc["machine"].erase("others_busy_cores");  // results of an earlier release: the load average decides
    return report_of(doc);
  };
  const std::string busy = report_with(1.5, 0.0);
  EXPECT_TRUE(contains(busy, "**Timing caveat.** Other processes kept 1.5 of the 2 cores busy while the experiment ran"))
      << busy.substr(0, 2000);
  const std::string quiet = report_with(0.1, 3.0);  // measured over the run, not the lagging load average
  EXPECT_TRUE(contains(quiet, "Other processes kept 0.10 of the 2 cores busy while the experiment ran."));
  EXPECT_FALSE(contains(quiet, "Timing caveat"));
  EXPECT_TRUE(contains(report_with(-1, 3.0), "**Timing caveat.** The machine's load average was 3.0"));
  EXPECT_FALSE(contains(report_with(-1, 0.5), "Timing caveat"));
}

TEST_F(ExperimentTest, TargetSentenceSaysWhereTheSeedsRuleTheTargetOut) {
  // Two seeds, made up: at m = 2 the Matryoshka probe is short by 9-10 points in both (the interval
  // rules the target out); at m = 8 it is short by half a point on average, +5 and -6 by seed (within
  // the spread). 1-NN and reconstruction equal: met.
  json doc = json::parse(read_text(results() / "results.json"));
  doc["options"]["seeds"] = {0, 1};
  const std::map<std::string, std::array<std::array<double, 2>, 2>> probe = {
      {"2", {{{0.50, 0.52}, {0.60, 0.61}}}}, {"8", {{{0.80, 0.90}, {0.86, 0.85}}}}};
  for (const auto& [m, v] : probe)
    for (int r = 0; r < 2; ++r) {
      json& row = doc["results"]["mnist"][r == 0 ? "mrl-mmd" : "mmd-at-m"][m];
      row["1"] = row["0"];
      for (int seed = 0; seed < 2; ++seed) {
        row[std::to_string(seed)]["probe"] = v[r][seed];
        row[std::to_string(seed)]["knn1"] = 0.7;
        row[std::to_string(seed)]["recon"] = 100.0;
      }
    }
  const std::string md = report_of(doc);
  const std::string section = md.substr(md.find("### Verdict (MNIST)"));
  EXPECT_TRUE(contains(section, "Short: linear probe at m = 2, 8, 1-NN at no m, reconstruction at no m.")) << section;
  EXPECT_TRUE(contains(section, "rules the target out at: linear probe m = 2, 1-NN no m, reconstruction no m;"))
      << section;
}

TEST_F(ExperimentTest, RerunReusesCachedModelsAndGivesTheSameResults) {
  const json before = json::parse(read_text(results() / "results.json"));
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.dims = {2, 8};
  o.data_root = fs::path(MATVAE_SOURCE_DIR) / "data";
  o.out = results();
  o.threads = 1;
  std::vector<std::string> lines;
  o.log = [&](const std::string& s) { lines.push_back(s); };
  matvae::run_experiment(o);
  for (const auto& l : lines) EXPECT_EQ(l.find("training"), std::string::npos) << l;
  const json after = json::parse(read_text(results() / "results.json"));
  EXPECT_EQ(before["results"], after["results"]);
}

TEST_F(ExperimentTest, ResultsNameTheBuildsThatTrainedAndEvaluatedEveryModel) {
  const json doc = json::parse(read_text(results() / "results.json"));
  const std::string commit = matvae::git_commit();
  ASSERT_FALSE(commit.empty());
  size_t evaluations = 0;  // one per row, data set and seed; the rows trained at m, one per m
  for (const auto& [dataset, rows] : doc["results"].items())
    for (const auto& [row, per_m] : rows.items())
      evaluations += (row.size() > 5 && row.substr(row.size() - 5) == "-at-m" ? per_m.size() : 1) *
                     doc["options"]["seeds"].size();
  EXPECT_EQ(doc["provenance"]["models_trained_by"], json({{commit, doc["models"].size()}}));
  EXPECT_EQ(doc["provenance"]["evaluations_by"], json({{commit, evaluations}}));
  for (const auto& [name, m] : doc["models"].items()) EXPECT_EQ(m["trained_by"], json::array({commit})) << name;
  EXPECT_TRUE(contains(read_text(results() / "REPORT.md"), fmt::format("Models trained by build `{}` ({} models)",
                                                                        commit, doc["models"].size())));

  // A model trained by another build (its metrics.jsonl says so) keeps that build's name on a rerun.
  const fs::path copy = out_->path() / "provenance";
  fs::copy(results(), copy, fs::copy_options::recursive);
  const std::string run = doc["models"].begin().value()["run_dir"].get<std::string>();
  std::string metrics = read_text(copy / run / "metrics.jsonl");
  const std::string quoted = "\"" + commit + "\"";
  ASSERT_NE(metrics.find(quoted), std::string::npos) << metrics;
  metrics.replace(metrics.find(quoted), quoted.size(), "\"0123abc\"");
  matvae_test::write_bytes(copy / run / "metrics.jsonl", metrics);
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.dims = {2, 8};
  o.data_root = fs::path(MATVAE_SOURCE_DIR) / "data";
  o.out = copy;
  o.threads = 1;
  o.log = [](const std::string&) {};
  matvae::run_experiment(o);
  const json again = json::parse(read_text(copy / "results.json"));
  EXPECT_EQ(again["models"].begin().value()["trained_by"], json::array({"0123abc"}));
  EXPECT_EQ(again["provenance"]["models_trained_by"]["0123abc"], 1);
  EXPECT_EQ(again["provenance"]["models_trained_by"][commit], doc["models"].size() - 1);
  const std::string md = read_text(copy / "REPORT.md");
  EXPECT_TRUE(contains(md, "`0123abc` (1 model)"));
  EXPECT_TRUE(contains(md, "trained by 2 different builds"));
  EXPECT_FALSE(contains(read_text(results() / "REPORT.md"), "different builds"));
}

TEST_F(ExperimentTest, DamagedCachedResultIsReportedNotUsed) {
  // Copy the results folder, damage one cached evaluation, rerun: a clear error naming it.
  const fs::path copy = out_->path() / "copy";
  fs::copy(results(), copy, fs::copy_options::recursive);
  fs::path victim;
  for (const auto& e : fs::recursive_directory_iterator(copy / "runs"))
    if (e.path().filename().string().rfind("eval-mrl-mmd", 0) == 0) victim = e.path();
  ASSERT_FALSE(victim.empty());
  std::string text = read_text(victim);
  // Change one digit of the first probe accuracy: still valid JSON, so only the checksum can tell.
  const size_t p = text.find('.', text.find("\"probe\":"));
  ASSERT_NE(p, std::string::npos);
  text[p + 1] = text[p + 1] == '1' ? '2' : '1';
  matvae_test::write_bytes(victim, text);
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.dims = {2, 8};
  o.datasets = {"mnist", "fashion-mnist"};
  o.data_root = fs::path(MATVAE_SOURCE_DIR) / "data";
  o.out = copy;
  o.threads = 1;
  const auto msg = matvae_test::error_message<matvae::Error>([&] { matvae::run_experiment(o); });
  EXPECT_TRUE(contains(msg, victim.filename().string()));
  EXPECT_TRUE(contains(msg, "checksum"));
}

TEST_F(ExperimentTest, EncodeWritesNpyThatNumpyLoads) {
  fs::path run;
  for (const auto& e : fs::directory_iterator(results() / "runs" / "mnist"))
    if (e.path().filename().string().rfind("mrl-mmd-", 0) == 0) run = e.path();
  ASSERT_FALSE(run.empty());
  const fs::path npy = out_->path() / "codes.npy";
  const auto r = matvae_test::run_matvae({"encode", "--run", run.string(), "--data",
                                          (fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist").string(), "--dim", "4",
                                          "--out", npy.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (matvae_test::numpy_python().empty()) GTEST_SKIP() << "no python3 with NumPy (apt-get install python3-numpy)";
  const auto py = matvae::run_process(
      {matvae_test::numpy_python(), "-c",
       "import numpy as np,sys; a=np.load(sys.argv[1]); l=np.load(sys.argv[2]); "
       "print(a.dtype, a.shape, l.dtype, l.shape, int(l[:10].sum()), bool(np.isfinite(a).all()))",
       npy.string(), (out_->path() / "codes.labels.npy").string()});
  ASSERT_EQ(py.exit_code, 0) << py.output;
  EXPECT_TRUE(contains(py.output, "float32 (10000, 4) int64 (10000,)"));
  // MNIST's first ten test labels are 7 2 1 0 4 1 4 9 5 9.
  EXPECT_TRUE(contains(py.output, std::to_string(7 + 2 + 1 + 0 + 4 + 1 + 4 + 9 + 5 + 9) + " True"));
  const auto bad = matvae_test::run_matvae({"encode", "--run", run.string(), "--data",
                                            (fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist").string(), "--dim", "99",
                                            "--out", npy.string()});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "--dim"));

  // The codes and the evaluation are the same bits at any thread count (eval/code_metrics.h).
  const fs::path npy2 = out_->path() / "codes2.npy";
  const auto r2 = matvae_test::run_matvae({"encode", "--run", run.string(), "--data",
                                           (fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist").string(), "--dim", "4",
                                           "--out", npy2.string(), "--threads", "1"});
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_EQ(matvae_test::read_bytes(npy), matvae_test::read_bytes(npy2));  // every core (2 here) and 1

  const auto ev = matvae_test::run_matvae({"eval", "--run", run.string(), "--threads", "1"});
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto one = matvae_test::read_bytes(run / "eval.json");
  const auto ev2 = matvae_test::run_matvae({"eval", "--run", run.string(), "--threads", "2"});
  ASSERT_EQ(ev2.exit_code, 0) << ev2.output;
  EXPECT_EQ(matvae_test::read_bytes(run / "eval.json"), one);
}

TEST(ExperimentOptionsTest, JobsAndThreadsOutOfRangeAreUsageErrorsNamingTheFlag) {
  matvae_test::TempDir tmp;
  for (const auto& [jobs, threads, flag] : {std::tuple<int64_t, int64_t, std::string>{-1, 0, "--jobs"},
                                            {2000, 0, "--jobs"},
                                            {0, -2, "--threads"}}) {
    matvae::ExperimentOptions o;
    o.profile = "tiny";
    o.jobs = jobs;
    o.threads = threads;
    o.data_root = tmp.path() / "none";
    o.out = tmp.path() / "results";
    const auto msg = matvae_test::error_message<matvae::UsageError>([&] { matvae::run_experiment(o); });
    EXPECT_TRUE(contains(msg, flag)) << msg;
    EXPECT_FALSE(fs::exists(o.out)) << "nothing is written before the options are checked";
  }
}

TEST(ExperimentOptionsTest, AnUnknownScheduleOrANegativeEvalLimitIsAUsageErrorNamingTheFlag) {
  matvae_test::TempDir tmp;
  matvae::ExperimentOptions o;
  o.profile = "tiny";
  o.lr_schedule = "linear";
  o.data_root = tmp.path() / "none";
  o.out = tmp.path() / "results";
  const auto msg = matvae_test::error_message<matvae::UsageError>([&] { matvae::run_experiment(o); });
  EXPECT_TRUE(contains(msg, "--lr-schedule")) << msg;
  EXPECT_TRUE(contains(msg, "linear")) << msg;
  EXPECT_FALSE(fs::exists(o.out));
  o.lr_schedule = "";
  o.eval_train_limit = -5;
  const auto limit = matvae_test::error_message<matvae::UsageError>([&] { matvae::run_experiment(o); });
  EXPECT_TRUE(contains(limit, "--eval-train-limit")) << limit;
  EXPECT_FALSE(fs::exists(o.out));
}

TEST(ExperimentPlanTest, TheMatchedRowOfAnAnnealedModelTrainsFromTheStartInsteadOfExtending) {
  // A constant-rate Matryoshka model is extended to the matched epochs from its resume state; one
  // whose rate is annealed over its epochs cannot be (an extended run would not be the longer run),
  // so its matched model is a run of its own with the longer schedule.
  matvae_test::TempDir tmp;
  for (const auto schedule : {matvae::LrSchedule::kConstant, matvae::LrSchedule::kCosine}) {
    SCOPED_TRACE(matvae::to_string(schedule));
    matvae::PlanContext ctx;
    ctx.dataset = "mnist";
    ctx.data_dir = tmp.path() / "data";
    ctx.runs = tmp.path() / "runs";
    ctx.pixels = 784;
    ctx.classes = 10;
    ctx.profile = matvae::experiment_profile("tiny");
    ctx.profile.lr_schedule = schedule;
    ctx.rows = {"mrl-mmd", "mrl-mmd-matched"};
    ctx.dims = {2, 8};
    std::vector<matvae::Task> tasks;
    const matvae::TrainTest codes;  // planning reads no data
    const matvae::ModelJob mrl = matvae::plan_seed(ctx, 0, matvae::Choice{}, codes, tasks);
    EXPECT_EQ(mrl.config.lr_schedule, schedule);
    const auto matched = std::find_if(tasks.begin(), tasks.end(), [](const auto& t) { return t.row == "mrl-mmd-matched"; });
    ASSERT_NE(matched, tasks.end());
    EXPECT_GT(matched->job.config.epochs, mrl.config.epochs);
    EXPECT_EQ(matched->job.config.lr_schedule, schedule);
    const bool constant = schedule == matvae::LrSchedule::kConstant;
    EXPECT_EQ(matched->job.extends_source, constant);
    EXPECT_EQ(matched->job.source != nullptr, constant);
  }
}

}  // namespace
