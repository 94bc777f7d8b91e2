// Version strings and the BLAS speed check.
#include "matvae/util/machine.h"

#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
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
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  };
  const double start = cpu_now();
  int64_t reps = 0;
  while (cpu_now() - start < 0.05) {
    torch::mm_out(c, a, b);
    ++reps;
  }
  const double g = 2.0 * n * n * n * reps / (cpu_now() - start) / 1e9;
  torch::set_num_threads(threads);
  if (g >= kMinGflops) return {};
  return fmt::format(
      "warning: float32 matrix products run at {:.1f} GFLOP/s, far below an optimised BLAS; "
      "install one with `apt-get install libopenblas0-openmp` (scripts/setup does) for ~10x faster training",
      g);
}

}  // namespace matvae
