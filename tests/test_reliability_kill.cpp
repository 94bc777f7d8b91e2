// Kill and resume: a small training run of the matvae binary (synthetic data, a checkpoint every few
// steps) is killed with SIGKILL at seeded random moments, at least ten times, and resumed each time
// with `matvae train --resume`. Every checkpoint on disk stays readable, and the finished run's
// metrics.jsonl and pictures equal those of an uninterrupted run with the same seed.
// The same for `matvae experiment`, killed between and during its models and rerun each time: its
// results.json ends equal to an uninterrupted experiment's, and two uninterrupted experiments give
// byte-identical results.json, timing fields aside (determinism).
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "matvae/train/archive.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace matvae_test;
using Clock = std::chrono::steady_clock;

std::vector<nlohmann::json> metrics(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("images_per_s");
    out.push_back(j);
  }
  return out;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Runs matvae to its end; returns the wall time.
double run_to_end(const std::vector<std::string>& args) {
  const auto t = Clock::now();
  const auto r = run_matvae(args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return seconds_since(t);
}

/// Every matvae archive in the run folder loads (size and checksum verified).
::testing::AssertionResult checkpoints_readable(const fs::path& run) {
  for (const char* name : {"state.pt", "checkpoint.pt"}) {
    if (!fs::exists(run / name)) continue;
    try {
      torch::serialize::InputArchive archive;
      matvae::load_archive(archive, run / name);
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << e.what();
    }
  }
  return ::testing::AssertionSuccess();
}

/// Starts matvae with `args` and sends SIGKILL after `seconds`. Returns true if the kill ended it;
/// a run that ended first must have succeeded (its log, `log`, is shown otherwise).
bool start_and_kill(const std::vector<std::string>& args, double seconds, const fs::path& log) {
  const pid_t pid = spawn_matvae(args, log);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return false;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  ::kill(pid, SIGKILL);
  int signal = 0;
  const int code = matvae::wait_process(pid, &signal);
  if (signal == SIGKILL) return true;
  const auto out = read_bytes(log);
  EXPECT_EQ(code, 0) << "a run that was not killed failed: " << std::string(out.begin(), out.end());
  return false;
}

TEST(KillAndResume, TenKillsEndExactlyLikeAnUninterruptedRun) {
  TempDir tmp;
  write_small_idx_folder(tmp / "data", 600, 100, 28, 28, 10);
  auto train = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "--data", (tmp / "data").string(), "--model", "mrl-mmd", "--latent", "8",
                                    "--hidden", "128", "--batch-size", "20", "--epochs", "12", "--seed", "3",
                                    "--threads", "1", "--checkpoint-every", "4", "--quiet", "--out", out.string()};
  };
  auto resume = [](const fs::path& run) {
    return std::vector<std::string>{"train", "--resume", run.string(), "--quiet"};
  };

  // The reference, and the two durations the kill times are drawn from: a whole run, and the
  // start-up of a process (a resume of the finished run: load, check, rewrite the final files).
  const fs::path whole = tmp / "whole", parts = tmp / "parts";
  const double whole_s = run_to_end(train(whole));
  const double startup_s = run_to_end(resume(whole));
  const double training_s = std::max(0.1, whole_s - startup_s);

  std::mt19937 rng(20240611);
  int kills = 0, finished = 0, attempts = 0;
  std::string epochs_at_kills;  // how far the run had got at each kill, for the log
  while (kills < 10 && attempts++ < 60) {
    const bool started = fs::exists(parts / "config.toml");
    const bool done = fs::exists(parts / "checkpoint.pt");
    // During training, kill after start-up plus about a twelfth of the training time, so that the
    // kills spread over the whole run; once it has finished, within the short resume itself.
    std::uniform_real_distribution<double> delay(done ? 0.1 * startup_s : 0.5 * startup_s,
                                                 done ? 0.9 * startup_s : startup_s + training_s / 6);
    if (start_and_kill(started ? resume(parts) : train(parts), delay(rng), tmp / "log.txt")) {
      ++kills;
      epochs_at_kills += " " + std::to_string(metrics(parts).size());
    } else {
      ASSERT_FALSE(::testing::Test::HasFailure());
      ++finished;
    }
    SCOPED_TRACE("after attempt " + std::to_string(attempts));
    ASSERT_TRUE(checkpoints_readable(parts));
  }
  EXPECT_GE(kills, 10);
  // Finish the run.
  const auto r = run_matvae(fs::exists(parts / "config.toml") ? resume(parts) : train(parts));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(checkpoints_readable(parts));

  EXPECT_EQ(metrics(parts), metrics(whole));
  EXPECT_EQ(metrics(parts).size(), 12u);
  for (const char* f : {"recon.png", "samples.png", "config.toml"})
    EXPECT_EQ(read_bytes(parts / f), read_bytes(whole / f)) << f;
  for (const auto& e : fs::directory_iterator(parts))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path() << " was left behind";
  std::cerr << "kill and resume: " << kills << " kills (epochs done at each:" << epochs_at_kills << "), " << finished
            << " runs that ended before their kill; uninterrupted run " << whole_s << " s, start-up " << startup_s
            << " s\n";
}

