// What every micro-benchmark of bench/ shares: a result is checked against its plain path before
// anything is timed, and a benchmark whose check fails reports an error instead of a time.
#pragma once

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "matvae/util/threads.h"

namespace matvae_bench {

/// Largest absolute difference of two tensors, in float64.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

/// True if `fast` is within `tol` of `plain`; otherwise the benchmark is marked failed with the
/// difference, and the caller returns without timing.
inline bool checked(benchmark::State& state, const torch::Tensor& fast, const torch::Tensor& plain, double tol,
                    const std::string& what) {
  if (fast.sizes() != plain.sizes()) {
    state.SkipWithError((what + ": the fast and the plain path give different shapes").c_str());
    return false;
  }
  const double d = max_diff(fast, plain);
  if (!(d <= tol)) {
    state.SkipWithError((what + ": fast path differs from the plain one by " + std::to_string(d)).c_str());
    return false;
  }
  return true;
}

/// The LibTorch thread counts every kernel is timed at (each benchmark's last argument, "threads").
/// matvae's kernels split their rows with at::parallel_for, which splits only in code built with
/// OpenMP; matvae once was not, and its kernels ran on one thread of two. Both counts side by side show
/// whether a kernel uses the second core.
inline const std::vector<int64_t> kThreads = {1, 2};

/// `threads` LibTorch threads, seeded inputs, and freed memory kept in the heap as training keeps it
/// (large buffers reused, not faulted in anew): each benchmark measures the kernel alone, the same
/// every run.
inline void setup(uint64_t seed, int64_t threads) {
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(seed);
  matvae::keep_freed_memory();
}

}  // namespace matvae_bench
