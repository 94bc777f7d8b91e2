// Thread count and subnormal flushing; see threads.h.
#include "matvae/util/threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "matvae/util/work_pool.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace matvae {

void keep_freed_memory() {
#ifdef __GLIBC__
  static std::once_flag once;
  std::call_once(once, [] {
    // glibc serves blocks above its mmap threshold (128 KiB at first, rising with what is freed) from
    // fresh mappings and returns freed heap tops above 128 KiB to the system, so a step's activations
    // ([prefixes x batch, 784] floats, 4.8 MB at batch 256) were mapped, zero-filled page by page and
    // unmapped again on every step: 22% of an MRL-MMD-VAE step was the kernel's page faults, and
    // batch 256 ran 2.5x slower per image than batch 128. Fixed thresholds keep those blocks in the
    // heap for the next step; the peak memory stays the same (measured: 527 MB either way).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit systems
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  });
#endif
}

int64_t thread_count(int64_t n) { return n > 0 ? n : std::max<int64_t>(1, std::thread::hardware_concurrency()); }

void set_threads(int64_t n) {
  keep_freed_memory();
  const int64_t threads = thread_count(n);
  torch::set_num_threads(static_cast<int>(threads));
  // The flush mode is per OS thread (MXCSR): set it here and once on each thread of this thread's
  // OpenMP team, which keeps its threads for the team's later parallel regions.
  at::globalContext().setFlushDenormal(true);
  at::parallel_for(0, threads, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
}

void run_one_thread_each(size_t n, const std::function<void(size_t)>& task) {
  const int64_t threads = torch::get_num_threads();
  if (threads <= 1 || n == 0) {
    for (size_t i = 0; i < n; ++i) task(i);
    return;
  }
  const bool grad = at::GradMode::is_enabled();  // thread-local: the workers start with it on
  std::atomic<bool> halt{false};
  WorkPoolOptions options;
  options.workers = std::min<int64_t>(threads, static_cast<int64_t>(n));
  options.setup = [grad] {
    set_threads(1);
    at::GradMode::set_enabled(grad);
  };
  run_work_pool(n, task, halt, options);
}

}  // namespace matvae