/// results.json without what measures time or the machine: the rest must be byte-identical.
std::string without_timing(const fs::path& results_json) {
  const auto bytes = read_bytes(results_json);
  auto doc = nlohmann::ordered_json::parse(bytes.begin(), bytes.end());
  doc.erase("wall_seconds");
  doc.erase("machine");
  doc.erase("train_times");
  for (auto& [name, m] : doc["models"].items()) m.erase("train_seconds");
  return doc.dump(1);
}

struct ToyExperiment {
  TempDir tmp;
  ToyExperiment() { write_small_idx_folder(tmp / "data" / "toy", 600, 100, 28, 28, 10); }
  /// `jobs` models at once, one thread each.
  std::vector<std::string> args(const fs::path& out, int jobs = 1) const {
    const std::string n = std::to_string(jobs);
    return {"experiment", "--profile", "tiny", "--datasets", "toy", "--data-root", (tmp / "data").string(),
            "--dims", "2,4,8", "--rows", "mrl-mmd,mmd-at-m,mmd-trunc,pca", "--epochs", "20", "--threads", n,
            "--jobs", n, "--quiet", "--out", out.string()};
  }
};

TEST(Determinism, SameConfigSeedAndThreadsGiveByteIdenticalResultsJson) {
  ToyExperiment toy;
  run_to_end(toy.args(toy.tmp / "one"));
  run_to_end(toy.args(toy.tmp / "two"));
  const std::string one = without_timing(toy.tmp / "one" / "results.json");
  EXPECT_NE(one.find("\"probe\""), std::string::npos);
  EXPECT_EQ(one, without_timing(toy.tmp / "two" / "results.json"));
  // And each model's metrics.jsonl, timing fields aside.
  for (const auto& e : fs::directory_iterator(toy.tmp / "one" / "runs" / "toy")) {
    if (!e.is_directory()) continue;
    SCOPED_TRACE(e.path().filename().string());
    EXPECT_EQ(metrics(e.path()), metrics(toy.tmp / "two" / "runs" / "toy" / e.path().filename()));
  }
}

// Models trained and evaluated two at a time, one thread each, give the numbers of one at a time.
TEST(Determinism, TwoJobsGiveTheResultsJsonOfOne) {
  ToyExperiment toy;
  run_to_end(toy.args(toy.tmp / "one", 1));
  run_to_end(toy.args(toy.tmp / "two", 2));
  const std::string one = without_timing(toy.tmp / "one" / "results.json");
  EXPECT_NE(one.find("\"probe\""), std::string::npos);
  EXPECT_EQ(one, without_timing(toy.tmp / "two" / "results.json"));
}

