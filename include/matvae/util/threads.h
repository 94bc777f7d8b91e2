// The calling thread's compute settings: LibTorch's intra-op thread count, subnormal flushing, and
// the process's allocator settings that a training step needs.
#pragma once

#include <cstdint>

namespace matvae {

/// The threads a setting of n means: n, or every core for 0.
int64_t thread_count(int64_t n);

/// Sets LibTorch's intra-op threads for the calling thread: n, or every core for 0. It also makes
/// this thread and its OpenMP team (LibTorch's and OpenBLAS's workers) flush subnormal floats to
/// zero: a long training drives some logits so negative that their sigmoids and gradients go
/// subnormal, and every product that touches one then runs several times slower.
/// Also calls keep_freed_memory().
void set_threads(int64_t n);

/// Keeps freed memory in the process's heap for reuse instead of returning it to the system after
/// each step (glibc's malloc thresholds; once per process, a no-op elsewhere): without it every step
/// page-faults its large activations in again, which cost up to 2.5x in time.
void keep_freed_memory();

}  // namespace matvae
