// Version strings, the BLAS speed check and the busy-machine check.
#include "matvae/util/machine.h"

#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include MATVAE_COMMIT_HEADER  // MATVAE_GIT_COMMIT, rewritten by every build (cmake/git_commit.cmake)

namespace matvae {

std::string git_commit() { return MATVAE_GIT_COMMIT; }

std::string version_string() { return fmt::format("matvae {} (commit {})", MATVAE_VERSION, MATVAE_GIT_COMMIT); }

std::string blas_libraries() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> found;
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = path.substr(path.rfind('/') + 1);
    if (file.find("blas") != std::string::npos || file.find("mkl") != std::string::npos) found.insert(path);
  }
  if (found.empty()) return "unknown";
  std::string out;
  for (const auto& f : found) out += (out.empty() ? "" : ", ") + f;
  return out;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

double measure_matmul_gflops(int64_t n, double seconds) {
  torch::NoGradGuard no_grad;
  const auto a = torch::rand({n, n});
  const auto b = torch::rand({n, n});
  auto c = torch::empty({n, n});
  torch::mm_out(c, a, b);  // warm-up: thread pool start, page faults
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t reps = 0;
  double elapsed = 0;
  do {
    torch::mm_out(c, a, b);
    ++reps;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds);
  return 2.0 * n * n * n * reps / elapsed / 1e9;
}

std::string blas_warning() {
  // Reference BLAS manages ~1-3 GFLOP/s per core here; OpenBLAS 40+. Measured on one thread in
  // that thread's CPU time, so a busy shared machine does not raise a false alarm.
  constexpr double kMinGflops = 8.0;
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::NoGradGuard no_grad;
  constexpr int64_t n = 256;
  const auto a = torch::rand({n, n}), b = torch::rand({n, n});
  auto c = torch::empty({n, n});
  torch::mm_out(c, a, b);
  const double start = thread_cpu_seconds();
  int64_t reps = 0;
  while (thread_cpu_seconds() - start < 0.05) {
    torch::mm_out(c, a, b);
    ++reps;
  }
  const double g = 2.0 * n * n * n * reps / (thread_cpu_seconds() - start) / 1e9;
  torch::set_num_threads(threads);
  if (g >= kMinGflops) return {};
  return fmt::format(
      "warning: float32 matrix products run at {:.1f} GFLOP/s, far below an optimised BLAS; "
      "install one with `apt-get install libopenblas0-openmp` (scripts/setup does) for ~10x faster training",
      g);
}

// ---------------------------------------------------------------- busy machine

namespace {

/// Busy clock ticks of all cores together: /proc/stat's first line less idle and iowait.
bool machine_busy_ticks(double& ticks) {
  std::ifstream in("/proc/stat");
  std::string label;
  if (!(in >> label) || label != "cpu") return false;
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  double v[8];
  for (double& x : v)
    if (!(in >> x)) return false;
  ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return true;
}

/// This process's user + system clock ticks, all threads: /proc/self/stat fields 14 and 15.
bool self_ticks(double& ticks) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t paren = line.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return false;
  std::istringstream fields(line.substr(paren + 1));
  std::string field;
  double utime = 0, stime = 0;
  for (int k = 3; k <= 15; ++k) {  // field 3 (state) is the first after the name
    if (!(fields >> field)) return false;
    if (k == 14) utime = std::atof(field.c_str());
    if (k == 15) stime = std::atof(field.c_str());
  }
  ticks = utime + stime;
  return true;
}

}  // namespace

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

CpuTimes cpu_times() {
  CpuTimes t;
  t.wall = steady_seconds();
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  double machine = 0, self = 0;
  if (hz <= 0 || !machine_busy_ticks(machine) || !self_ticks(self)) return t;
  t.machine = machine / hz;
  t.self = self / hz;
  t.ok = true;
  return t;
}

int64_t online_cores() { return std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN)); }

double others_busy_cores(const CpuTimes& since, const CpuTimes& now) {
  const double seconds = now.wall - since.wall;
  if (!since.ok || !now.ok || seconds < 1.0) return -1;
  // Every core's busy time less this process's own (its spinning included).
  return std::max(0.0, (now.machine - since.machine) - (now.self - since.self)) / seconds;
}

std::string busy_machine_warning(const CpuTimes& since, const CpuTimes& now, int64_t threads, int64_t cores,
                                 bool split_operations) {
  const double seconds = now.wall - since.wall;
  const double others = others_busy_cores(since, now);
  if (others < 0 || threads <= 1) return {};
  const double free = std::max(0.0, static_cast<double>(cores) - others);
  if (static_cast<double>(threads) <= free + 0.5) return {};
  const int64_t fit = std::max<int64_t>(1, static_cast<int64_t>(std::floor(free + 0.5)));
  const std::string on_fit = fit == 1 ? "1 thread" : fmt::format("{} threads", fit);
  if (split_operations)
    return fmt::format(
        "warning: other processes kept {:.1f} of the {} cores busy over the last {:.0f} s: on {} threads that share "
        "cores with them, LibTorch's OpenMP threads spin while they wait for one another, and training runs several "
        "times slower than on {}; --threads {} (or --parallel batch) avoids it",
        others, cores, seconds, threads, on_fit, fit);
  return fmt::format(
      "warning: other processes kept {:.1f} of the {} cores busy over the last {:.0f} s: {} threads that share cores "
      "with them train no faster than {}; --threads {} does as well and leaves the others their cores",
      others, cores, seconds, threads, on_fit, fit);
}

}  // namespace matvae
