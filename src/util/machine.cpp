// Version strings and the BLAS speed check.
#include "matvae/util/machine.h"

#include <torch/torch.h>

#include <chrono>

#include <fmt/format.h>

namespace matvae {

std::string git_commit() { return MATVAE_GIT_COMMIT; }

std::string version_string() { return fmt::format("matvae {} (commit {})", MATVAE_VERSION, MATVAE_GIT_COMMIT); }

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
  // Reference BLAS manages ~1-3 GFLOP/s per core here; OpenBLAS 40+. 8 separates them with margin
  // even on a busy shared machine.
  constexpr double kMinGflops = 8.0;
  const double g = measure_matmul_gflops(256, 0.1);
  if (g >= kMinGflops) return {};
  return fmt::format(
      "warning: float32 matrix products run at {:.1f} GFLOP/s, far below an optimised BLAS; "
      "install one with `apt-get install libopenblas0-openmp` (scripts/setup does) for ~10x faster training",
      g);
}

}  // namespace matvae
