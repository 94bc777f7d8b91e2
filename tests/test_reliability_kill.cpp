// Kill and resume: a small training run of the matvae binary (synthetic data, a checkpoint every few
// steps) is killed with SIGKILL at seeded random moments, at least ten times, and resumed each time
// with `matvae train --resume`. Every checkpoint on disk stays readable, and the finished run's
// metrics.jsonl and pictures equal those of an uninterrupted run with the same seed.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
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

TEST(KillAndResume, TenKillsEndExactlyLikeAnUninterruptedRun) {
  TempDir tmp;
  write_small_idx_folder(tmp / "data", 600, 100, 28, 28, 10);
  auto train = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "--data", (tmp / "data").string(), "--model", "mrl-mmd", "--latent", "8",
                                    "--hidden", "128", "--batch-size", "20", "--epochs", "12", "--seed", "3",
                                    "--threads", "1", "--checkpoint-every", "4", "--quiet", "--out", out.string()};
  };
  auto resume = [](const fs::path& run) { return std::vector<std::string>{"train", "--resume", run.string(), "--quiet"}; };

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
    const pid_t pid = spawn_matvae(started ? resume(parts) : train(parts), tmp / "log.txt");
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
    ::kill(pid, SIGKILL);
    int signal = 0;
    const int code = matvae::wait_process(pid, &signal);
    if (signal == SIGKILL) {
      ++kills;
      epochs_at_kills += " " + std::to_string(metrics(parts).size());
    } else {
      const auto log = read_bytes(tmp / "log.txt");
      ASSERT_EQ(code, 0) << "a run that was not killed failed: " << std::string(log.begin(), log.end());
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

}  // namespace
