// The busy-machine check: CPU-time readings from /proc, the warning's decision from two readings,
// and `matvae train` saying it when another process holds a core its threads need.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "matvae/util/machine.h"
#include "test_util.h"

namespace {

using namespace matvae_test;

/// Two readings `seconds` apart in which the machine's cores were busy for `machine` and this
/// process for `self` seconds of CPU time.
std::pair<matvae::CpuTimes, matvae::CpuTimes> readings(double seconds, double machine, double self) {
  matvae::CpuTimes a, b;
  a.ok = b.ok = true;
  a.wall = 100.0, a.machine = 5000.0, a.self = 20.0;
  b.wall = a.wall + seconds, b.machine = a.machine + machine, b.self = a.self + self;
  return {a, b};
}

TEST(BusyMachine, WarnsWhenOthersHoldACoreTheThreadsNeed) {
  // 2 s on 2 cores: this process used 2 s (its threads, spinning included), the others 2 s: one core.
  const auto [a, b] = readings(2.0, 4.0, 2.0);
  const std::string w = matvae::busy_machine_warning(a, b, 2, 2, true);
  EXPECT_EQ(w.rfind("warning: ", 0), 0u) << w;
  EXPECT_NE(w.find("kept 1.0 of the 2 cores"), std::string::npos) << w;
  EXPECT_NE(w.find("--threads 1"), std::string::npos) << w;
  EXPECT_EQ(w.find('\n'), std::string::npos) << "one line: " << w;
  EXPECT_NE(w.find("spin"), std::string::npos) << w;  // threads that split operations: an OpenMP team
  // Threads that are ranks (--parallel batch) sleep while they wait: no faster, not several times slower.
  const std::string ranks = matvae::busy_machine_warning(a, b, 2, 2, false);
  EXPECT_NE(ranks.find("no faster than 1 thread"), std::string::npos) << ranks;
  EXPECT_NE(ranks.find("--threads 1"), std::string::npos) << ranks;
  EXPECT_EQ(ranks.find("spin"), std::string::npos) << ranks;
}

TEST(BusyMachine, SuggestsTheThreadsTheFreeCoresHold) {
  // 8 cores, 8 threads, others busy on 3 cores: 5 are free.
  const auto [a, b] = readings(4.0, 4.0 * 8, 4.0 * 5);
  const std::string w = matvae::busy_machine_warning(a, b, 8, 8, true);
  EXPECT_NE(w.find("kept 3.0 of the 8 cores"), std::string::npos) << w;
  EXPECT_NE(w.find("--threads 5"), std::string::npos) << w;
}

TEST(BusyMachine, QuietWhenTheThreadsFitOrTheReadingsCannotTell) {
  // Others at 0.3 of a core beside 2 threads on 2 cores: under the half core that counts.
  auto [a, b] = readings(2.0, 2.0 * 1.7 + 0.6, 2.0 * 1.7);
  EXPECT_EQ(matvae::busy_machine_warning(a, b, 2, 2, true), "");
  // Others on a whole core, but this process runs 1 thread, or 4 threads on 8 cores: each has one.
  std::tie(a, b) = readings(2.0, 4.0, 2.0);
  EXPECT_EQ(matvae::busy_machine_warning(a, b, 1, 2, true), "");
  EXPECT_EQ(matvae::busy_machine_warning(a, b, 4, 8, true), "");
  // Under a second apart, or a reading that failed: no verdict.
  std::tie(a, b) = readings(0.5, 1.0, 0.5);
  EXPECT_EQ(matvae::busy_machine_warning(a, b, 2, 2, true), "");
  std::tie(a, b) = readings(2.0, 4.0, 2.0);
  b.ok = false;
  EXPECT_EQ(matvae::busy_machine_warning(a, b, 2, 2, true), "");
}

/// Burns `seconds` of this thread's CPU time.
void burn(double seconds) {
  const double start = matvae::thread_cpu_seconds();
  volatile double x = 0;
  while (matvae::thread_cpu_seconds() - start < seconds) x = x + 1.0;
}

TEST(BusyMachine, ReadingsCountThisProcessWithinTheMachine) {
  const auto a = matvae::cpu_times();
  if (!a.ok) GTEST_SKIP() << "/proc/stat or /proc/self/stat cannot be read here";
  burn(0.3);
  const auto b = matvae::cpu_times();
  ASSERT_TRUE(b.ok);
  EXPECT_GT(b.wall, a.wall);
  // Clock ticks are 10 ms, and the two files account them separately: allow several either way.
  EXPECT_GE(b.self - a.self, 0.25);
  EXPECT_GE(b.machine - a.machine, (b.self - a.self) - 0.1);
  EXPECT_GE(matvae::online_cores(), 1);
}

/// A process that keeps one core busy until this object goes away.
class BusyCore {
 public:
  BusyCore() : pid_(fork()) {
    if (pid_ == 0)
      for (volatile uint64_t i = 0;; i = i + 1) {
      }
  }
  ~BusyCore() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return pid_ > 0; }

 private:
  pid_t pid_;
};

class BusyTrain : public TempDirTest {};

TEST_F(BusyTrain, TrainSaysWhenAnotherProcessHoldsACoreItsThreadsNeed) {
  if (!matvae::cpu_times().ok) GTEST_SKIP() << "/proc cannot be read here";
  const int64_t cores = matvae::online_cores();
  if (cores < 2) GTEST_SKIP() << "one core: no thread team to share it";
  const fs::path data = dir() / "data";
  write_small_idx_folder(data, 4000, 12, 28, 28);
  matvae::ProcessResult r;
  {
    // One core busy while matvae trains on every core: its threads cannot each have one. About
    // 3 s of training here beside the busy core (0.6 s on an idle machine); the check comes 1 s in.
    const BusyCore busy;
    ASSERT_TRUE(busy.ok());
    r = run_matvae({"train", "--model", "vae", "--data", data.string(), "--epochs", "2", "--batch-size", "64",
                    "--threads", std::to_string(cores), "--out", (dir() / "run").string()});
  }
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: other processes kept"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--threads"), std::string::npos) << r.output;
}

}  // namespace
