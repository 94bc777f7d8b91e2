// Thread count and subnormal flushing; see threads.h.
#include "matvae/util/threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace matvae {

void set_threads(int64_t n) {
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = n > 0 ? n : cores;
  torch::set_num_threads(static_cast<int>(threads));
  // The flush mode is per OS thread (MXCSR): set it here and once on each thread of this thread's
  // OpenMP team, which keeps its threads for the team's later parallel regions.
  at::globalContext().setFlushDenormal(true);
  at::parallel_for(0, threads, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
}

}  // namespace matvae