// Two models at a time, so that kills land while two are under way.
TEST(KillAndResume, ExperimentKilledBetweenAndDuringModelsEndsLikeAnUninterruptedOne) {
  ToyExperiment toy;
  const fs::path whole = toy.tmp / "whole", parts = toy.tmp / "parts";
  const double whole_s = run_to_end(toy.args(whole, 2));
  const double startup_s = run_to_end(toy.args(whole, 2));  // a rerun that finds everything cached
  const double work_s = std::max(0.1, whole_s - startup_s);

  std::mt19937 rng(7);
  int kills = 0, attempts = 0;
  std::set<std::string> states;  // "2+": two models finished and a third under way
  std::string where;
  // Until 10 kills have landed in at least 3 different places: on a busy machine the measured times
  // that set the delays are uneven, and 10 kills alone may bunch up.
  while ((kills < 10 || states.size() < 3) && attempts++ < 60) {
    std::uniform_real_distribution<double> delay(0.3 * startup_s, startup_s + work_s / 8);
    if (start_and_kill(toy.args(parts, 2), delay(rng), toy.tmp / "log.txt")) {
      ++kills;
      // Where it was: models finished, and whether one was under way.
      int finished = 0, under_way = 0;
      if (fs::exists(parts / "runs" / "toy"))
        for (const auto& e : fs::directory_iterator(parts / "runs" / "toy"))
          if (e.is_directory()) ++(fs::exists(e.path() / "checkpoint.pt") ? finished : under_way);
      states.insert(std::to_string(finished) + (under_way ? "+" : ""));
      where += " " + std::to_string(finished) + (under_way ? "+" : "");
    }
    ASSERT_FALSE(::testing::Test::HasFailure());
    // Whatever the kill left, every finished model's archives stay readable.
    if (fs::exists(parts / "runs" / "toy"))
      for (const auto& e : fs::directory_iterator(parts / "runs" / "toy"))
        if (e.is_directory()) ASSERT_TRUE(checkpoints_readable(e.path())) << e.path();
  }
  EXPECT_GE(kills, 10);
  EXPECT_GE(states.size(), 3u) << "the kills did not spread over the models:" << where;
  run_to_end(toy.args(parts, 2));
  EXPECT_EQ(without_timing(parts / "results.json"), without_timing(whole / "results.json"));
  for (const auto& e : fs::recursive_directory_iterator(parts))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path() << " was left behind";
  std::cerr << "experiment kill and resume: " << kills << " kills in " << attempts
            << " starts (models finished at each, + = one under way:" << where << "); uninterrupted "
            << whole_s << " s, cached rerun " << startup_s << " s\n";
}

}  // namespace

namespace {

// Ctrl-C while two models train: both save their state, the process exits 130 within seconds, and
// the rerun ends with the results of an uninterrupted experiment.
TEST(Interrupt, CtrlCWithTwoJobsSavesBothModelsAndTheRerunFinishes) {
  ToyExperiment toy;
  const fs::path whole = toy.tmp / "whole", parts = toy.tmp / "parts";
  run_to_end(toy.args(whole, 2));
  const pid_t pid = spawn_matvae(toy.args(parts, 2), toy.tmp / "log.txt");
  ASSERT_GT(pid, 0);
  // Wait until two models are under way (a run folder without checkpoint.pt holding a state).
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int under_way = 0;
  while (under_way < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    under_way = 0;
    if (fs::exists(parts / "runs" / "toy"))
      for (const auto& e : fs::directory_iterator(parts / "runs" / "toy"))
        if (e.is_directory() && fs::exists(e.path() / "state.pt") && !fs::exists(e.path() / "checkpoint.pt"))
          ++under_way;
  }
  ::kill(pid, SIGINT);
  const auto sent = Clock::now();
  int signal = 0;
  const int code = matvae::wait_process(pid, &signal);
  const auto log = read_bytes(toy.tmp / "log.txt");
  const std::string text(log.begin(), log.end());
  if (code == 0) GTEST_SKIP() << "the experiment finished before two models were under way";
  ASSERT_EQ(under_way, 2);
  EXPECT_EQ(code, 130) << text;
  EXPECT_LT(seconds_since(sent), 10.0);
  EXPECT_NE(text.find("interrupted"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(parts / "results.json"));
  run_to_end(toy.args(parts, 2));
  EXPECT_EQ(without_timing(parts / "results.json"), without_timing(whole / "results.json"));
}

}  // namespace
