// The calling thread's compute settings: LibTorch's intra-op thread count, subnormal flushing, and
// the process's allocator settings that a training step needs; and work spread over threads whose
// numbers do not depend on how many there are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace matvae {

/// The threads a setting of n means: n, or every core for 0.
int64_t thread_count(int64_t n);

/// Sets LibTorch's intra-op threads for the calling thread: n, or every core for 0. It also makes
/// this thread and its OpenMP team (LibTorch's and OpenBLAS's workers) flush subnormal floats to
/// zero: a long training drives some logits so negative that their sigmoids and gradients go
/// subnormal, and every product that touches one then runs several times slower.
/// Also calls keep_freed_memory().
void set_threads(int64_t n);

/// Runs task(0), ..., task(n - 1), as many at once as the calling thread has intra-op threads,
/// each on a thread of its own with one intra-op thread and the caller's grad mode (inline when the
/// caller has one thread). A product or reduction split over threads rounds differently from one
/// thread's, so every task gives the numbers of a one-thread run at any thread count. Tasks are
/// claimed in index order; the first exception one throws is rethrown once the running ones end.
void run_one_thread_each(size_t n, const std::function<void(size_t)>& task);

/// Keeps freed memory in the process's heap for reuse instead of returning it to the system after
/// each step (glibc's malloc thresholds; once per process, a no-op elsewhere): without it every step
/// page-faults its large activations in again, which cost up to 2.5x in time.
void keep_freed_memory();

}  // namespace matvae
